"""The answer store: participants and their answers in one SQLite file, each submitted trial one
transaction, and the CSV export (a trial's answers are checked and written out in studies.answers)."""

from __future__ import annotations

import io
import json
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import storage
from storage import connect, transaction
from studies.answers import EXPORT_COLUMNS, as_number, clean_answers, is_correct, write_answers_csv
from studies.design import PlannedTrial, participant_plan, reads_first
from studies.participants import ID_LENGTH, Participant, RecordedTrial, TrialProgress, new_participant_id, normalise_id
from studies.precompute import StudyFacts
from studies.schema import AnswerError, Study

__all__ = [
    "EXPORT_COLUMNS",
    "ID_LENGTH",
    "STORE_SCHEMA_VERSION",
    "Participant",
    "RecordedTrial",
    "StudyStore",
    "TrialProgress",
    "answers_csv",
    "as_number",
    "clean_answers",
    "is_correct",
    "new_participant_id",
    "normalise_id",
]

STORE_SCHEMA_VERSION = 1

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


class StudyStore:
    """Participants and answers in one SQLite file (default ``storage.folder("answers")/studies.sqlite3``).

    WAL with ``synchronous=FULL``: a committed answer survives the process being killed and the machine losing
    power. Every write is one short ``BEGIN IMMEDIATE`` transaction; writers wait (busy timeout 30 s) instead
    of failing. A trial's answers are committed together or not at all. Resubmitting answers of a trial
    already answered (a reload, a double click) keeps the first answers and their timing: it returns
    ``new=False`` and changes nothing.
    """

    def __init__(self, path: str | Path | None = None, clock: Callable[[], float] = time.time):
        self.path = Path(path) if path is not None else storage.folder("answers") / "studies.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        with self._open() as db:
            db.executescript(_STORE_SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(STORE_SCHEMA_VERSION),))

    def _open(self) -> AbstractContextManager[sqlite3.Connection]:
        # FULL: a committed answer survives a power cut; foreign keys keep answers tied to a participant.
        return connect(self.path, synchronous="FULL", foreign_keys=True)

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
                with self._open() as db, transaction(db):
                    number = db.execute(
                        "SELECT COALESCE(MAX(number) + 1, 0) FROM participants WHERE study = ?", (study.id,)
                    ).fetchone()[0]
                    plan = tuple(participant_plan(study, facts, number))
                    db.execute(
                        "INSERT INTO participants VALUES (?, ?, ?, ?, ?, ?, NULL)",
                        (
                            participant_id,
                            study.id,
                            number,
                            study.digest,
                            json.dumps([item.to_json() for item in plan]),
                            now,
                        ),
                    )
                return Participant(participant_id, study.id, number, plan, now, None)
            except sqlite3.IntegrityError:  # the id was taken (40 random bits: rare); draw another
                continue
        raise RuntimeError("could not draw an unused participant id")

    def get_participant(self, study_id: str, participant_id: str) -> Participant | None:
        """The participant with this id (as typed back: see normalise_id) in this study, or None."""
        with self._open() as db:
            row = db.execute(
                "SELECT id, study, number, plan, consented_at, finished_at FROM participants "
                "WHERE id = ? AND study = ?",
                (normalise_id(participant_id), study_id),
            ).fetchone()
        return None if row is None else _participant(row)

    def participants(self, study_id: str) -> list[Participant]:
        """Every participant of a study, in order of arrival."""
        with self._open() as db:
            rows = db.execute(
                "SELECT id, study, number, plan, consented_at, finished_at FROM participants "
                "WHERE study = ? ORDER BY number",
                (study_id,),
            ).fetchall()
        return [_participant(row) for row in rows]

    def progress(self, participant_id: str) -> TrialProgress:
        """How far a participant got; ``next_position`` is where they resume."""
        with self._open() as db:
            return self._progress(db, normalise_id(participant_id))

    def _progress(self, db: sqlite3.Connection, participant_id: str) -> TrialProgress:
        row = db.execute("SELECT plan FROM participants WHERE id = ?", (participant_id,)).fetchone()
        if row is None:
            raise KeyError(f"There is no participant {participant_id}.")
        total = len(json.loads(row[0]))
        answered = {
            position
            for (position,) in db.execute(
                "SELECT position FROM trials WHERE participant = ? AND answered_at IS NOT NULL", (participant_id,)
            )
        }
        remaining = [position for position in range(total) if position not in answered]
        return TrialProgress(len(answered), total, remaining[0] if remaining else None)

    def mark_shown(self, participant_id: str, position: int) -> float:
        """Records when a trial was first shown (a reload keeps the first time); returns that time."""
        participant_id = normalise_id(participant_id)
        with self._open() as db, transaction(db):
            db.execute(
                "INSERT OR IGNORE INTO trials (participant, position, shown_at) VALUES (?, ?, ?)",
                (participant_id, position, self.clock()),
            )
            db.execute(
                "UPDATE trials SET shown_at = ? WHERE participant = ? AND position = ? AND shown_at IS NULL",
                (self.clock(), participant_id, position),
            )
            return db.execute(
                "SELECT shown_at FROM trials WHERE participant = ? AND position = ?", (participant_id, position)
            ).fetchone()[0]

    # -- answers ---------------------------------------------------------------------------------------------

    def record_read(self, study: Study, participant_id: str, position: int, answers: Mapping[str, Any]) -> float:
        """Stores a read-first trial's read (its before_explanation answers) in one transaction, before the
        explanation is shown; returns the seconds since the trial was first shown. A second call keeps the
        first read (it was made before the explanation was seen)."""
        participant_id = normalise_id(participant_id)
        with self._open() as db, transaction(db):
            planned = self._next_trial(db, study, participant_id, position)
            if planned is None or not reads_first(study, planned):
                raise AnswerError("This trial does not ask for a read first.")
            if self._read_recorded(db, participant_id, position):
                return 0.0
            cleaned = clean_answers(study, planned, answers, "read")
            now = self.clock()
            seconds = self._seconds(db, participant_id, position, now)
            self._insert(db, study, participant_id, position, planned, cleaned, seconds, now)
            return seconds or 0.0

    def read_recorded(self, participant_id: str, position: int) -> bool:
        with self._open() as db:
            return self._read_recorded(db, normalise_id(participant_id), position)

    def _read_recorded(self, db: sqlite3.Connection, participant_id: str, position: int) -> bool:
        found = db.execute(
            "SELECT 1 FROM answers WHERE participant = ? AND position = ? LIMIT 1", (participant_id, position)
        ).fetchone()
        return found is not None

    def _next_trial(
        self, db: sqlite3.Connection, study: Study, participant_id: str, position: int
    ) -> PlannedTrial | None:
        """The trial at ``position`` if it is the next one to answer; None if it is answered already; raises
        AnswerError for an unknown participant or a trial out of turn."""
        row = db.execute(
            "SELECT plan FROM participants WHERE id = ? AND study = ?", (participant_id, study.id)
        ).fetchone()
        if row is None:
            raise AnswerError(f"There is no participant {participant_id} in this study.")
        plan = [PlannedTrial.from_json(item) for item in json.loads(row[0])]
        if not 0 <= position < len(plan):
            raise AnswerError(f"This study has trials 1 to {len(plan)}, not {position + 1}.")
        done = db.execute(
            "SELECT 1 FROM trials WHERE participant = ? AND position = ? AND answered_at IS NOT NULL",
            (participant_id, position),
        ).fetchone()
        if done is not None:
            return None
        progress = self._progress(db, participant_id)
        if progress.next_position is None:  # every trial answered, and this one is not among them
            raise AnswerError(f"This study has no trial {position + 1}.")
        if position != progress.next_position:
            raise AnswerError(f"Please answer trial {progress.next_position + 1} first.")
        return plan[position]

    def _seconds(self, db: sqlite3.Connection, participant_id: str, position: int, now: float) -> float | None:
        shown = db.execute(
            "SELECT shown_at FROM trials WHERE participant = ? AND position = ?", (participant_id, position)
        ).fetchone()
        return now - shown[0] if shown is not None and shown[0] is not None else None

    def _insert(
        self,
        db: sqlite3.Connection,
        study: Study,
        participant_id: str,
        position: int,
        planned: PlannedTrial,
        cleaned: Mapping[str, str],
        seconds: float | None,
        now: float,
    ) -> None:
        for question_id, value in cleaned.items():
            kind = study.question(question_id).kind
            correct = int(is_correct(planned, value)) if kind == "forward_simulation" else None
            db.execute(
                "INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (participant_id, position, planned.trial_id, planned.condition, question_id, kind, value, correct)
                + (seconds, now),
            )

    def record_trial_answers(
        self, study: Study, participant_id: str, position: int, answers: Mapping[str, Any]
    ) -> RecordedTrial:
        """Stores every answer of one trial in one transaction (in a read-first trial, those after the
        explanation; the read is stored by record_read first), with the seconds since it was first shown.

        Raises AnswerError for answers that do not fit the questions, or for a trial other than the next one.
        """
        participant_id = normalise_id(participant_id)
        with self._open() as db, transaction(db):
            planned = self._next_trial(db, study, participant_id, position)
            if planned is None:
                done = db.execute(
                    "SELECT seconds FROM trials WHERE participant = ? AND position = ?", (participant_id, position)
                ).fetchone()
                return RecordedTrial(position, done[0], False, self._progress(db, participant_id).finished)
            phase = "all"
            if reads_first(study, planned):
                if not self._read_recorded(db, participant_id, position):
                    raise AnswerError("Please record your own read of the image first.")
                phase = "rest"
            cleaned = clean_answers(study, planned, answers, phase)
            now = self.clock()
            seconds = self._seconds(db, participant_id, position, now)
            db.execute("INSERT OR IGNORE INTO trials (participant, position) VALUES (?, ?)", (participant_id, position))
            db.execute(
                "UPDATE trials SET answered_at = ?, seconds = ? WHERE participant = ? AND position = ?",
                (now, seconds, participant_id, position),
            )
            self._insert(db, study, participant_id, position, planned, cleaned, seconds, now)
            finished = self._progress(db, participant_id).finished
            if finished:
                db.execute("UPDATE participants SET finished_at = ? WHERE id = ?", (now, participant_id))
            return RecordedTrial(position, seconds, True, finished)

    def answer_rows(self, study_id: str) -> list[dict[str, Any]]:
        """Every answer of a study, one dict per answer with the EXPORT_COLUMNS (tidy: one row per answer),
        in order of participant number, trial position and question."""
        with self._open() as db:
            participants = {
                row[0]: _participant(row)
                for row in db.execute(
                    "SELECT id, study, number, plan, consented_at, finished_at FROM participants WHERE study = ?",
                    (study_id,),
                )
            }
            rows = db.execute(
                "SELECT a.participant, a.position, a.trial_id, a.condition, a.question, a.kind, a.value, "
                "a.correct, a.seconds, a.answered_at FROM answers a JOIN participants p ON p.id = a.participant "
                "WHERE p.study = ? ORDER BY p.number, a.position, a.rowid",
                (study_id,),
            ).fetchall()
        result = []
        for participant_id, position, trial_id, condition, question, kind, value, correct, seconds, at in rows:
            participant = participants[participant_id]
            planned = participant.plan[position]
            result.append(
                {
                    "study": study_id,
                    "participant": participant_id,
                    "participant_number": participant.number,
                    "trial_position": position,
                    "trial_id": trial_id,
                    "model": planned.model,
                    "image": planned.image,
                    "class_shown": planned.class_shown,
                    "prediction": planned.prediction,
                    "condition": condition,
                    "question": question,
                    "kind": kind,
                    "value": value,
                    "correct": None if correct is None else bool(correct),
                    "seconds": seconds,
                    "answered_at": datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds"),
                }
            )
        return result

    def export_csv(self, study_id: str, target: str | Path | TextIO) -> int:
        """Writes the answers as CSV (EXPORT_COLUMNS, one row per answer; correct as 1/0, blank where it does
        not apply); returns the number of answers written."""
        rows = self.answer_rows(study_id)
        if isinstance(target, (str, Path)):
            with open(target, "w", newline="", encoding="utf-8") as handle:
                return write_answers_csv(rows, handle)
        return write_answers_csv(rows, target)


def _participant(row: Sequence[Any]) -> Participant:
    participant_id, study_id, number, plan, consented_at, finished_at = row
    return Participant(
        participant_id,
        study_id,
        number,
        tuple(PlannedTrial.from_json(item) for item in json.loads(plan)),
        consented_at,
        finished_at,
    )


def answers_csv(store: StudyStore, study_id: str) -> str:
    """The CSV export as text (for a download button)."""
    buffer = io.StringIO()
    store.export_csv(study_id, buffer)
    return buffer.getvalue()
