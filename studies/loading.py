"""Loading a study file: :func:`load_study` and :func:`parse_study` read every field (naming the line of
each mistake; the sections, images resolved, in studies.sections), check against the registries (see
studies.checks) and add the digest of what decides the explanations; :func:`find_studies` lists the study
files of a folder."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import stat
from pathlib import Path

import storage
from storage.sandbox import ChildStopped, probe
from studies.checks import check_registries
from studies.parsing import MAX_STUDY_BYTES, parse_document
from studies.reader import Reader
from studies.schema import Problem, Study, StudyError
from studies.sections import read_conditions, read_explanation, read_questions, read_randomisation, read_trials

_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_STUDY_FIELDS = (
    "id",
    "title",
    "consent",
    "instructions",
    "read_first",
    "conditions",
    "trials",
    "questions",
    "randomisation",
    "randomization",
    "explanation",
)


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
        probe(
            "storage.yaml_child",
            text,
            path.name,
            "The study file reader stopped on this file; nothing was kept.",
            suffix=path.suffix.lower(),
        )
    except ChildStopped as stopped:
        raise StudyError([Problem(path.name, None, "", str(stopped).rstrip("."))]) from None
    return parse_study(
        text, name=path.name, suffix=path.suffix.lower(), folder=path.resolve().parent, verify=verify, path=path
    )


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
        what = (
            "a named pipe" if stat.S_ISFIFO(info.st_mode) else "a socket" if stat.S_ISSOCK(info.st_mode) else "a device"
        )
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


def parse_study(
    text: str,
    *,
    name: str = "study.yaml",
    suffix: str = ".yaml",
    folder: Path | None = None,
    verify: bool = True,
    path: Path | None = None,
) -> Study:
    """Like :func:`load_study`, from text; images are found relative to ``folder``, else to the repository."""
    data, lines, parse_problems = parse_document(text, name, suffix)
    reader = Reader(name, lines)
    reader.problems.extend(parse_problems)
    if data is None:
        raise StudyError(
            [Problem(name, None, "", "the file is empty; a study needs a title, consent, conditions and trials")]
        )
    top = reader.mapping(data, "", _STUDY_FIELDS, "a study")
    default_id = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(name).stem).strip("-") or "study"
    study_id = reader.text(top, "id", "", default=default_id)
    if study_id and not _SLUG.match(study_id):
        reader.problem("id", f'is "{study_id}"; use letters, digits, "-" and "_" only (at most 64)')
    title = reader.text(top, "title", "", required=True)
    consent = reader.text(top, "consent", "", required=True)
    instructions = reader.text(top, "instructions", "")
    read_first = reader.boolean(top, "read_first", "", False)

    randomisation = read_randomisation(reader, top)
    conditions = read_conditions(reader, top)
    explanation = read_explanation(reader, top)
    trials = read_trials(reader, top, folder)
    questions = read_questions(reader, top)
    if read_first and not any(question.before_explanation for question in questions):
        reader.problem(
            "read_first",
            "is true but no question is asked before the explanation; mark the reader's own questions with "
            "before_explanation: true",
        )

    if reader.problems:
        raise StudyError(reader.problems)
    study = Study(
        id=study_id,
        title=title,
        consent=consent,
        instructions=instructions,
        read_first=read_first,
        conditions=conditions,
        trials=trials,
        questions=questions,
        randomisation=randomisation,
        explanation=explanation,
        path=path,
        lines=dict(lines),
    )
    if verify:
        check_registries(study, reader)
        if reader.problems:
            raise StudyError(reader.problems)
    return _with_digest(study)


def _with_digest(study: Study) -> Study:
    """The study with a digest of what decides its explanations: an edit there needs a new precompute."""
    digest = hashlib.sha256()
    described = {
        "conditions": study.conditions,
        "explanation": {
            "budget": dict(study.explanation.budget),
            "seed": study.explanation.seed,
            "params": {m: dict(p) for m, p in study.explanation.params.items()},
        },
        "trials": [
            {
                "id": t.id,
                "model": t.model,
                "class": t.class_shown,
                "method": t.method,
                "choices": t.choices,
                "budget": dict(t.budget),
                "params": {m: dict(p) for m, p in t.params.items()},
            }
            for t in study.trials
        ],
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
