"""The one way this app opens SQLite: WAL, a busy timeout instead of "database is locked", short-lived
connections in autocommit mode, and explicit ``BEGIN IMMEDIATE`` transactions where statements belong
together."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from typing import Literal

BUSY_TIMEOUT_SECONDS = 30


@contextmanager
def connect(
    path: str | Path, synchronous: Literal["NORMAL", "FULL"] = "NORMAL", foreign_keys: bool = False
) -> Iterator[sqlite3.Connection]:
    """A connection closed on exit. ``synchronous=FULL`` where a committed row must survive a power cut
    (answers); ``NORMAL`` where losing the last commits only costs a recomputation (the cache)."""
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        if foreign_keys:
            db.execute("PRAGMA foreign_keys=ON")
        yield db
    finally:
        db.close()


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` on an open connection, rolled back on any exception. A failed rollback
    never hides the error that caused it: after a failed COMMIT on a full disk SQLite has often rolled back."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise


@contextmanager
def connect_read_only(path: str | Path) -> Iterator[sqlite3.Connection]:
    """A connection that never writes, closed on exit; also for a WAL file in a folder nobody may write (which
    has no shared-memory file: it is then read as immutable)."""
    uri = Path(path).resolve().as_uri()
    db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        db.close()
        db = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, isolation_level=None)
    with closing(db):
        yield db
