"""A persistent cache of explanations shared by every session and the command line.

SQLite (WAL) holds the index; each explanation is one ``.npz`` file. A write goes to a temporary file that
is flushed and renamed into place before its index row is committed, so a process killed mid-write leaves
at most an orphan file that no row points to. Every row stores the file's SHA-256: a file that is missing,
truncated or altered is detected on read, dropped and recomputed, never shown. The total size is bounded;
the least recently used entries go first.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from explainers.explanation import Explanation, ExplanationFileError
from storage import connect, folder, transaction

if TYPE_CHECKING:
    from explainers.request import ExplanationRequest

DEFAULT_MAX_BYTES = 2 * 1024**3
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    weights_digest TEXT NOT NULL,
    image_digest TEXT NOT NULL,
    image_label TEXT NOT NULL,
    method TEXT NOT NULL,
    request TEXT NOT NULL,
    file TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    created REAL NOT NULL,
    last_used REAL NOT NULL,
    seconds REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_last_used ON entries (last_used);
CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def default_cache_dir() -> Path:
    """storage.folder("cache"): $EXPLAINERS_CACHE_DIR, else $XDG_CACHE_HOME/shap-image-studio, else
    ~/.cache/shap-image-studio."""
    return folder("cache")


@dataclass(frozen=True)
class CacheEntry:
    key: str
    model: str
    image_digest: str
    image_label: str
    method: str
    request: dict[str, Any]
    bytes: int
    created: float
    last_used: float
    seconds: float


class ExplanationCache:
    """Index in ``folder/index.sqlite3``, arrays in ``folder/blobs/KEY.npz``."""

    def __init__(self, folder: str | Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES):
        self.folder = Path(folder) if folder is not None else default_cache_dir()
        self.blobs = self.folder / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.path = self.folder / "index.sqlite3"
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with connect(self.path, synchronous="NORMAL") as db:
            yield db

    # -- reading -------------------------------------------------------------------------------------------

    def get(self, request: ExplanationRequest) -> Explanation | None:
        """The explanation of ``request``, narrowed to the classes it asks for; None when not stored."""
        stored = self.get_by_key(request.key)
        return None if stored is None else request.shown(stored)

    def get_by_key(self, key: str) -> Explanation | None:
        """The stored explanation as stored, or None when absent or unreadable (a bad entry is removed)."""
        with self._connect() as db:
            row = db.execute("SELECT file, sha256 FROM entries WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            file, expected = row
            try:
                data = (self.blobs / file).read_bytes()
                if hashlib.sha256(data).hexdigest() != expected:
                    raise ExplanationFileError("the file's checksum does not match its index entry")
                explanation = Explanation.load(io.BytesIO(data))
            except (OSError, ExplanationFileError, ValueError, KeyError, TypeError):
                self._remove(db, key, file)
                return None
            db.execute("UPDATE entries SET last_used = ? WHERE key = ?", (time.time(), key))
            return explanation

    def __contains__(self, key: "str | ExplanationRequest") -> bool:
        key = key if isinstance(key, str) else key.key
        with self._connect() as db:
            return db.execute("SELECT 1 FROM entries WHERE key = ?", (key,)).fetchone() is not None

    def entries(self, model: str | None = None, method: str | None = None,
                image_digest: str | None = None) -> list[CacheEntry]:
        """Index rows, most recently used first, optionally filtered."""
        clauses, values = [], []
        for column, value in (("model", model), ("method", method), ("image_digest", image_digest)):
            if value is not None:
                clauses.append(f"{column} = ?")
                values.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connect() as db:
            rows = db.execute("SELECT key, model, image_digest, image_label, method, request, bytes, created, "
                              f"last_used, seconds FROM entries {where} ORDER BY last_used DESC", values).fetchall()
        return [CacheEntry(key, model_, digest, label, method_, json.loads(request), size, created, used, seconds)
                for key, model_, digest, label, method_, request, size, created, used, seconds in rows]

    def stats(self) -> dict[str, Any]:
        with self._connect() as db:
            count, size = db.execute("SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM entries").fetchone()
        return {"folder": str(self.folder), "entries": count, "bytes": size, "max_bytes": self.max_bytes}

    def get_json(self, key: str) -> Any | None:
        """A small derived result (e.g. faithfulness scores) stored beside the explanations."""
        with self._connect() as db:
            row = db.execute("SELECT value FROM scores WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    # -- writing -------------------------------------------------------------------------------------------

    def put_json(self, key: str, value: Any) -> None:
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO scores VALUES (?, ?)", (key, json.dumps(value)))

    def put(self, request: ExplanationRequest, explanation: Explanation, image_label: str = "") -> None:
        """Stores atomically: file first (temporary name, flushed, renamed), then the index row."""
        key = request.key
        buffer = io.BytesIO()
        explanation.save(buffer)
        data = buffer.getvalue()
        file = f"{key}.npz"
        temporary = self.blobs / f".{key}.{os.getpid()}.{time.monotonic_ns()}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.blobs / file)
        now = time.time()
        with self._connect() as db, transaction(db):
            db.execute("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (key, explanation.model, explanation.weights_digest, explanation.image_digest,
                            image_label, explanation.method,
                            json.dumps(request.identity(), sort_keys=True, default=str),
                            file, hashlib.sha256(data).hexdigest(), len(data), now, now, explanation.seconds))
            self._evict(db, keep=key)

    def _evict(self, db: sqlite3.Connection, keep: str) -> None:
        """Least recently used entries out until the total fits (the entry just written stays)."""
        total = db.execute("SELECT COALESCE(SUM(bytes), 0) FROM entries").fetchone()[0]
        rows = db.execute("SELECT key, file, bytes FROM entries WHERE key != ? ORDER BY last_used", (keep,))
        for key, file, size in rows.fetchall():
            if total <= self.max_bytes:
                break
            self._remove(db, key, file)
            total -= size

    def _remove(self, db: sqlite3.Connection, key: str, file: str) -> None:
        db.execute("DELETE FROM entries WHERE key = ?", (key,))
        (self.blobs / file).unlink(missing_ok=True)

    def clear(self) -> int:
        """Removes every entry and stray file; returns how many entries there were."""
        with self._connect() as db:
            count = db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
            db.execute("DELETE FROM entries")
            db.execute("DELETE FROM scores")
        for path in self._files():
            path.unlink(missing_ok=True)
        return count

    def sweep(self, older_than_seconds: float = 3600) -> int:
        """Deletes temporary files left by killed writers and files no row points to."""
        with self._connect() as db:
            known = {file for (file,) in db.execute("SELECT file FROM entries")}
        removed = 0
        cutoff = time.time() - older_than_seconds
        for path in self._files():
            # Only old files: a writer may be between renaming its file and committing its row.
            if path.stat().st_mtime >= cutoff:
                continue
            if path.suffix == ".tmp" or (path.suffix == ".npz" and path.name not in known):
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def _files(self) -> Iterator[Path]:
        return (path for path in self.blobs.iterdir() if path.is_file())
