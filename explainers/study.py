"""User studies: a study file, each participant's randomised plan, durable answers, and the results.

A researcher writes a study in YAML or JSON (see ``assets/studies/example_study.yaml``); :func:`load_study`
checks it and names the line and field of every mistake. :func:`precompute` fills the explanation cache for
every trial and condition before the study opens, so a participant never waits. :class:`StudyStore` keeps
participants and answers in SQLite (WAL, one transaction per submitted trial, ``synchronous=FULL``), so
nothing committed is lost when many participants answer at once or the server is killed. :func:`summarise`
turns the answers into per-condition means with confidence intervals; ``explainers.study_plots`` draws them.

The flow of a participant page::

    study = load_study(path)
    facts = load_facts(study, cache)            # None until `python -m explainers study precompute`
    participant = store.create_participant(study, facts)        # after consent; or store.get_participant
    position = store.progress(participant.id).next_position     # None when finished
    planned = participant.plan[position]         # trial, blinded condition, options, cache key
    store.mark_shown(participant.id, position)   # starts the trial's clock (kept across reloads)
    explanation = study_explanation(cache, planned)             # None for the no-explanation control
    questions = questions_for(study, planned)
    store.record_trial_answers(study, participant.id, position, {"forward": "7", "confidence": 5, ...})
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import hashlib
import hmac
import io
import json
import math
import os
import random
import re
import secrets
import sqlite3
import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, TextIO

ROOT = Path(__file__).resolve().parents[1]
STUDIES_DIR = ROOT / "assets" / "studies"

NO_EXPLANATION = "none"  # the control condition: the image without an explanation
QUESTION_KINDS = ("forward_simulation", "likert", "percent", "choice", "text")
NUMERIC_KINDS = ("likert", "percent")
DESIGNS = ("within", "between")
ORDERS = ("shuffle", "fixed")
# Forward simulation offers every class of a model with at most this many, else the model's top classes.
MAX_LISTED_CLASSES = 10
DEFAULT_OPTION_COUNT = 4
# Offered after an explicit list of options that does not cover every class; correct when the model's
# prediction is outside the list.
OTHER_OPTION = "another class"
MAX_TEXT_ANSWER = 5000
PASSWORD_ENV = "STUDY_RESULTS_PASSWORD"
PASSWORD_SECRET = "study_results_password"
STORE_SCHEMA_VERSION = 1

ProgressCallback = Callable[[int, int], None]
# precompute's progress: (explanations done, explanations in all, what comes next); may return a callback
# that counts the next explanation's model evaluations.
StudyProgress = Callable[[int, int, str], "ProgressCallback | None"]


# -- errors ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One mistake in a study file: where it is and what is wrong, as one sentence."""

    file: str
    line: int | None
    field: str  # e.g. "trials[2].method"; "" for the file as a whole
    message: str  # the rest of the sentence, e.g. 'is "kernal", not a method; choose one of ...'

    def __str__(self) -> str:
        where = f"{self.file} line {self.line}" if self.line else self.file
        sentence = f"{self.field} {self.message}" if self.field else self.message
        return f"{where}: {sentence}" + ("" if sentence.endswith((".", "?", "!")) else ".")


class StudyError(ValueError):
    """An invalid study file. ``str()`` is the first problem; ``problems`` holds every one found."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = tuple(sorted(problems, key=lambda problem: problem.line or 0))
        super().__init__(str(self.problems[0]) if self.problems else "The study is invalid.")


class AnswerError(ValueError):
    """Answers a participant cannot submit as they are; the message is one sentence meant for them."""


# -- the study definition ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """A question asked after every trial (or only after trials that show an explanation)."""

    id: str
    kind: str  # one of QUESTION_KINDS
    prompt: str
    required: bool = True
    points: int = 7  # likert: answers 1..points
    labels: tuple[str, str] = ("", "")  # likert: what the lowest and highest point mean
    options: tuple[str, ...] = ()  # choice: the answers offered
    only_with_explanation: bool = False  # skipped in the no-explanation control (e.g. trust in the explanation)

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC_KINDS


DEFAULT_QUESTIONS = (
    Question("forward", "forward_simulation", "What will the model say this image shows?"),
    Question("confidence", "likert", "How confident are you in that answer?",
             labels=("not at all confident", "completely confident")),
    Question("trust", "likert", "How much do you trust this explanation?",
             labels=("not at all", "completely"), only_with_explanation=True),
    Question("comment", "text", "Any comment? (optional)", required=False),
)


@dataclass(frozen=True)
class Trial:
    """One image shown to a participant, with one model's behaviour to judge."""

    id: str
    model: str
    image: str  # as written in the study file (exported as is)
    image_path: Path  # resolved: relative to the study file, else to the repository
    class_shown: str | int = "top"  # whose attribution map is shown: "top" (the prediction), a name or an id
    method: str | None = None  # pins this trial to one condition instead of randomising it
    choices: int | tuple[str, ...] | None = None  # forward simulation: top-k count or class names
    budget: Mapping[str, int] = field(default_factory=dict)  # overrides of the study's budgets
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # method → overrides


@dataclass(frozen=True)
class Randomisation:
    design: str = "within"  # within: every participant sees every condition; between: one condition each
    order: str = "shuffle"  # shuffle: trial order per participant; fixed: as written
    seed: int = 0


@dataclass(frozen=True)
class ExplanationSettings:
    """How every explanation of the study is computed (each trial may override budget and params)."""

    budget: Mapping[str, int] = field(default_factory=dict)  # method → budget; "*" for every method
    seed: int = 0
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # method → parameters


@dataclass(frozen=True)
class Study:
    id: str
    title: str
    consent: str
    conditions: tuple[str, ...]  # method names and/or NO_EXPLANATION
    trials: tuple[Trial, ...]
    questions: tuple[Question, ...] = DEFAULT_QUESTIONS
    randomisation: Randomisation = Randomisation()
    explanation: ExplanationSettings = ExplanationSettings()
    instructions: str = ""
    path: Path | None = None
    digest: str = ""  # of everything that decides the explanations (trials, images, conditions, settings)
    lines: Mapping[str, int] = field(default_factory=dict)  # field path → line in the file (YAML)

    def trial(self, trial_id: str) -> Trial:
        for trial in self.trials:
            if trial.id == trial_id:
                return trial
        raise KeyError(f"The study {self.id} has no trial {trial_id!r}.")

    def question(self, question_id: str) -> Question:
        for question in self.questions:
            if question.id == question_id:
                return question
        raise KeyError(f"The study {self.id} has no question {question_id!r}.")

    def conditions_for(self, trial: Trial) -> tuple[str, ...]:
        """The conditions a trial may be shown in: its pinned method, else the study's conditions."""
        return (trial.method,) if trial.method is not None else self.conditions

    def budget_for(self, trial: Trial, method: str) -> int | None:
        """The trial's budget for a method, else the study's, else None (the method's default)."""
        for level in (trial.budget, self.explanation.budget):
            if method in level:
                return level[method]
            if "*" in level:
                return level["*"]
        return None

    def params_for(self, trial: Trial, method: str) -> dict[str, Any]:
        return {**self.explanation.params.get(method, {}), **trial.params.get(method, {})}

    def line_of(self, path: str) -> int | None:
        """The line of a field (or of the nearest enclosing one) in the study file."""
        return _line_of(self.lines, path)

    def problem(self, path: str, message: str) -> Problem:
        return Problem(self.path.name if self.path else self.id, self.line_of(path), path, message)


# -- reading a study file ---------------------------------------------------------------------------------------


_LAST_PART = re.compile(r"(\.[^.\[]+|\[\d+\])$")


def _line_of(lines: Mapping[str, int], path: str) -> int | None:
    """The line of a field, else of the nearest field that encloses it."""
    while path:
        if path in lines:
            return lines[path]
        trimmed = _LAST_PART.sub("", path)
        if trimmed == path:
            return None
        path = trimmed
    return None


def _field_path(parts: Sequence[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _yaml_lines(text: str) -> tuple[dict[str, int], list[tuple[str, int, int]]]:
    """Field path → line for every key and list item, and the keys given twice (path, line, first line).

    PyYAML keeps the last of two equal keys silently; a researcher would rather hear about it.
    """
    import yaml

    lines: dict[str, int] = {}
    duplicates: list[tuple[str, int, int]] = []
    root = yaml.compose(text, Loader=yaml.SafeLoader)

    def walk(node: Any, parts: tuple[str | int, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                line = key_node.start_mark.line + 1
                path = _field_path(parts + (key,))
                if key in seen:
                    duplicates.append((path, line, seen[key]))
                else:
                    seen[key] = line
                    lines[path] = line
                walk(value_node, parts + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines[_field_path(parts + (index,))] = item.start_mark.line + 1
                walk(item, parts + (index,))

    if root is not None:
        walk(root, ())
    return lines, duplicates


def _parse(text: str, name: str, suffix: str) -> tuple[Any, dict[str, int], list[Problem]]:
    """The document, line numbers of its fields (where known) and problems found while parsing."""
    problems: list[Problem] = []
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise StudyError([Problem(name, error.lineno, "",
                                      f"the file is not valid JSON ({error.msg} at column {error.colno})")]) from None
        try:  # JSON is YAML, so PyYAML can often say where each field is; without it, fields are named only
            lines, _ = _yaml_lines(text)
        except Exception:  # noqa: BLE001 - line numbers are a courtesy; the JSON itself is valid
            lines = {}
        return data, lines, problems
    if suffix not in (".yaml", ".yml"):
        raise StudyError([Problem(name, None, "", "the file is not a study file; write the study as .yaml, .yml "
                                                  "or .json")])
    try:
        import yaml
    except ImportError:
        raise StudyError([Problem(name, None, "", "the file cannot be read because PyYAML is not installed; "
                                  "install requirements.txt or write the study as JSON")]) from None
    try:
        data = yaml.safe_load(text)
        lines, duplicates = _yaml_lines(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        what = error.problem or error.context or "a syntax error"
        raise StudyError([Problem(name, line, "", f"the file is not valid YAML ({what})")]) from None
    except yaml.YAMLError as error:
        raise StudyError([Problem(name, None, "", f"the file is not valid YAML ({error})")]) from None
    for path, line, first in duplicates:
        problems.append(Problem(name, line, path, f"is given twice (first on line {first}); keep one"))
    return data, lines, problems


def _suggest(value: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, list(known), n=1)
    return f'; did you mean "{close[0]}"?' if close else ""


class _Reader:
    """Reads the parsed document field by field, collecting every problem with its line."""

    def __init__(self, name: str, lines: Mapping[str, int]):
        self.name, self.lines = name, lines
        self.problems: list[Problem] = []

    def line(self, path: str) -> int | None:
        return _line_of(self.lines, path)

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.name, self.line(path), path, message))

    def mapping(self, value: Any, path: str, fields: Sequence[str], what: str) -> dict[str, Any]:
        """The value as a mapping with only known fields (unknown ones are reported with a suggestion)."""
        if not isinstance(value, dict):
            self.problem(path, f"{'' if path else 'the study '}must be a mapping of fields ({', '.join(fields)}), "
                               f"not {_describe(value)}")
            return {}
        for key in value:
            if str(key) not in fields:
                self.problem(_join(path, str(key)), f"is not a field of {what} (the fields are {', '.join(fields)})"
                             f"{_suggest(str(key), fields)}")
        return {str(key): item for key, item in value.items() if str(key) in fields}

    def text(self, data: Mapping[str, Any], key: str, path: str, *, required: bool = False,
             default: str = "") -> str:
        if key not in data or data[key] is None:
            if required:
                self.problem(path, f"needs a {key}" if path else f"the study needs a {key}")
            return default
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.problem(_join(path, key), f"must be text, not {_describe(value)}")
            return default
        value = str(value).strip()
        if required and not value:
            self.problem(_join(path, key), "is empty")
        return value

    def integer(self, data: Mapping[str, Any], key: str, path: str, default: int, low: int | None = None,
                high: int | None = None) -> int:
        if key not in data or data[key] is None:
            return default
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(_join(path, key), f"must be a whole number, not {_describe(value)}")
            return default
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.problem(_join(path, key), f"must be {bounds}, not {value}")
            return default
        return value

    def boolean(self, data: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        if key not in data or data[key] is None:
            return default
        if not isinstance(data[key], bool):
            self.problem(_join(path, key), f"must be true or false, not {_describe(data[key])}")
            return default
        return data[key]

    def one_of(self, data: Mapping[str, Any], key: str, path: str, choices: Sequence[str], default: str) -> str:
        if key not in data or data[key] is None:
            return default
        value = str(data[key])
        if value not in choices:
            self.problem(_join(path, key), f'is "{value}"; choose one of {", ".join(choices)}'
                                           f'{_suggest(value, choices)}')
            return default
        return value

    def sequence(self, data: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> list[Any]:
        if key not in data or data[key] is None:
            if required:
                self.problem(path, f"needs a list of {key}" if path else f"the study needs a list of {key}")
            return []
        value = data[key]
        if not isinstance(value, list):
            self.problem(_join(path, key), f"must be a list, not {_describe(value)}")
            return []
        if required and not value:
            self.problem(_join(path, key), "is empty; give at least one")
        return value


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _clause(sentence: Any) -> str:
    """Another module's sentence, to continue ours: first letter lowered, final full stop dropped."""
    text = str(sentence).strip().rstrip(".")
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f'"{value}"'
    return f"{value!r}"


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
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StudyError([Problem(path.name, None, "", f"the study file does not exist (looked for {path})")]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise StudyError([Problem(path.name, None, "", f"the study file cannot be read ({error})")]) from None
    return parse_study(text, name=path.name, suffix=path.suffix.lower(), folder=path.resolve().parent,
                       verify=verify, path=path)


def parse_study(text: str, *, name: str = "study.yaml", suffix: str = ".yaml", folder: Path | None = None,
                verify: bool = True, path: Path | None = None) -> Study:
    """Like :func:`load_study`, from text; images are found relative to ``folder``, else to the repository."""
    data, lines, parse_problems = _parse(text, name, suffix)
    reader = _Reader(name, lines)
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
        _verify(study, reader)
        if reader.problems:
            raise StudyError(reader.problems)
    return _with_digest(study)


def _read_randomisation(reader: _Reader, top: Mapping[str, Any]) -> Randomisation:
    key = "randomization" if "randomization" in top and "randomisation" not in top else "randomisation"
    if key not in top or top[key] is None:
        return Randomisation()
    fields = reader.mapping(top[key], key, _RANDOMISATION_FIELDS, "the randomisation")
    return Randomisation(design=reader.one_of(fields, "design", key, DESIGNS, "within"),
                         order=reader.one_of(fields, "order", key, ORDERS, "shuffle"),
                         seed=reader.integer(fields, "seed", key, 0, low=0))


def _read_conditions(reader: _Reader, top: Mapping[str, Any]) -> tuple[str, ...]:
    conditions: list[str] = []
    for index, value in enumerate(reader.sequence(top, "conditions", "", required=True)):
        if not isinstance(value, str) or not value.strip():
            reader.problem(f"conditions[{index}]", f"must be a method name or {NO_EXPLANATION}, not "
                                                    f"{_describe(value)}")
        elif value.strip() in conditions:
            reader.problem(f"conditions[{index}]", f'repeats "{value.strip()}"; list each condition once')
        else:
            conditions.append(value.strip())
    return tuple(conditions)


def _read_budget(reader: _Reader, value: Any, path: str) -> dict[str, int]:
    """An int (every method) or a mapping method → int; "*" in the mapping stands for every other method."""
    if value is None:
        return {}
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            reader.problem(path, f"must be at least 1, not {value}")
            return {}
        return {"*": value}
    if not isinstance(value, dict):
        reader.problem(path, f"must be a whole number or a mapping of method to number, not {_describe(value)}")
        return {}
    budgets = {}
    for method, amount in value.items():
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
            reader.problem(_join(path, str(method)), f"must be a whole number of at least 1, not {_describe(amount)}")
        else:
            budgets[str(method)] = amount
    return budgets


def _read_params(reader: _Reader, value: Any, path: str) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        reader.problem(path, f"must map method names to their parameters (e.g. kernel: {{segments: 30}}), not "
                             f"{_describe(value)}")
        return {}
    params = {}
    for method, values in value.items():
        if not isinstance(values, dict):
            reader.problem(_join(path, str(method)), f"must be a mapping of parameter to value, not "
                                                      f"{_describe(values)}")
        else:
            params[str(method)] = {str(name): item for name, item in values.items()}
    return params


def _read_explanation(reader: _Reader, top: Mapping[str, Any]) -> ExplanationSettings:
    if "explanation" not in top or top["explanation"] is None:
        return ExplanationSettings()
    fields = reader.mapping(top["explanation"], "explanation", _EXPLANATION_FIELDS, "the explanation settings")
    return ExplanationSettings(budget=_read_budget(reader, fields.get("budget"), "explanation.budget"),
                               seed=reader.integer(fields, "seed", "explanation", 0, low=0),
                               params=_read_params(reader, fields.get("params"), "explanation.params"))


def _resolve_image(image: str, folder: Path | None) -> Path:
    """Relative to the study file's folder when the file is there, else to the repository."""
    candidate = Path(image).expanduser()
    if candidate.is_absolute():
        return candidate
    for base in ([folder] if folder is not None else []) + [ROOT]:
        if (base / candidate).exists():
            return (base / candidate).resolve()
    return ((folder or ROOT) / candidate).resolve()


def _read_trials(reader: _Reader, top: Mapping[str, Any], folder: Path | None) -> tuple[Trial, ...]:
    trials: list[Trial] = []
    seen: dict[str, int] = {}
    for index, value in enumerate(reader.sequence(top, "trials", "", required=True)):
        path = f"trials[{index}]"
        fields = reader.mapping(value, path, _TRIAL_FIELDS, "a trial")
        if not fields:
            continue
        trial_id = reader.text(fields, "id", path, default=f"t{index + 1}")
        if trial_id in seen:
            reader.problem(_join(path, "id"), f'is "{trial_id}", already the id of trials[{seen[trial_id]}]; '
                                               "give each trial its own id")
        seen[trial_id] = index
        model = reader.text(fields, "model", path, required=True)
        image = reader.text(fields, "image", path, required=True)
        class_shown: str | int = "top"
        if fields.get("class") is not None:
            raw = fields["class"]
            if isinstance(raw, bool) or not isinstance(raw, (str, int)):
                reader.problem(_join(path, "class"), f'must be "top", a class name or a class id, not '
                                                      f"{_describe(raw)}")
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
                    reader.problem(_join(path, "choices"), "lists a class twice")
            else:
                reader.problem(_join(path, "choices"), "must be a number of top classes (at least 2) or a list of "
                                                        f"at least 2 class names, not {_describe(raw)}")
        trials.append(Trial(id=trial_id, model=model, image=image, image_path=_resolve_image(image, folder),
                            class_shown=class_shown, method=method, choices=choices,
                            budget=_read_budget(reader, fields.get("budget"), _join(path, "budget")),
                            params=_read_params(reader, fields.get("params"), _join(path, "params"))))
    return tuple(trials)


def _read_questions(reader: _Reader, top: Mapping[str, Any]) -> tuple[Question, ...]:
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
            reader.problem(_join(path, "id"), f'is "{question_id}" again; give each question its own id')
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
                reader.problem(_join(path, "labels"), "must be a list of two texts: what the lowest and the "
                                                       "highest point mean")
        options: tuple[str, ...] = ()
        if kind == "choice":
            raw_options = reader.sequence(fields, "options", path, required=True)
            options = tuple(str(option) for option in raw_options)
            if len(options) == 1:
                reader.problem(_join(path, "options"), "has one option; give at least two")
        elif fields.get("options") is not None:
            reader.problem(_join(path, "options"), f"only applies to questions of kind choice, not {kind}")
        questions.append(Question(
            id=question_id, kind=kind, prompt=prompt,
            required=reader.boolean(fields, "required", path, kind != "text"),
            points=points, labels=labels, options=options,
            only_with_explanation=reader.boolean(fields, "only_with_explanation", path, False)))
    return tuple(questions)


def _verify(study: Study, reader: _Reader) -> None:
    """Models, methods, parameters, budgets, images and classes, against the registries."""
    from explainers.images import ImageError, load_image
    from explainers.methods import ParameterError, all_methods, get_method
    from models import UnknownModelError, all_specs, get_spec

    methods = [method.name for method in all_methods()]
    choices = methods + [NO_EXPLANATION]
    for index, condition in enumerate(study.conditions):
        if condition != NO_EXPLANATION and condition not in methods:
            reader.problem(f"conditions[{index}]", f'is "{condition}", not a method; choose one of '
                                                    f'{", ".join(choices)}{_suggest(condition, choices)}')
    used: set[str] = {c for c in study.conditions if c in methods}

    def check_params(params: Mapping[str, Mapping[str, Any]], path: str) -> None:
        for method, values in params.items():
            if method not in methods:
                reader.problem(_join(path, method), f"is not a method; choose one of {', '.join(methods)}"
                                                    f"{_suggest(method, methods)}")
                continue
            for name, value in values.items():
                try:
                    get_method(method).param(name).coerce(value)
                except ParameterError as error:
                    reader.problem(_join(_join(path, method), name), f"is wrong: {_clause(error)}")

    def check_budget(budget: Mapping[str, int], path: str, applies_to: set[str]) -> None:
        for method, amount in budget.items():
            targets = applies_to - set(budget) if method == "*" else {method}
            if method != "*" and method not in methods:
                reader.problem(_join(path, method), f"is not a method; choose one of {', '.join(methods)} "
                                                    f'or "*" for every method{_suggest(method, methods)}')
                continue
            for target in sorted(targets):
                spec = get_method(target)
                if not spec.min_budget <= amount <= spec.max_budget:
                    where = path if method == "*" else _join(path, method)
                    reader.problem(where, f"is {amount}, outside {target}'s range {spec.min_budget}–"
                                          f"{spec.max_budget} {spec.budget_meaning}"
                                          + (f"; give {target} its own budget" if method == "*" else ""))

    check_params(study.explanation.params, "explanation.params")
    for index, trial in enumerate(study.trials):
        path = f"trials[{index}]"
        if trial.method is not None:
            if trial.method != NO_EXPLANATION and trial.method not in methods:
                reader.problem(_join(path, "method"), f'is "{trial.method}", not a method; choose one of '
                                                       f'{", ".join(choices)}{_suggest(trial.method, choices)}')
            elif trial.method != NO_EXPLANATION:
                used.add(trial.method)
        trial_methods = {m for m in study.conditions_for(trial) if m in methods}
        check_budget(trial.budget, _join(path, "budget"), trial_methods)
        check_params(trial.params, _join(path, "params"))
        try:
            spec = get_spec(trial.model)
        except UnknownModelError:
            models = [spec.name for spec in all_specs()]
            reader.problem(_join(path, "model"), f'is "{trial.model}", not a model; choose one of '
                                                  f'{", ".join(models)}{_suggest(trial.model, models)}')
            spec = None
        if spec is not None:
            reason = spec.missing_reason()
            if reason is not None:
                reader.problem(_join(path, "model"), f"{trial.model} is unavailable here: {reason}")
            _check_class(reader, trial, spec.class_names, path)
        if not trial.image_path.exists():
            reader.problem(_join(path, "image"), f'is "{trial.image}", which does not exist (looked in '
                                                  f"{study.path.parent if study.path else ROOT} and {ROOT})")
        else:
            try:
                load_image(trial.image_path)
            except ImageError as error:
                reader.problem(_join(path, "image"), f"cannot be used: {_clause(error)}")
    check_budget(study.explanation.budget, "explanation.budget", used)


def _check_class(reader: _Reader, trial: Trial, class_names: Sequence[str], path: str) -> None:
    count = len(class_names)
    if isinstance(trial.class_shown, int):
        if not 0 <= trial.class_shown < count:
            reader.problem(_join(path, "class"), f"is {trial.class_shown}; class ids of {trial.model} run from 0 to "
                                                  f"{count - 1}")
    elif trial.class_shown != "top" and resolve_class(trial.class_shown, class_names) is None:
        sample = ", ".join(class_names[:10]) + (", …" if count > 10 else "")
        reader.problem(_join(path, "class"), f'is "{trial.class_shown}", not a class of {trial.model} ({sample}) '
                                              f'nor "top"{_suggest(trial.class_shown, class_names)}')
    if isinstance(trial.choices, int) and trial.choices > count:
        reader.problem(_join(path, "choices"), f"is {trial.choices}, more than the {count} classes of {trial.model}")
    elif isinstance(trial.choices, tuple):
        for name in trial.choices:
            if resolve_class(name, class_names) is None:
                reader.problem(_join(path, "choices"), f'names "{name}", not a class of {trial.model}'
                                                        f"{_suggest(name, class_names)}")


def resolve_class(name: str | int, class_names: Sequence[str]) -> int | None:
    """A class id from an id, an exact name, or a name that matches one class ignoring case."""
    if isinstance(name, int):
        return name if 0 <= name < len(class_names) else None
    if name in class_names:
        return class_names.index(name)
    folded = [index for index, known in enumerate(class_names) if known.casefold() == name.casefold()]
    return folded[0] if len(folded) == 1 else None


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


def find_studies(folder: str | Path = STUDIES_DIR) -> list[Path]:
    """The study files in a folder (default ``assets/studies``), sorted by name."""
    folder = Path(folder)
    return sorted(path for path in folder.glob("*") if path.suffix.lower() in (".yaml", ".yml", ".json"))


# -- randomisation ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    """The trial a participant sees at a position, in a condition."""

    position: int
    trial: Trial
    condition: str


def _rng(study: Study, *parts: Any) -> random.Random:
    # String seeds are hashed with SHA-512 by random.Random, so the stream does not depend on PYTHONHASHSEED.
    return random.Random(":".join(str(part) for part in (study.randomisation.seed, *parts)))


def assignment(study: Study, participant_number: int) -> list[Assignment]:
    """The trials participant ``participant_number`` (0, 1, 2, … in order of arrival) sees, in order.

    Within subjects, trial k of the file gets condition (k + number) mod C of a seeded order of the C
    conditions (a Latin square), so any C consecutive participants see every trial once in every condition.
    Between subjects, each block of C consecutive participants gets the C conditions in a seeded random
    order, one each. Trials pinned to a method keep it. The trial order is shuffled per participant (or kept
    as written). Everything follows from the study's seed and the participant's number.
    """
    conditions = study.conditions
    count = len(conditions)
    base = _rng(study, "conditions").sample(list(conditions), count)
    free = [trial for trial in study.trials if trial.method is None]
    chosen: dict[str, str] = {trial.id: trial.method for trial in study.trials if trial.method is not None}
    if study.randomisation.design == "within":
        for index, trial in enumerate(free):
            chosen[trial.id] = base[(index + participant_number) % count]
    else:
        block = _rng(study, "block", participant_number // count).sample(base, count)
        for trial in free:
            chosen[trial.id] = block[participant_number % count]
    order = list(study.trials)
    if study.randomisation.order == "shuffle":
        _rng(study, "order", participant_number).shuffle(order)
    return [Assignment(position, trial, chosen[trial.id]) for position, trial in enumerate(order)]


# -- what the model says: facts fixed before the study opens ------------------------------------------------------


@dataclass(frozen=True)
class TrialFacts:
    """The model's verdict on a trial's image and where each condition's explanation is cached."""

    trial_id: str
    model: str
    weights_digest: str
    image_digest: str
    prediction_id: int
    prediction: str
    probability: float
    class_shown_id: int
    class_shown: str
    reveal_class: bool  # the page may name the class shown; not when it is the prediction (the answer)
    options: tuple[str, ...]  # forward simulation's answers
    shuffle_options: bool  # top-k options are shuffled per participant so their order does not give rank away
    keys: Mapping[str, str]  # condition → cache key of its explanation


@dataclass(frozen=True)
class StudyFacts:
    study_id: str
    study_digest: str
    trials: Mapping[str, TrialFacts]

    def to_json(self) -> dict[str, Any]:
        return {"study_id": self.study_id, "study_digest": self.study_digest,
                "trials": {trial_id: {**facts.__dict__, "options": list(facts.options), "keys": dict(facts.keys)}
                           for trial_id, facts in self.trials.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "StudyFacts":
        trials = {trial_id: TrialFacts(**{**values, "options": tuple(values["options"])})
                  for trial_id, values in data["trials"].items()}
        return cls(data["study_id"], data["study_digest"], trials)


def facts_key(study: Study) -> str:
    return f"study-facts:{study.id}:{study.digest}"


def load_facts(study: Study, cache: Any) -> StudyFacts | None:
    """The facts that :func:`precompute` stored for this version of the study, or None (never computes)."""
    stored = cache.get_json(facts_key(study))
    return None if stored is None else StudyFacts.from_json(stored)


def _options(trial: Trial, class_names: Sequence[str], probs: Any) -> tuple[tuple[str, ...], bool]:
    from explainers.explanation import top_classes

    if isinstance(trial.choices, tuple):
        names = tuple(class_names[resolve_class(name, class_names)] for name in trial.choices)  # type: ignore[index]
        return (names + (OTHER_OPTION,) if len(names) < len(class_names) else names), False
    if trial.choices is None and len(class_names) <= MAX_LISTED_CLASSES:
        return tuple(class_names), False
    count = trial.choices or DEFAULT_OPTION_COUNT
    return tuple(class_names[int(c)] for c in top_classes(probs, count)), True


def compute_facts(study: Study, load: Callable[[str], Any] | None = None) -> StudyFacts:
    """Predicts every trial's image (one forward pass each) and derives the class shown, the options and
    each explanation's cache key. ``load`` maps a model name to a classifier (default: load_classifier)."""
    from explainers.api import cache_request
    from explainers.cache import cache_key
    from explainers.images import image_digest, load_image
    from models import load_classifier

    load = load or load_classifier
    classifiers: dict[str, Any] = {}
    trials: dict[str, TrialFacts] = {}
    for trial in study.trials:
        if trial.model not in classifiers:
            classifiers[trial.model] = load(trial.model)
        classifier = classifiers[trial.model]
        image = load_image(trial.image_path)
        probs = classifier.predict(classifier.prepare(image))[0]
        prediction = int(probs.argmax())
        names = classifier.class_names
        shown = prediction if trial.class_shown == "top" else resolve_class(trial.class_shown, names)
        if shown is None:
            raise StudyError([study.problem(f"trials[{study.trials.index(trial)}].class",
                                            f'is "{trial.class_shown}", not a class of {trial.model}')])
        options, shuffle = _options(trial, names, probs)
        keys = {}
        for condition in study.conditions_for(trial):
            if condition != NO_EXPLANATION:
                request = cache_request(classifier, image, condition, top_k=1,
                                        max_evals=study.budget_for(trial, condition), seed=study.explanation.seed,
                                        params=study.params_for(trial, condition), classes=[shown])
                keys[condition] = cache_key(request)
        trials[trial.id] = TrialFacts(
            trial_id=trial.id, model=trial.model, weights_digest=classifier.weights_digest,
            image_digest=image_digest(classifier.prepare(image)), prediction_id=prediction,
            prediction=names[prediction], probability=float(probs[prediction]), class_shown_id=int(shown),
            class_shown=names[shown], reveal_class=trial.class_shown != "top", options=options,
            shuffle_options=shuffle, keys=keys)
    return StudyFacts(study.id, study.digest, trials)


# -- precomputing the explanations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrecomputeReport:
    facts: StudyFacts
    computed: int  # explanations computed now
    cached: int  # explanations already in the cache
    seconds: float


def precompute(study: Study, cache: Any, *, progress: StudyProgress | None = None,
               load: Callable[[str], Any] | None = None) -> PrecomputeReport:
    """Fills ``cache`` with every explanation the study can show, skipping those already there (so a run
    that was stopped resumes where it stopped), and stores the study's facts (see :func:`load_facts`).

    ``progress(done, total, label)`` is called before each explanation and once at the end; it may return a
    callback that counts that explanation's model evaluations.
    """
    from explainers.api import explain_cached
    from explainers.images import load_image
    from explainers.methods import ParameterError
    from models import load_classifier

    started = time.perf_counter()
    load = load or load_classifier
    classifiers: dict[str, Any] = {}

    def classifier_for(model: str) -> Any:
        if model not in classifiers:
            classifiers[model] = load(model)
        return classifiers[model]

    facts = compute_facts(study, classifier_for)
    cache.put_json(facts_key(study), facts.to_json())  # before the explanations, so is_ready can count them
    jobs = [(index, trial, condition) for index, trial in enumerate(study.trials)
            for condition in study.conditions_for(trial) if condition != NO_EXPLANATION]
    computed = cached = 0
    for done, (index, trial, condition) in enumerate(jobs):
        shown = facts.trials[trial.id]
        label = f"{condition} on {trial.id} ({trial.model}, {Path(trial.image).name}, class {shown.class_shown})"
        evaluations = progress(done, len(jobs), label) if progress is not None else None
        classifier = classifier_for(trial.model)
        try:
            _, was_cached = explain_cached(
                cache, classifier, load_image(trial.image_path), condition, top_k=1,
                max_evals=study.budget_for(trial, condition), seed=study.explanation.seed, progress=evaluations,
                params=study.params_for(trial, condition), classes=[shown.class_shown_id],
                image_label=Path(trial.image).name)
        except ParameterError as error:
            raise StudyError([study.problem(f"trials[{index}]", f"cannot be explained with {condition}: "
                                                                 f"{_clause(error)}")]) from None
        cached += was_cached
        computed += not was_cached
    if progress is not None:
        progress(len(jobs), len(jobs), "done")
    return PrecomputeReport(facts, computed, cached, time.perf_counter() - started)


@dataclass(frozen=True)
class Readiness:
    ready: bool
    total: int  # explanations the study needs
    missing: tuple[tuple[str, str], ...]  # (trial id, condition) not in the cache
    message: str  # one sentence for the researcher


def is_ready(study: Study, cache: Any) -> Readiness:
    """Whether every explanation of the study is in the cache (never evaluates a model)."""
    facts = load_facts(study, cache)
    total = sum(1 for trial in study.trials for c in study.conditions_for(trial) if c != NO_EXPLANATION)
    command = f"python -m explainers study precompute {study.path or study.id}"
    if facts is None:
        return Readiness(False, total, tuple((t.id, c) for t in study.trials for c in study.conditions_for(t)
                                             if c != NO_EXPLANATION),
                         f"The study {study.id} has not been precomputed (or was edited since); run: {command}")
    missing = tuple((trial_id, condition) for trial_id, trial_facts in facts.trials.items()
                    for condition, key in trial_facts.keys.items() if key not in cache)
    if missing:
        return Readiness(False, total, missing, f"{len(missing)} of {total} explanations of the study {study.id} are "
                                                f"not in the cache; run: {command}")
    return Readiness(True, total, (), f"All {total} explanations of the study {study.id} are ready.")


# -- a participant's plan ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedTrial:
    """What one participant sees at one position: fixed when they consent, kept with them in the store."""

    position: int
    trial_id: str
    condition: str  # a method or NO_EXPLANATION; never shown to the participant (blinding)
    model: str
    image: str
    class_shown_id: int
    class_shown: str
    reveal_class: bool
    prediction: str  # the model's answer, for forward simulation's "correct"
    options: tuple[str, ...]  # forward simulation's answers, in the order to show them
    explanation_key: str | None  # the cache key of the explanation; None in the control

    @property
    def explained(self) -> bool:
        return self.condition != NO_EXPLANATION

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "options": list(self.options)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "PlannedTrial":
        return cls(**{**data, "options": tuple(data["options"])})


def participant_plan(study: Study, facts: StudyFacts, participant_number: int) -> list[PlannedTrial]:
    """:func:`assignment` with what the page needs to show each trial (options in this participant's order)."""
    plan = []
    for item in assignment(study, participant_number):
        trial_facts = facts.trials[item.trial.id]
        options = trial_facts.options
        if trial_facts.shuffle_options:
            options = tuple(_rng(study, "options", participant_number, item.trial.id).sample(list(options),
                                                                                            len(options)))
        plan.append(PlannedTrial(
            position=item.position, trial_id=item.trial.id, condition=item.condition, model=item.trial.model,
            image=item.trial.image, class_shown_id=trial_facts.class_shown_id, class_shown=trial_facts.class_shown,
            reveal_class=trial_facts.reveal_class, prediction=trial_facts.prediction, options=options,
            explanation_key=trial_facts.keys.get(item.condition)))
    return plan


def condition_label(condition: str) -> str:
    """How a condition is named to the researcher (participants never see it)."""
    return "no explanation" if condition == NO_EXPLANATION else condition


def questions_for(study: Study, planned: PlannedTrial) -> tuple[Question, ...]:
    """The questions asked after this trial (explanation-only ones are skipped in the control)."""
    return tuple(q for q in study.questions if planned.explained or not q.only_with_explanation)


def study_explanation(cache: Any, planned: PlannedTrial) -> Any | None:
    """The trial's precomputed explanation narrowed to the class shown; None in the control or when the
    cache lost it (see :func:`is_ready`)."""
    if planned.explanation_key is None:
        return None
    explanation = cache.get(planned.explanation_key)
    if explanation is None:
        return None
    return explanation.for_classes([planned.class_shown_id], (planned.class_shown,))


def trial_image(study: Study, planned: PlannedTrial) -> Any:
    """The trial's image as the model sees it (at its input size), for drawing."""
    from explainers.images import load_image
    from models import get_spec, resize_for

    return resize_for(get_spec(planned.model), load_image(study.trial(planned.trial_id).image_path))


def clean_answers(study: Study, planned: PlannedTrial, answers: Mapping[str, Any]) -> dict[str, str]:
    """The answers as stored text, checked against the questions. Blank optional answers are left out;
    a blank required one, a value out of range or an unknown question raise AnswerError."""
    known = {question.id for question in study.questions}
    unknown = sorted(set(answers) - known)
    if unknown:
        raise AnswerError(f"There is no question {unknown[0]!r} in this study.")
    cleaned: dict[str, str] = {}
    for question in questions_for(study, planned):
        value = answers.get(question.id)
        if value is None or (isinstance(value, str) and not value.strip()):
            if question.required:
                raise AnswerError(f"Please answer: {question.prompt}")
            continue
        if question.kind in ("forward_simulation", "choice"):
            options = planned.options if question.kind == "forward_simulation" else question.options
            if str(value) not in options:
                raise AnswerError(f"Choose one of the answers offered for: {question.prompt}")
            cleaned[question.id] = str(value)
        elif question.kind == "likert":
            number = _number(value)
            if number is None or number != int(number) or not 1 <= number <= question.points:
                raise AnswerError(f"Answer {question.prompt} with a whole number from 1 to {question.points}.")
            cleaned[question.id] = str(int(number))
        elif question.kind == "percent":
            number = _number(value)
            if number is None or not 0 <= number <= 100:
                raise AnswerError(f"Answer {question.prompt} with a percentage from 0 to 100.")
            cleaned[question.id] = f"{number:g}"
        else:
            text = str(value).strip()
            if len(text) > MAX_TEXT_ANSWER:
                raise AnswerError(f"Please shorten your answer to {MAX_TEXT_ANSWER} characters or fewer.")
            cleaned[question.id] = text
    return cleaned


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def is_correct(planned: PlannedTrial, answer: str) -> bool:
    """Whether a forward-simulation answer is what the model says."""
    if answer == OTHER_OPTION:
        return planned.prediction not in planned.options
    return answer == planned.prediction


# -- storage ----------------------------------------------------------------------------------------------------


def default_study_dir() -> Path:
    """$EXPLAINERS_STUDY_DIR, else $XDG_DATA_HOME/shap-image-studio, else ~/.local/share/shap-image-studio.

    Not the cache folder: answers are data, and caches get deleted.
    """
    configured = os.environ.get("EXPLAINERS_STUDY_DIR")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "shap-image-studio"


_STORE_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS participants (
    id TEXT PRIMARY KEY,
    study TEXT NOT NULL,
    number INTEGER NOT NULL,
    study_digest TEXT NOT NULL,
    plan TEXT NOT NULL,
    consented_at REAL NOT NULL,
    finished_at REAL,
    UNIQUE (study, number)
);
CREATE TABLE IF NOT EXISTS trials (
    participant TEXT NOT NULL REFERENCES participants (id),
    position INTEGER NOT NULL,
    shown_at REAL,
    answered_at REAL,
    seconds REAL,
    PRIMARY KEY (participant, position)
);
CREATE TABLE IF NOT EXISTS answers (
    participant TEXT NOT NULL REFERENCES participants (id),
    position INTEGER NOT NULL,
    trial_id TEXT NOT NULL,
    condition TEXT NOT NULL,
    question TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    correct INTEGER,
    seconds REAL,
    answered_at REAL NOT NULL,
    PRIMARY KEY (participant, position, question)
);
"""

# Crockford's base32: no I, L, O or U, so an id read aloud or copied by hand survives (see normalise_id).
_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ID_LENGTH = 8


def new_participant_id() -> str:
    """A random anonymous id: 8 characters of Crockford base32 (40 bits)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(ID_LENGTH))


def normalise_id(text: str) -> str:
    """An id as typed back: case, spaces and dashes ignored, and I/L read as 1, O as 0."""
    cleaned = re.sub(r"[\s-]", "", str(text)).upper()
    return cleaned.translate(str.maketrans({"I": "1", "L": "1", "O": "0"}))


@dataclass(frozen=True)
class Participant:
    id: str
    study_id: str
    number: int  # 0, 1, 2, … in order of arrival: decides the conditions (see assignment)
    plan: tuple[PlannedTrial, ...]
    consented_at: float
    finished_at: float | None

    @property
    def finished(self) -> bool:
        return self.finished_at is not None


@dataclass(frozen=True)
class Progress:
    done: int  # trials answered
    total: int
    next_position: int | None  # the first unanswered trial; None when finished

    @property
    def finished(self) -> bool:
        return self.next_position is None


@dataclass(frozen=True)
class RecordedTrial:
    position: int
    seconds: float | None  # from the first time the trial was shown to the answers
    new: bool  # False when these answers had already been recorded (a resubmission; nothing changed)
    finished: bool  # the participant has answered every trial


EXPORT_COLUMNS = ("study", "participant", "participant_number", "trial_position", "trial_id", "model", "image",
                  "class_shown", "prediction", "condition", "question", "kind", "value", "correct", "seconds",
                  "answered_at")


class StudyStore:
    """Participants and answers in one SQLite file (default ``default_study_dir()/studies.sqlite3``).

    WAL with ``synchronous=FULL``: a committed answer survives the process being killed and the machine losing
    power. Every write is one short ``BEGIN IMMEDIATE`` transaction; writers wait (busy timeout 30 s) instead
    of failing. A trial's answers are committed together or not at all. Resubmitting answers of a trial
    already answered (a reload, a double click) keeps the first answers and their timing: it returns
    ``new=False`` and changes nothing.
    """

    def __init__(self, path: str | Path | None = None, clock: Callable[[], float] = time.time):
        self.path = Path(path) if path is not None else default_study_dir() / "studies.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        with self._connect() as db:
            db.executescript(_STORE_SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(STORE_SCHEMA_VERSION),))

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=30000")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            yield db
        finally:
            db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    # -- participants ----------------------------------------------------------------------------------------

    def create_participant(self, study: Study, facts: StudyFacts) -> Participant:
        """A new participant who has just consented: a fresh anonymous id, the next number (assigned
        atomically, so concurrent arrivals stay balanced) and their plan."""
        if facts.study_digest != study.digest:
            raise ValueError("These facts belong to another version of the study; precompute it again.")
        now = self.clock()
        for _ in range(10):
            participant_id = new_participant_id()
            try:
                with self._transaction() as db:
                    number = db.execute("SELECT COALESCE(MAX(number) + 1, 0) FROM participants WHERE study = ?",
                                        (study.id,)).fetchone()[0]
                    plan = tuple(participant_plan(study, facts, number))
                    db.execute("INSERT INTO participants VALUES (?, ?, ?, ?, ?, ?, NULL)",
                               (participant_id, study.id, number, study.digest,
                                json.dumps([item.to_json() for item in plan]), now))
                return Participant(participant_id, study.id, number, plan, now, None)
            except sqlite3.IntegrityError:  # the id was taken (40 random bits: rare); draw another
                continue
        raise RuntimeError("could not draw an unused participant id")

    def get_participant(self, study_id: str, participant_id: str) -> Participant | None:
        """The participant with this id (as typed back: see normalise_id) in this study, or None."""
        with self._connect() as db:
            row = db.execute("SELECT id, study, number, plan, consented_at, finished_at FROM participants "
                             "WHERE id = ? AND study = ?", (normalise_id(participant_id), study_id)).fetchone()
        return None if row is None else _participant(row)

    def participants(self, study_id: str) -> list[Participant]:
        """Every participant of a study, in order of arrival."""
        with self._connect() as db:
            rows = db.execute("SELECT id, study, number, plan, consented_at, finished_at FROM participants "
                              "WHERE study = ? ORDER BY number", (study_id,)).fetchall()
        return [_participant(row) for row in rows]

    def progress(self, participant_id: str) -> Progress:
        """How far a participant got; ``next_position`` is where they resume."""
        with self._connect() as db:
            return self._progress(db, normalise_id(participant_id))

    def _progress(self, db: sqlite3.Connection, participant_id: str) -> Progress:
        row = db.execute("SELECT plan FROM participants WHERE id = ?", (participant_id,)).fetchone()
        if row is None:
            raise KeyError(f"There is no participant {participant_id}.")
        total = len(json.loads(row[0]))
        answered = {position for (position,) in db.execute(
            "SELECT position FROM trials WHERE participant = ? AND answered_at IS NOT NULL", (participant_id,))}
        remaining = [position for position in range(total) if position not in answered]
        return Progress(len(answered), total, remaining[0] if remaining else None)

    def mark_shown(self, participant_id: str, position: int) -> float:
        """Records when a trial was first shown (a reload keeps the first time); returns that time."""
        participant_id = normalise_id(participant_id)
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO trials (participant, position, shown_at) VALUES (?, ?, ?)",
                       (participant_id, position, self.clock()))
            db.execute("UPDATE trials SET shown_at = ? WHERE participant = ? AND position = ? AND shown_at IS NULL",
                       (self.clock(), participant_id, position))
            return db.execute("SELECT shown_at FROM trials WHERE participant = ? AND position = ?",
                              (participant_id, position)).fetchone()[0]

    # -- answers ---------------------------------------------------------------------------------------------

    def record_trial_answers(self, study: Study, participant_id: str, position: int,
                             answers: Mapping[str, Any]) -> RecordedTrial:
        """Stores every answer of one trial in one transaction, with the seconds since it was first shown.

        Raises AnswerError for answers that do not fit the questions, or for a trial other than the next one.
        """
        participant_id = normalise_id(participant_id)
        with self._transaction() as db:
            row = db.execute("SELECT plan FROM participants WHERE id = ? AND study = ?",
                             (participant_id, study.id)).fetchone()
            if row is None:
                raise AnswerError(f"There is no participant {participant_id} in this study.")
            plan = [PlannedTrial.from_json(item) for item in json.loads(row[0])]
            if not 0 <= position < len(plan):
                raise AnswerError(f"This study has trials 1 to {len(plan)}, not {position + 1}.")
            done = db.execute("SELECT seconds FROM trials WHERE participant = ? AND position = ? AND answered_at "
                              "IS NOT NULL", (participant_id, position)).fetchone()
            if done is not None:
                progress = self._progress(db, participant_id)
                return RecordedTrial(position, done[0], False, progress.finished)
            progress = self._progress(db, participant_id)
            if position != progress.next_position:
                raise AnswerError(f"Please answer trial {progress.next_position + 1} first.")  # type: ignore[operator]
            planned = plan[position]
            cleaned = clean_answers(study, planned, answers)
            now = self.clock()
            shown = db.execute("SELECT shown_at FROM trials WHERE participant = ? AND position = ?",
                               (participant_id, position)).fetchone()
            seconds = now - shown[0] if shown is not None and shown[0] is not None else None
            db.execute("INSERT OR IGNORE INTO trials (participant, position) VALUES (?, ?)",
                       (participant_id, position))
            db.execute("UPDATE trials SET answered_at = ?, seconds = ? WHERE participant = ? AND position = ?",
                       (now, seconds, participant_id, position))
            for question_id, value in cleaned.items():
                kind = study.question(question_id).kind
                correct = int(is_correct(planned, value)) if kind == "forward_simulation" else None
                db.execute("INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (participant_id, position, planned.trial_id, planned.condition, question_id, kind,
                            value, correct, seconds, now))
            finished = self._progress(db, participant_id).finished
            if finished:
                db.execute("UPDATE participants SET finished_at = ? WHERE id = ?", (now, participant_id))
            return RecordedTrial(position, seconds, True, finished)

    def answer_rows(self, study_id: str) -> list[dict[str, Any]]:
        """Every answer of a study, one dict per answer with the EXPORT_COLUMNS (tidy: one row per answer),
        in order of participant number, trial position and question."""
        with self._connect() as db:
            participants = {row[0]: _participant(row) for row in db.execute(
                "SELECT id, study, number, plan, consented_at, finished_at FROM participants WHERE study = ?",
                (study_id,))}
            rows = db.execute(
                "SELECT a.participant, a.position, a.trial_id, a.condition, a.question, a.kind, a.value, "
                "a.correct, a.seconds, a.answered_at FROM answers a JOIN participants p ON p.id = a.participant "
                "WHERE p.study = ? ORDER BY p.number, a.position, a.rowid", (study_id,)).fetchall()
        result = []
        for participant_id, position, trial_id, condition, question, kind, value, correct, seconds, at in rows:
            participant = participants[participant_id]
            planned = participant.plan[position]
            result.append({
                "study": study_id, "participant": participant_id, "participant_number": participant.number,
                "trial_position": position, "trial_id": trial_id, "model": planned.model, "image": planned.image,
                "class_shown": planned.class_shown, "prediction": planned.prediction, "condition": condition,
                "question": question, "kind": kind, "value": value,
                "correct": None if correct is None else bool(correct), "seconds": seconds,
                "answered_at": datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="milliseconds"),
            })
        return result

    def export_csv(self, study_id: str, target: str | Path | TextIO) -> int:
        """Writes the answers as CSV (EXPORT_COLUMNS, one row per answer; correct as 1/0, blank where it does
        not apply); returns the number of answers written."""
        rows = self.answer_rows(study_id)
        if isinstance(target, (str, Path)):
            with open(target, "w", newline="", encoding="utf-8") as handle:
                return self._write_csv(rows, handle)
        return self._write_csv(rows, target)

    @staticmethod
    def _write_csv(rows: list[dict[str, Any]], handle: TextIO) -> int:
        writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "correct": "" if row["correct"] is None else int(row["correct"]),
                             "seconds": "" if row["seconds"] is None else f"{row['seconds']:.3f}"})
        return len(rows)


def _participant(row: Sequence[Any]) -> Participant:
    participant_id, study_id, number, plan, consented_at, finished_at = row
    return Participant(participant_id, study_id, number,
                       tuple(PlannedTrial.from_json(item) for item in json.loads(plan)), consented_at, finished_at)


def answers_csv(store: StudyStore, study_id: str) -> str:
    """The CSV export as text (for a download button)."""
    buffer = io.StringIO()
    store.export_csv(study_id, buffer)
    return buffer.getvalue()


# -- results ----------------------------------------------------------------------------------------------------


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float | None, float | None]:
    """The t-interval of the mean; (None, None) with fewer than two values."""
    if len(values) < 2:
        return None, None
    from scipy import stats

    mean = statistics.fmean(values)
    half = float(stats.t.ppf((1 + confidence) / 2, len(values) - 1)) * statistics.stdev(values) / math.sqrt(len(values))
    return mean - half, mean + half


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Wilson's score interval of a proportion; (None, None) without trials."""
    if trials == 0:
        return None, None
    from statistics import NormalDist

    z = NormalDist().inv_cdf((1 + confidence) / 2)
    share = successes / trials
    denominator = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _condition_order(study: Study, seen: Sequence[str]) -> list[str]:
    order = list(study.conditions)
    order += [condition for condition in dict.fromkeys(seen) if condition not in order]
    return order


def _per_participant_means(rows: Sequence[Mapping[str, Any]], value: Callable[[Mapping[str, Any]], float | None]
                           ) -> tuple[list[float], int]:
    """One mean per participant (their answers are not independent of each other) and the answer count."""
    by_participant: dict[str, list[float]] = {}
    for row in rows:
        number = value(row)
        if number is not None:
            by_participant.setdefault(row["participant"], []).append(number)
    return [statistics.fmean(values) for values in by_participant.values()], sum(map(len, by_participant.values()))


def summarise(study: Study, store: StudyStore) -> dict[str, Any]:
    """The study's results as plain data (lists of dicts, ready for tables and plotly):

    - ``participants``: started, finished, per-condition counts (between subjects) and one row per
      participant (number, trials done of total, finished);
    - ``questions``: per numeric question and condition: answers, participants, mean and 95% t-interval;
    - ``accuracy``: per forward-simulation question and condition: answers, correct, accuracy and 95% Wilson
      interval;
    - ``time``: per condition: trials, mean and median seconds and the 95% t-interval of the mean.

    Means and t-intervals are over participant means (one participant's answers are not independent);
    accuracy's interval is over answers.
    """
    participants = store.participants(study.id)
    rows = store.answer_rows(study.id)
    conditions = _condition_order(study, [row["condition"] for row in rows])
    completion = []
    for participant in participants:
        progress = store.progress(participant.id)
        completion.append({"participant": participant.id, "number": participant.number, "done": progress.done,
                           "total": progress.total, "finished": progress.finished})
    by_condition: dict[str, int] = {}
    if study.randomisation.design == "between":  # each participant's one condition: that of any unpinned trial
        free = {trial.id for trial in study.trials if trial.method is None}
        for participant in participants:
            condition = next((item.condition for item in participant.plan if item.trial_id in free), None)
            if condition is not None:
                by_condition[condition] = by_condition.get(condition, 0) + 1

    questions = []
    accuracy = []
    for question in study.questions:
        for condition in conditions:
            subset = [row for row in rows if row["question"] == question.id and row["condition"] == condition]
            if question.numeric:
                if not subset and question.only_with_explanation and condition == NO_EXPLANATION:
                    continue
                means, count = _per_participant_means(subset, lambda row: _number(row["value"]))
                low, high = t_interval(means)
                questions.append({"question": question.id, "prompt": question.prompt, "kind": question.kind,
                                  "condition": condition, "answers": count, "participants": len(means),
                                  "mean": statistics.fmean(means) if means else None, "ci_low": low, "ci_high": high})
            elif question.kind == "forward_simulation":
                correct = sum(1 for row in subset if row["correct"])
                low, high = wilson_interval(correct, len(subset))
                accuracy.append({"question": question.id, "condition": condition, "answers": len(subset),
                                 "correct": correct, "accuracy": correct / len(subset) if subset else None,
                                 "ci_low": low, "ci_high": high})

    # One timing per answered trial: the rows of a trial share its seconds.
    trial_seconds: dict[tuple[str, int], tuple[str, float]] = {}
    for row in rows:
        if row["seconds"] is not None:
            trial_seconds[(row["participant"], row["trial_position"])] = (row["condition"], row["seconds"])
    timing = []
    for condition in conditions:
        per_trial = [{"participant": key[0], "seconds": seconds} for key, (c, seconds) in trial_seconds.items()
                     if c == condition]
        means, count = _per_participant_means(per_trial, lambda row: row["seconds"])
        low, high = t_interval(means)
        seconds = [row["seconds"] for row in per_trial]
        timing.append({"condition": condition, "trials": count, "participants": len(means),
                       "mean": statistics.fmean(means) if means else None,
                       "median": statistics.median(seconds) if seconds else None, "ci_low": low, "ci_high": high})
    return {
        "study": study.id,
        "title": study.title,
        "conditions": conditions,
        "participants": {"started": len(participants), "finished": sum(p.finished for p in participants),
                         "by_condition": by_condition, "rows": completion},
        "questions": questions,
        "accuracy": accuracy,
        "time": timing,
    }


# -- the researcher's password ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    granted: bool
    message: str  # one sentence for the page; empty when granted


LOCKED_MESSAGE = (f"The results are locked because no password is configured: set {PASSWORD_SECRET} in "
                  f".streamlit/secrets.toml or the environment variable {PASSWORD_ENV}.")


def configured_password(secrets: Mapping[str, Any] | None = None,
                        environ: Mapping[str, str] | None = None) -> str | None:
    """The results password: ``secrets[PASSWORD_SECRET]`` (e.g. st.secrets), else $STUDY_RESULTS_PASSWORD;
    None when neither is set (or is empty)."""
    if secrets is not None:
        try:
            value = secrets.get(PASSWORD_SECRET)
        except Exception:  # noqa: BLE001 - st.secrets raises when there is no secrets file at all
            value = None
        if value:
            return str(value)
    value = (os.environ if environ is None else environ).get(PASSWORD_ENV)
    return value or None


def check_password(given: str | None, expected: str | None) -> bool:
    """Whether ``given`` is the password, compared in constant time; always False when none is configured."""
    if not expected or given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def results_access(given: str | None, secrets: Mapping[str, Any] | None = None,
                   environ: Mapping[str, str] | None = None) -> Access:
    """Whether the results page may open for this password; never open without a configured password."""
    expected = configured_password(secrets, environ)
    if expected is None:
        return Access(False, LOCKED_MESSAGE)
    if not given:
        return Access(False, "Enter the results password.")
    if not check_password(given, expected):
        return Access(False, "That password is wrong.")
    return Access(True, "")
