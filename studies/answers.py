"""A trial's answers, in and out of the store: :func:`clean_answers` checks them against the questions and
turns them into stored text, :func:`is_correct` marks a forward-simulation answer, and
:func:`write_answers_csv` writes the tidy export (EXPORT_COLUMNS, one row per answer)."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from typing import Any, TextIO

from studies.design import PlannedTrial, questions_for
from studies.schema import MAX_TEXT_ANSWER, OTHER_OPTION, AnswerError, Study

EXPORT_COLUMNS = (
    "study",
    "participant",
    "participant_number",
    "trial_position",
    "trial_id",
    "model",
    "image",
    "class_shown",
    "prediction",
    "condition",
    "question",
    "kind",
    "value",
    "correct",
    "seconds",
    "answered_at",
)


def clean_answers(
    study: Study, planned: PlannedTrial, answers: Mapping[str, Any], phase: str = "all"
) -> dict[str, str]:
    """The answers as stored text, checked against the questions (of one phase of a read-first trial: see
    questions_for). Blank optional answers are left out; a blank required one, a value out of range or an
    unknown question raise AnswerError."""
    known = {question.id for question in study.questions}
    unknown = sorted(set(answers) - known)
    if unknown:
        raise AnswerError(f"There is no question {unknown[0]!r} in this study.")
    cleaned: dict[str, str] = {}
    for question in questions_for(study, planned, phase):
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
            number = as_number(value)
            if number is None or number != int(number) or not 1 <= number <= question.points:
                raise AnswerError(f"Answer {question.prompt} with a whole number from 1 to {question.points}.")
            cleaned[question.id] = str(int(number))
        elif question.kind == "percent":
            number = as_number(value)
            if number is None or not 0 <= number <= 100:
                raise AnswerError(f"Answer {question.prompt} with a percentage from 0 to 100.")
            cleaned[question.id] = f"{number:g}"
        else:
            text = str(value).strip()
            if len(text) > MAX_TEXT_ANSWER:
                raise AnswerError(f"Please shorten your answer to {MAX_TEXT_ANSWER} characters or fewer.")
            cleaned[question.id] = text
    return cleaned


def as_number(value: Any) -> float | None:
    """A finite number from an answer (stored as text), else None; True and False are not numbers."""
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


def write_answers_csv(rows: list[dict[str, Any]], handle: TextIO) -> int:
    """Writes answer rows (as ``StudyStore.answer_rows`` gives them) as CSV: EXPORT_COLUMNS, correct as 1/0 and
    blank where it does not apply; returns the number of answers written."""
    writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                **row,
                "correct": "" if row["correct"] is None else int(row["correct"]),
                "seconds": "" if row["seconds"] is None else f"{row['seconds']:.3f}",
            }
        )
    return len(rows)
