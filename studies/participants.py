"""A study's participants as the answer store keeps them: their anonymous ids, their plans and how far they got."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from studies.design import PlannedTrial

# Crockford's base32: no I, L, O or U, so an id read aloud or copied by hand survives (see normalise_id).
_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ID_LENGTH = 8


def new_participant_id() -> str:
    """A random anonymous id: 8 characters of Crockford base32 (40 bits)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(ID_LENGTH))


def normalise_id(text: str) -> str:
    """An id as typed back: case, spaces and dashes ignored, and I/L read as 1, O as 0."""
    cleaned = re.sub(r"[\s-]", "", str(text)).upper()
    return cleaned.translate(str.maketrans("ILO", "110"))


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
class TrialProgress:
    """How far a participant got through their trials."""

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
