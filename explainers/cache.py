"""A persistent cache of explanations shared by every session and the command line.

SQLite (WAL) holds the index; each explanation is one ``KEY.DIGEST.npz`` file, named by its content so that
it never changes under the row that names it. A write goes to a temporary file, flushed and renamed into
place, then the row is committed, then the replaced file removed: a killed writer leaves at most an orphan
(``sweep`` removes it). Every row stores the file's SHA-256: a missing, truncated or altered file is dropped
and recomputed, never shown. The total size is bounded; the least recently used entries go first.

It fails soft (explainers.cache_folder): a corrupt index is moved aside (``index.sqlite3.corrupt-TIME``) and
rebuilt empty, its files dropped; a read-only folder is read, not written; a failed write loses the storing,
never the explanation, and sets :attr:`ExplanationCache.warning`.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import sqlite3
import time
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from explainers.cache_folder import READ_ONLY_ENV, CacheFolder, default_cache_dir  # noqa: F401 - re-exported

# LOCAL and SHARED are imported from here by the callers that store entries.
from explainers.cache_index import LOCAL, SCHEMA, SHARED, UNKNOWN, CacheEntry, listed_label  # noqa: F401 - re-exported
from explainers.explanation import Explanation, ExplanationFileError
from storage.files import write_atomically

if TYPE_CHECKING:
    from explainers.request import ExplanationRequest

log = logging.getLogger("explainers.cache")
DEFAULT_MAX_BYTES = 2 * 1024**3
# A concurrent writer may replace a row's file between reading the row and reading the file: read again.
_READ_ATTEMPTS = 8


class ExplanationCache(CacheFolder):
    """Index in ``folder/index.sqlite3``, arrays in ``folder/blobs/KEY.DIGEST.npz``. ``read_only`` (default:
    $EXPLAINERS_CACHE_READ_ONLY, else whether this process may write the folder) serves, never stores."""

    def __init__(
        self, folder: str | Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES, read_only: bool | None = None
    ):
        self.max_bytes = max_bytes
        super().__init__(folder, read_only)

    def get(self, request: ExplanationRequest) -> Explanation | None:
        """The explanation of ``request``, narrowed to the classes it asks for; None when not stored."""
        stored = self.get_by_key(request.key)
        return None if stored is None else request.shown(stored)

    def get_by_key(self, key: str) -> Explanation | None:
        """The stored explanation as stored, or None when absent or unreadable (a bad entry is removed)."""
        failed = None
        for _ in range(_READ_ATTEMPTS):
            row = self._run(
                lambda db: db.execute("SELECT file, sha256 FROM entries WHERE key = ?", (key,)).fetchone(), None
            )
            if row is None:
                return None
            file, expected = row
            if file == failed:  # still the row's file after a second look: it really is bad
                self._discard(key, file)
                return None
            try:
                data = (self.blobs / file).read_bytes()
                if hashlib.sha256(data).hexdigest() != expected:
                    raise ExplanationFileError("the file's checksum does not match its index entry")
                explanation, stamped = Explanation.load_stamped(io.BytesIO(data))
            except (OSError, ExplanationFileError, ValueError, KeyError, TypeError):
                failed = file  # or a writer replaced the row and removed this file meanwhile: look again
                continue
            if stamped != key:  # another request's file, or one from before files were stamped
                discarded = self._discard(key, file)
                if discarded or self.read_only:
                    # The key's first characters only: a log line must name no image and no file.
                    log.warning(
                        "cache: entry %s… did not match its request; %s",
                        key[:8],
                        "discarded" if discarded else "ignored",
                    )
                    return None
                continue  # the row changed meanwhile (or could not be removed): look again
            self._run(
                lambda db: db.execute("UPDATE entries SET last_used = ? WHERE key = ?", (time.time(), key)),
                None,
                write=True,
            )
            return explanation
        return None

    def _discard(self, key: str, file: str) -> bool:
        """Removes the row of ``key`` if it still names ``file``, and then the file; whether it did."""
        if self._run(
            lambda db: db.execute("DELETE FROM entries WHERE key = ? AND file = ?", (key, file)).rowcount, 0, write=True
        ):
            self._unlink(file)
            return True
        return False

    def __contains__(self, key: str | ExplanationRequest) -> bool:
        key = key if isinstance(key, str) else key.key
        return self._run(
            lambda db: db.execute("SELECT 1 FROM entries WHERE key = ?", (key,)).fetchone() is not None, False
        )

    def entries(
        self, model: str | None = None, method: str | None = None, image_digest: str | None = None
    ) -> list[CacheEntry]:
        """Index rows, most recently used first, optionally filtered (by owner: :meth:`CacheEntry.visible_to`)."""
        filters = {
            column: value
            for column, value in (("model", model), ("method", method), ("image_digest", image_digest))
            if value is not None
        }
        clauses, values = [f"{column} = ?" for column in filters], list(filters.values())
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows: list[tuple[Any, ...]] = self._run(
            lambda db: db.execute(
                "SELECT key, model, image_digest, image_label, method, request, bytes, created, last_used, seconds, "
                f"owner FROM entries {where} ORDER BY last_used DESC",
                values,
            ).fetchall(),
            [],
        )
        return [
            CacheEntry(key, model_, digest, label, method_, json.loads(request), size, created, used, seconds, owner)
            for key, model_, digest, label, method_, request, size, created, used, seconds, owner in rows
        ]

    def stats(self) -> dict[str, Any]:
        count, size = self._run(
            lambda db: db.execute("SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM entries").fetchone(), (0, 0)
        )
        return {"folder": str(self.folder), "entries": count, "bytes": size, "max_bytes": self.max_bytes}

    def get_json(self, key: str) -> Any | None:
        """A small derived result (e.g. faithfulness scores) stored beside the explanations."""
        row = self._run(lambda db: db.execute("SELECT value FROM scores WHERE key = ?", (key,)).fetchone(), None)
        return None if row is None else json.loads(row[0])

    def put_json(self, key: str, value: Any) -> bool:
        """Stores ``value``; False (and :attr:`warning` set) when it could not be written."""
        text = json.dumps(value)

        def store(db: sqlite3.Connection) -> bool:
            db.execute("INSERT OR REPLACE INTO scores VALUES (?, ?)", (key, text))
            return True

        return self._run(store, False, write=True)

    def put(
        self, request: ExplanationRequest, explanation: Explanation, image_label: str = "", owner: str = LOCAL
    ) -> bool:
        """Stores atomically: file first (temporary name, flushed, renamed), then the index row, then the
        replaced file out. ``owner``: who the Gallery lists it for (SHARED: everyone). False (and :attr:`warning`
        set) when it could not be stored."""
        if self.read_only:
            return False
        key, buffer = request.key, io.BytesIO()
        explanation.save(buffer, request_key=key)  # checked on every read: a file answers only its own request
        image_label = listed_label(image_label, request.image_digest, owner)  # never a file name (cache_index)
        data = buffer.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        file = f"{key}.{digest[:16]}.npz"
        try:
            self._place(file, data)
        except OSError as error:
            self._failed(error)
            return False

        def commit(db: sqlite3.Connection) -> list[str]:
            old = db.execute("SELECT file FROM entries WHERE key = ?", (key,)).fetchone()
            now = time.time()
            db.execute(
                "INSERT OR REPLACE INTO entries (key, model, weights_digest, image_digest, image_label, method, "
                "request, file, sha256, bytes, created, last_used, seconds, owner) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    explanation.model,
                    explanation.weights_digest,
                    explanation.image_digest,
                    image_label,
                    explanation.method,
                    json.dumps(request.identity(), sort_keys=True, default=str),
                    file,
                    digest,
                    len(data),
                    now,
                    now,
                    explanation.seconds,
                    owner,
                ),
            )
            return ([old[0]] if old is not None else []) + self._evict(db, keep=key)

        stale = self._run(commit, None, write=True)
        for old in [file] if stale is None else [old for old in stale if old != file]:
            self._unlink(old)  # not indexed: the new file is an orphan; indexed: the replaced ones are
        return stale is not None

    def _place(self, file: str, data: bytes) -> None:
        """The file in place under its final name, or an OSError and nothing left behind."""
        write_atomically(self.blobs / file, data)  # a temporary "*.tmp" left by a killed writer goes in sweep

    def _evict(self, db: sqlite3.Connection, keep: str) -> list[str]:
        """Least recently used entries out until the total fits, but ``keep``; their files, to remove after."""
        total = db.execute("SELECT COALESCE(SUM(bytes), 0) FROM entries").fetchone()[0]
        rows = db.execute("SELECT key, file, bytes FROM entries WHERE key != ? ORDER BY last_used", (keep,))
        files = []
        for key, file, size in rows.fetchall():
            if total <= self.max_bytes:
                break
            db.execute("DELETE FROM entries WHERE key = ?", (key,))
            files.append(file)
            total -= size
        return files

    def delete(self, key: str) -> bool:
        """Removes one entry (the Gallery's delete); whether there was one to remove."""

        def remove(db: sqlite3.Connection) -> list[tuple[str]]:
            return db.execute("DELETE FROM entries WHERE key = ? RETURNING file", (key,)).fetchall()

        files: list[tuple[str]] = self._run(remove, [], write=True)
        for (file,) in files:
            self._unlink(file)
        return bool(files)

    def clear(self) -> int:
        """Removes every entry and stray file; how many entries there were (0 and :attr:`warning` if it cannot)."""

        def remove_all(db: sqlite3.Connection) -> int:
            count = db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
            db.execute("DELETE FROM entries")
            db.execute("DELETE FROM scores")
            return count

        count = self._run(remove_all, None, write=True)
        for path in self._files() if count is not None else []:
            self._unlink(path.name)
        return count or 0

    def sweep(self, older_than_seconds: float = 3600) -> int:
        """Deletes temporary files left by killed writers and files no row points to."""
        known = self._run(lambda db: {file for (file,) in db.execute("SELECT file FROM entries")}, None)
        if known is None or self.read_only:
            return 0  # which files are indexed is unknown, or nothing may be removed: keep them all
        removed, cutoff = 0, time.time() - older_than_seconds
        for path in self._files():
            with suppress(OSError):  # a concurrent writer may rename or remove it under us
                # Only old files: a writer may be between renaming its file and committing its row.
                if path.stat().st_mtime >= cutoff:
                    continue
                if path.suffix == ".tmp" or (path.suffix == ".npz" and path.name not in known):
                    path.unlink()
                    removed += 1
        return removed
