"""The randomised design: which trial each participant sees at each position, in which condition, and
what their page needs to show it (:class:`PlannedTrial`). Everything follows from the study's seed and the
participant's number, so a plan can be recomputed and checked."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from studies.facts import StudyFacts
from studies.schema import NO_EXPLANATION, Question, Study, Trial


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
    def from_json(cls, data: Mapping[str, Any]) -> PlannedTrial:
        return cls(**{**data, "options": tuple(data["options"])})


def participant_plan(study: Study, facts: StudyFacts, participant_number: int) -> list[PlannedTrial]:
    """:func:`assignment` with what the page needs to show each trial (options in this participant's order)."""
    plan = []
    for item in assignment(study, participant_number):
        trial_facts = facts.trials[item.trial.id]
        options = trial_facts.options
        if trial_facts.shuffle_options:
            options = tuple(
                _rng(study, "options", participant_number, item.trial.id).sample(list(options), len(options))
            )
        plan.append(
            PlannedTrial(
                position=item.position,
                trial_id=item.trial.id,
                condition=item.condition,
                model=item.trial.model,
                image=item.trial.image,
                class_shown_id=trial_facts.class_shown_id,
                class_shown=trial_facts.class_shown,
                reveal_class=trial_facts.reveal_class,
                prediction=trial_facts.prediction,
                options=options,
                explanation_key=trial_facts.keys.get(item.condition),
            )
        )
    return plan


def condition_label(condition: str) -> str:
    """How a condition is named to the researcher (participants never see it)."""
    return "no explanation" if condition == NO_EXPLANATION else condition


def questions_for(study: Study, planned: PlannedTrial, phase: str = "all") -> tuple[Question, ...]:
    """The questions asked after this trial (explanation-only ones are skipped in the control). In a read-first
    study with an explanation, ``phase`` "read" gives those asked with the image alone and "rest" the others;
    "all" (or a trial without an explanation, asked in one go) gives every one."""
    asked = tuple(q for q in study.questions if planned.explained or not q.only_with_explanation)
    if phase == "all" or not reads_first(study, planned):
        return asked if phase != "read" else ()
    return tuple(q for q in asked if q.before_explanation == (phase == "read"))


def reads_first(study: Study, planned: PlannedTrial) -> bool:
    """Whether this trial opens with the image alone for a read (a read-first study's trials with a map)."""
    return study.read_first and planned.explained
