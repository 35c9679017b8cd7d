"""The sections of a study file, each read into its dataclass: the randomisation, the conditions, the
explanation settings, the trials (their images resolved, and kept within the permitted folders) and the
questions. Each reader notes every mistake on the :class:`~studies.reader.Reader` with its line;
:func:`studies.loading.parse_study` reads the file's top level and calls them in turn."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import storage
from storage.folders import ROOT
from studies.reader import Reader, describe, join
from studies.schema import (
    DEFAULT_QUESTIONS,
    DESIGNS,
    NO_EXPLANATION,
    ORDERS,
    QUESTION_KINDS,
    ExplanationSettings,
    Question,
    Randomisation,
    Trial,
)

_TRIAL_FIELDS = ("id", "model", "image", "class", "method", "choices", "budget", "params")
_QUESTION_FIELDS = (
    "id",
    "kind",
    "prompt",
    "required",
    "points",
    "labels",
    "options",
    "only_with_explanation",
    "before_explanation",
)
_RANDOMISATION_FIELDS = ("design", "order", "seed")
_EXPLANATION_FIELDS = ("budget", "seed", "params")


def read_randomisation(reader: Reader, top: Mapping[str, Any]) -> Randomisation:
    key = "randomization" if "randomization" in top and "randomisation" not in top else "randomisation"
    if key not in top or top[key] is None:
        return Randomisation()
    fields = reader.mapping(top[key], key, _RANDOMISATION_FIELDS, "the randomisation")
    return Randomisation(
        design=reader.one_of(fields, "design", key, DESIGNS, "within"),
        order=reader.one_of(fields, "order", key, ORDERS, "shuffle"),
        seed=reader.integer(fields, "seed", key, 0, low=0),
    )


def read_conditions(reader: Reader, top: Mapping[str, Any]) -> tuple[str, ...]:
    conditions: list[str] = []
    for index, value in enumerate(reader.sequence(top, "conditions", "", required=True)):
        if not isinstance(value, str) or not value.strip():
            reader.problem(f"conditions[{index}]", f"must be a method name or {NO_EXPLANATION}, not {describe(value)}")
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
        reader.problem(
            path, f"must map method names to their parameters (e.g. kernel: {{segments: 30}}), not {describe(value)}"
        )
        return {}
    params = {}
    for method, values in value.items():
        if not isinstance(values, dict):
            reader.problem(join(path, str(method)), f"must be a mapping of parameter to value, not {describe(values)}")
        else:
            params[str(method)] = {str(name): item for name, item in values.items()}
    return params


def read_explanation(reader: Reader, top: Mapping[str, Any]) -> ExplanationSettings:
    if "explanation" not in top or top["explanation"] is None:
        return ExplanationSettings()
    fields = reader.mapping(top["explanation"], "explanation", _EXPLANATION_FIELDS, "the explanation settings")
    return ExplanationSettings(
        budget=_read_budget(reader, fields.get("budget"), "explanation.budget"),
        seed=reader.integer(fields, "seed", "explanation", 0, low=0),
        params=_read_params(reader, fields.get("params"), "explanation.params"),
    )


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


def read_trials(reader: Reader, top: Mapping[str, Any], folder: Path | None) -> tuple[Trial, ...]:
    trials: list[Trial] = []
    seen: dict[str, int] = {}
    for index, value in enumerate(reader.sequence(top, "trials", "", required=True)):
        path = f"trials[{index}]"
        fields = reader.mapping(value, path, _TRIAL_FIELDS, "a trial")
        if not fields:
            continue
        trial_id = reader.text(fields, "id", path, default=f"t{index + 1}")
        if trial_id in seen:
            reader.problem(
                join(path, "id"),
                f'is "{trial_id}", already the id of trials[{seen[trial_id]}]; give each trial its own id',
            )
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
                reader.problem(join(path, "class"), f'must be "top", a class name or a class id, not {describe(raw)}')
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
                reader.problem(
                    join(path, "choices"),
                    "must be a number of top classes (at least 2) or a list of "
                    f"at least 2 class names, not {describe(raw)}",
                )
        trials.append(
            Trial(
                id=trial_id,
                model=model,
                image=image,
                image_path=image_path,
                class_shown=class_shown,
                method=method,
                choices=choices,
                budget=_read_budget(reader, fields.get("budget"), join(path, "budget")),
                params=_read_params(reader, fields.get("params"), join(path, "params")),
            )
        )
    return tuple(trials)


def read_questions(reader: Reader, top: Mapping[str, Any]) -> tuple[Question, ...]:
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
                reader.problem(
                    join(path, "labels"), "must be a list of two texts: what the lowest and the highest point mean"
                )
        options: tuple[str, ...] = ()
        if kind == "choice":
            raw_options = reader.sequence(fields, "options", path, required=True)
            options = tuple(str(option) for option in raw_options)
            if len(options) == 1:
                reader.problem(join(path, "options"), "has one option; give at least two")
        elif fields.get("options") is not None:
            reader.problem(join(path, "options"), f"only applies to questions of kind choice, not {kind}")
        questions.append(
            Question(
                id=question_id,
                kind=kind,
                prompt=prompt,
                required=reader.boolean(fields, "required", path, kind != "text"),
                points=points,
                labels=labels,
                options=options,
                only_with_explanation=reader.boolean(fields, "only_with_explanation", path, False),
                before_explanation=reader.boolean(fields, "before_explanation", path, False),
            )
        )
    return tuple(questions)
