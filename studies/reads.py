"""The second reader's reads: a reader's own call on a scan (class and confidence), recorded before the model's
verdict and maps are shown, then compared with the model (and with the label where the folder gives one).

A read is kept in SQLite beside the study answers (``storage.folder("answers")/reads.sqlite3``, one transaction
each, ``synchronous=FULL``) with no patient data: the scan is named by the digest of its pixels, never by its file
name or a DICOM field. The reader is the name the reader typed (their own, not the patient's).
"""

from __future__ import annotations

import csv
import io
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import astuple, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sklearn.metrics import cohen_kappa_score

import storage
from storage import connect, transaction

CONFIDENCE_POINTS = 5  # 1: a guess … 5: certain
CONFIDENCE_LABELS = ("a guess", "unsure", "fairly sure", "sure", "certain")
MAX_READER_NAME = 40
DEFAULT_READER = "reader"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reads (
    reader TEXT NOT NULL,
    model TEXT NOT NULL,
    digest TEXT NOT NULL,
    read_class TEXT NOT NULL,
    confidence INTEGER NOT NULL,
    model_class TEXT NOT NULL,
    model_probability REAL NOT NULL,
    label TEXT,
    in_domain INTEGER NOT NULL,
    read_at REAL NOT NULL,
    PRIMARY KEY (reader, model, digest)
);
"""
EXPORT_COLUMNS = (
    "reader",
    "model",
    "scan",
    "read",
    "confidence",
    "model_verdict",
    "model_probability",
    "agrees_with_model",
    "label",
    "read_matches_label",
    "model_matches_label",
    "in_domain",
    "read_at",
)


class ReadError(ValueError):
    """A read that cannot be kept as it is; one sentence for the reader."""


@dataclass(frozen=True)
class Read:
    reader: str
    model: str
    digest: str
    read_class: str
    confidence: int
    model_class: str  # the model's verdict, kept with the read so the export does not depend on the cache
    model_probability: float
    label: str | None
    in_domain: bool
    read_at: float

    @property
    def agrees(self) -> bool:
        return self.read_class == self.model_class


@dataclass(frozen=True)
class Agreement:
    """How a reader's reads compare with the model's verdicts (and both with the labels, where known)."""

    reads: int
    agree: int
    kappa: float | None  # Cohen's κ, reader against model; None with fewer than two reads or one class only
    labelled: int
    reader_correct: int
    model_correct: int

    @property
    def share(self) -> float | None:
        return self.agree / self.reads if self.reads else None

    def sentence(self) -> str:
        if not self.reads:
            return "No reads recorded yet."
        text = f"The model agrees with {self.agree} of {plural(self.reads, 'read')} ({self.agree / self.reads:.0%}"
        if self.kappa is not None:  # rounded first, + 0.0: a tiny negative κ reads "0.00", never "-0.00"
            text += f"; Cohen's κ {round(self.kappa, 2) + 0.0:.2f}"
        text += ")"
        if self.labelled:
            text += (
                f". Against the {plural(self.labelled, 'labelled scan')}: the reads match {self.reader_correct}, "
                f"the model {self.model_correct}"
            )
        return text + "."


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def reader_name(text: str | None) -> str:
    """The reader's name as kept: trimmed, one line, at most MAX_READER_NAME characters; DEFAULT_READER if blank."""
    name = " ".join((text or "").split())[:MAX_READER_NAME]
    return name or DEFAULT_READER


class ReadStore:
    def __init__(self, path: str | Path | None = None, clock: Callable[[], float] = time.time):
        self.path = Path(path) if path is not None else storage.folder("answers") / "reads.sqlite3"
        self.clock = clock

    def _open(self) -> AbstractContextManager[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            with connect(self.path, synchronous="FULL") as db:
                db.execute(_SCHEMA)
        return connect(self.path, synchronous="FULL")

    def record(
        self,
        *,
        reader: str,
        model: str,
        digest: str,
        read_class: str | None,
        confidence: int | None,
        classes: Sequence[str],
        model_class: str,
        model_probability: float,
        label: str | None,
        in_domain: bool,
    ) -> Read:
        """Keeps one read (the first: a read is never overwritten once the verdict has been seen)."""
        if read_class is None or read_class not in classes:
            raise ReadError("Choose what you see in the scan before recording your read.")
        if confidence is None or not 1 <= int(confidence) <= CONFIDENCE_POINTS:
            raise ReadError(f"Say how sure you are, from 1 to {CONFIDENCE_POINTS}.")
        read = Read(
            reader_name(reader),
            model,
            digest,
            read_class,
            int(confidence),
            model_class,
            float(model_probability),
            label,
            bool(in_domain),
            self.clock(),
        )
        with self._open() as db, transaction(db):
            db.execute("INSERT OR IGNORE INTO reads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", astuple(read))
        found = self.get(read.reader, model, digest)
        assert found is not None  # just written, or written before
        return found

    def reads(self, reader: str | None = None, model: str | None = None, digest: str | None = None) -> list[Read]:
        """Every read kept, oldest first; of one reader, one model and/or one scan where given."""
        if not self.path.exists():
            return []
        query, args = "SELECT * FROM reads WHERE 1 = 1", list[str]()
        for column, value in (("reader", None if reader is None else reader_name(reader)), ("model", model)):
            if value is not None:
                query, args = query + f" AND {column} = ?", [*args, value]
        if digest is not None:
            query, args = query + " AND digest = ?", [*args, digest]
        with self._open() as db:
            rows = db.execute(query + " ORDER BY read_at, rowid", args).fetchall()
        return [
            Read(
                reader=row[0],
                model=row[1],
                digest=row[2],
                read_class=row[3],
                confidence=row[4],
                model_class=row[5],
                model_probability=row[6],
                label=row[7],
                in_domain=bool(row[8]),
                read_at=row[9],
            )
            for row in rows
        ]

    def get(self, reader: str, model: str, digest: str) -> Read | None:
        found = self.reads(reader, model, digest)  # one row at most: (reader, model, digest) is the key
        return found[0] if found else None


def agreement(reads: Sequence[Read]) -> Agreement:
    labelled = [read for read in reads if read.label is not None]
    kappa = None
    if len(reads) >= 2 and len({read.read_class for read in reads} | {read.model_class for read in reads}) > 1:
        value = cohen_kappa_score([read.read_class for read in reads], [read.model_class for read in reads])
        kappa = float(value) if np.isfinite(value) else None
    return Agreement(
        reads=len(reads),
        agree=sum(read.agrees for read in reads),
        kappa=kappa,
        labelled=len(labelled),
        reader_correct=sum(read.read_class == read.label for read in labelled),
        model_correct=sum(read.model_class == read.label for read in labelled),
    )


def reads_csv(reads: Sequence[Read]) -> str:
    """The reads as CSV (EXPORT_COLUMNS; the scan is its pixels' digest; booleans as 1/0, blank where unknown)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for read in reads:
        known = read.label is not None
        writer.writerow(
            [
                read.reader,
                read.model,
                read.digest,
                read.read_class,
                read.confidence,
                read.model_class,
                f"{read.model_probability:.6f}",
                int(read.agrees),
                read.label or "",
                int(read.read_class == read.label) if known else "",
                int(read.model_class == read.label) if known else "",
                int(read.in_domain),
                datetime.fromtimestamp(read.read_at, UTC).isoformat(timespec="seconds"),
            ]
        )
    return buffer.getvalue()
