"""What a study is: its trials, questions, randomisation and explanation settings, the constants of the study
file, and the errors a study file or a participant's answers can raise."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


# -- field paths and their lines --------------------------------------------------------------------------------


_LAST_PART = re.compile(r"(\.[^.\[]+|\[\d+\])$")


def field_line(lines: Mapping[str, int], path: str) -> int | None:
    """The line of a field (e.g. ``trials[2].method``), else of the nearest field that encloses it."""
    while path:
        if path in lines:
            return lines[path]
        trimmed = _LAST_PART.sub("", path)
        if trimmed == path:
            return None
        path = trimmed
    return None


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
    # In a "read first" study, asked with the image alone and stored before the explanation is shown.
    before_explanation: bool = False

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC_KINDS


DEFAULT_QUESTIONS = (
    Question("forward", "forward_simulation", "What will the model say this image shows?", before_explanation=True),
    Question(
        "confidence",
        "likert",
        "How confident are you in that answer?",
        labels=("not at all confident", "completely confident"),
        before_explanation=True,
    ),
    Question(
        "trust",
        "likert",
        "How much do you trust this explanation?",
        labels=("not at all", "completely"),
        only_with_explanation=True,
    ),
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
    # Read first: each trial opens with the image alone; the questions marked before_explanation are answered
    # and stored before the explanation and the other questions appear (the safer protocol for readers).
    read_first: bool = False
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
        return field_line(self.lines, path)

    def problem(self, path: str, message: str) -> Problem:
        return Problem(self.path.name if self.path else self.id, self.line_of(path), path, message)
