"""Loading a study file: :func:`load_study` and :func:`parse_study` read every field (naming the line of
each mistake), resolve the images, check against the registries (see studies.checks) and add the digest
of what decides the explanations; :func:`find_studies` lists the study files of a folder."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import storage
from storage.folders import ROOT
from storage.sandbox import ChildStopped, probe
from studies.checks import check_registries
from studies.parsing import MAX_STUDY_BYTES, parse_document
from studies.reader import Reader, describe, join
from studies.schema import (
    DEFAULT_QUESTIONS,
    DESIGNS,
    NO_EXPLANATION,
    ORDERS,
    QUESTION_KINDS,
    ExplanationSettings,
    Problem,
    Question,
    Randomisation,
    Study,
    StudyError,
    Trial,
)

_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_STUDY_FIELDS = ("id", "title", "consent", "instructions", "conditions", "trials", "questions", "randomisation",
                 "randomization", "explanation")
_TRIAL_FIELDS = ("id", "model", "image", "class", "method", "choices", "budget", "params")
_QUESTION_FIELDS = ("id", "kind", "prompt", "required", "points", "labels", "options", "only_with_explanation")
_RANDOMISATION_FIELDS = ("design", "order", "seed")
_EXPLANATION_FIELDS = ("budget", "seed", "params")


def load_study(path: str | Path, *, verify: bool = True) -> Study:
    """Reads and checks a study file (YAML or JSON). Raises StudyError naming the line and field of each
    mistake.

    With ``verify`` (the default) models, methods, method parameters, budgets, images and class names are
    checked against the registries too, which imports the models (a few seconds); without it only the
    file's structure is (enough to export answers).
    """
    path = Path(path)
    text = _read_study_file(path)
    try:  # parsed first in a sandboxed child: a parse that ends there ends here too, in bounded time and memory
        probe("storage.yaml_child", text, path.name, "The study file reader stopped on this file; nothing was kept.",
              suffix=path.suffix.lower())
    except ChildStopped as stopped:
        raise StudyError([Problem(path.name, None, "", str(stopped).rstrip("."))]) from None
    return parse_study(text, name=path.name, suffix=path.suffix.lower(), folder=path.resolve().parent,
                       verify=verify, path=path)


def _read_study_file(path: Path) -> str:
    """The text of a regular file of at most MAX_STUDY_BYTES (read no further), else a StudyError.

    Checked with ``os.stat`` before opening, so a device (/dev/zero never ends) or a named pipe (opening waits
    for a writer) is refused instead of read.
    """
    def refuse(message: str) -> StudyError:
        return StudyError([Problem(path.name, None, "", message)])

    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise refuse(f"the study file does not exist (looked for {path})") from None
    except OSError as error:
        raise refuse(f"the study file cannot be read ({error.strerror or error})") from None
    if stat.S_ISDIR(info.st_mode):
        raise refuse("the path is a folder, not a study file")
    if not stat.S_ISREG(info.st_mode):
        what = "a named pipe" if stat.S_ISFIFO(info.st_mode) else "a socket" if stat.S_ISSOCK(info.st_mode) \
            else "a device"
        raise refuse(f"the path is not a regular file ({what}), so it cannot be a study file")
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with open(descriptor, "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):  # swapped since the stat
                raise refuse("the path is not a regular file, so it cannot be a study file")
            data = file.read(MAX_STUDY_BYTES + 1)
    except OSError as error:
        raise refuse(f"the study file cannot be read ({error.strerror or error})") from None
    if len(data) > MAX_STUDY_BYTES:
        raise refuse(f"the file is over {MAX_STUDY_BYTES // 1_000_000} MB; a study file is a page or two of text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise refuse(f"the study file cannot be read (it is not UTF-8 text: byte {error.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")  # as text mode reads it


def parse_study(text: str, *, name: str = "study.yaml", suffix: str = ".yaml", folder: Path | None = None,
                verify: bool = True, path: Path | None = None) -> Study:
    """Like :func:`load_study`, from text; images are found relative to ``folder``, else to the repository."""
    data, lines, parse_problems = parse_document(text, name, suffix)
    reader = Reader(name, lines)
    reader.problems.extend(parse_problems)
    if data is None:
        raise StudyError([Problem(name, None, "", "the file is empty; a study needs a title, consent, conditions "
                                  "and trials")])
    top = reader.mapping(data, "", _STUDY_FIELDS, "a study")
    default_id = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(name).stem).strip("-") or "study"
    study_id = reader.text(top, "id", "", default=default_id)
    if study_id and not _SLUG.match(study_id):
        reader.problem("id", f'is "{study_id}"; use letters, digits, "-" and "_" only (at most 64)')
    title = reader.text(top, "title", "", required=True)
    consent = reader.text(top, "consent", "", required=True)
    instructions = reader.text(top, "instructions", "")

    randomisation = _read_randomisation(reader, top)
    conditions = _read_conditions(reader, top)
    explanation = _read_explanation(reader, top)
    trials = _read_trials(reader, top, folder)
    questions = _read_questions(reader, top)

    if reader.problems:
        raise StudyError(reader.problems)
    study = Study(id=study_id, title=title, consent=consent, instructions=instructions, conditions=conditions,
                  trials=trials, questions=questions, randomisation=randomisation, explanation=explanation,
                  path=path, lines=dict(lines))
    if verify:
        check_registries(study, reader)
        if reader.problems:
            raise StudyError(reader.problems)
    return _with_digest(study)


def _read_randomisation(reader: Reader, top: Mapping[str, Any]) -> Randomisation:
    key = "randomization" if "randomization" in top and "randomisation" not in top else "randomisation"
    if key not in top or top[key] is None:
        return Randomisation()
    fields = reader.mapping(top[key], key, _RANDOMISATION_FIELDS, "the randomisation")
    return Randomisation(design=reader.one_of(fields, "design", key, DESIGNS, "within"),
                         order=reader.one_of(fields, "order", key, ORDERS, "shuffle"),
                         seed=reader.integer(fields, "seed", key, 0, low=0))


def _read_conditions(reader: Reader, top: Mapping[str, Any]) -> tuple[str, ...]:
    conditions: list[str] = []
    for index, value in enumerate(reader.sequence(top, "conditions", "", required=True)):
        if not isinstance(value, str) or not value.strip():
            reader.problem(f"conditions[{index}]", f"must be a method name or {NO_EXPLANATION}, not "
                                                    f"{describe(value)}")
        elif value.strip() in conditions:
            reader.problem(f"conditions[{index}]", f'repeats "{value.strip()}"; list each condition once')
        else:
            conditions.append(value.strip())
    return tuple(conditions)


def _read_budget(reader: Reader, value: Any, path: str) -> dict[str, int]:
    """An int (every method) or a mapping method → int; "*" in the mapping stands for every other method."""
    if value is None:
        return {}
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            reader.problem(path, f"must be at least 1, not {value}")
            return {}
        return {"*": value}
    if not isinstance(value, dict):
        reader.problem(path, f"must be a whole number or a mapping of method to number, not {describe(value)}")
        return {}
    budgets = {}
    for method, amount in value.items():
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
            reader.problem(join(path, str(method)), f"must be a whole number of at least 1, not {describe(amount)}")
        else:
            budgets[str(method)] = amount
    return budgets


def _read_params(reader: Reader, value: Any, path: str) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        reader.problem(path, f"must map method names to their parameters (e.g. kernel: {{segments: 30}}), not "
                             f"{describe(value)}")
        return {}
    params = {}
    for method, values in value.items():
        if not isinstance(values, dict):
            reader.problem(join(path, str(method)), f"must be a mapping of parameter to value, not "
                                                      f"{describe(values)}")
        else:
            params[str(method)] = {str(name): item for name, item in values.items()}
    return params


def _read_explanation(reader: Reader, top: Mapping[str, Any]) -> ExplanationSettings:
    if "explanation" not in top or top["explanation"] is None:
        return ExplanationSettings()
    fields = reader.mapping(top["explanation"], "explanation", _EXPLANATION_FIELDS, "the explanation settings")
    return ExplanationSettings(budget=_read_budget(reader, fields.get("budget"), "explanation.budget"),
                               seed=reader.integer(fields, "seed", "explanation", 0, low=0),
                               params=_read_params(reader, fields.get("params"), "explanation.params"))


def _image_roots(folder: Path | None) -> tuple[Path, ...]:
    """Where a study's images may be: its own folder (the studies folder for a study given as text), and the
    app's bundled samples folder, which the example study names as ``../samples/...``."""
    return tuple(root.resolve() for root in (folder or storage.folder("studies"), storage.folder("samples")))


def _resolve_image(image: str, folder: Path | None) -> Path:
    """Relative to the study file's folder when the file is there, else to the repository; symlinks resolved."""
    candidate = Path(image).expanduser()
    if candidate.is_absolute():
        return candidate.resolve()
    for base in ([folder] if folder is not None else []) + [ROOT]:
        if (base / candidate).exists():
            return (base / candidate).resolve()
    return ((folder or ROOT) / candidate).resolve()


def _outside(image_path: Path, folder: Path | None) -> bool:
    """Whether a resolved image lies outside every permitted root (a study may not show /etc/passwd)."""
    return not any(image_path.is_relative_to(root) for root in _image_roots(folder))


def _read_trials(reader: Reader, top: Mapping[str, Any], folder: Path | None) -> tuple[Trial, ...]:
    trials: list[Trial] = []
    seen: dict[str, int] = {}
    for index, value in enumerate(reader.sequence(top, "trials", "", required=True)):
        path = f"trials[{index}]"
        fields = reader.mapping(value, path, _TRIAL_FIELDS, "a trial")
        if not fields:
            continue
        trial_id = reader.text(fields, "id", path, default=f"t{index + 1}")
        if trial_id in seen:
            reader.problem(join(path, "id"), f'is "{trial_id}", already the id of trials[{seen[trial_id]}]; '
                                               "give each trial its own id")
        seen[trial_id] = index
        model = reader.text(fields, "model", path, required=True)
        image = reader.text(fields, "image", path, required=True)
        image_path = _resolve_image(image, folder) if image else Path()
        if image and _outside(image_path, folder):
            reader.problem(join(path, "image"), f'"{image}" is outside the study\'s folder')
        class_shown: str | int = "top"
        if fields.get("class") is not None:
            raw = fields["class"]
            if isinstance(raw, bool) or not isinstance(raw, (str, int)):
                reader.problem(join(path, "class"), f'must be "top", a class name or a class id, not '
                                                      f"{describe(raw)}")
            else:
                class_shown = raw.strip() if isinstance(raw, str) else raw
        method = None
        if fields.get("method") is not None:
            method = str(fields["method"]).strip()
        choices: int | tuple[str, ...] | None = None
        if fields.get("choices") is not None:
            raw = fields["choices"]
            if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 2:
                choices = raw
            elif isinstance(raw, list) and len(raw) >= 2 and all(isinstance(c, (str, int)) for c in raw):
                choices = tuple(str(c).strip() for c in raw)
                if len(set(choices)) != len(choices):
                    reader.problem(join(path, "choices"), "lists a class twice")
            else:
                reader.problem(join(path, "choices"), "must be a number of top classes (at least 2) or a list of "
                                                        f"at least 2 class names, not {describe(raw)}")
        trials.append(Trial(id=trial_id, model=model, image=image, image_path=image_path,
                            class_shown=class_shown, method=method, choices=choices,
                            budget=_read_budget(reader, fields.get("budget"), join(path, "budget")),
                            params=_read_params(reader, fields.get("params"), join(path, "params"))))
    return tuple(trials)


def _read_questions(reader: Reader, top: Mapping[str, Any]) -> tuple[Question, ...]:
    if "questions" not in top or top["questions"] is None:
        return DEFAULT_QUESTIONS
    questions: list[Question] = []
    seen: set[str] = set()
    for index, value in enumerate(reader.sequence(top, "questions", "", required=True)):
        path = f"questions[{index}]"
        if isinstance(value, str) and value in {q.id for q in DEFAULT_QUESTIONS}:
            questions.append(next(q for q in DEFAULT_QUESTIONS if q.id == value))  # a standard question by name
            seen.add(value)
            continue
        fields = reader.mapping(value, path, _QUESTION_FIELDS, "a question")
        if not fields:
            continue
        question_id = reader.text(fields, "id", path, required=True)
        if question_id in seen:
            reader.problem(join(path, "id"), f'is "{question_id}" again; give each question its own id')
        seen.add(question_id)
        kind = reader.one_of(fields, "kind", path, QUESTION_KINDS, "")
        if "kind" not in fields:
            reader.problem(path, f"needs a kind ({', '.join(QUESTION_KINDS)})")
        prompt = reader.text(fields, "prompt", path, required=True)
        points = reader.integer(fields, "points", path, 7, low=2, high=11)
        labels: tuple[str, str] = ("", "")
        if fields.get("labels") is not None:
            raw = fields["labels"]
            if isinstance(raw, list) and len(raw) == 2 and all(isinstance(item, str) for item in raw):
                labels = (raw[0], raw[1])
            else:
                reader.problem(join(path, "labels"), "must be a list of two texts: what the lowest and the "
                                                       "highest point mean")
        options: tuple[str, ...] = ()
        if kind == "choice":
            raw_options = reader.sequence(fields, "options", path, required=True)
            options = tuple(str(option) for option in raw_options)
            if len(options) == 1:
                reader.problem(join(path, "options"), "has one option; give at least two")
        elif fields.get("options") is not None:
            reader.problem(join(path, "options"), f"only applies to questions of kind choice, not {kind}")
        questions.append(Question(
            id=question_id, kind=kind, prompt=prompt,
            required=reader.boolean(fields, "required", path, kind != "text"),
            points=points, labels=labels, options=options,
            only_with_explanation=reader.boolean(fields, "only_with_explanation", path, False)))
    return tuple(questions)


def _with_digest(study: Study) -> Study:
    """The study with a digest of what decides its explanations: an edit there needs a new precompute."""
    digest = hashlib.sha256()
    described = {
        "conditions": study.conditions,
        "explanation": {"budget": dict(study.explanation.budget), "seed": study.explanation.seed,
                        "params": {m: dict(p) for m, p in study.explanation.params.items()}},
        "trials": [{"id": t.id, "model": t.model, "class": t.class_shown, "method": t.method, "choices": t.choices,
                    "budget": dict(t.budget), "params": {m: dict(p) for m, p in t.params.items()}}
                   for t in study.trials],
    }
    digest.update(json.dumps(described, sort_keys=True, default=str).encode())
    for trial in study.trials:
        try:
            digest.update(hashlib.sha256(trial.image_path.read_bytes()).digest())
        except OSError:
            digest.update(b"missing")
    return dataclasses.replace(study, digest=digest.hexdigest()[:16])


def find_studies(folder: str | Path | None = None) -> list[Path]:
    """The study files in a folder (default ``storage.folder("studies")``), sorted by name."""
    folder = Path(folder) if folder is not None else storage.folder("studies")
    return sorted(path for path in folder.glob("*") if path.suffix.lower() in (".yaml", ".yml", ".json"))
