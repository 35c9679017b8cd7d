"""A persistent cache of explanations shared by every session and the command line.

SQLite (WAL) holds the index; each explanation is one ``KEY.DIGEST.npz`` file, named by its content so that
it never changes under the row that names it. A write goes to a temporary file, flushed and renamed into
place, then the row is committed, then the replaced file removed: a killed writer leaves at most an orphan
(``sweep`` removes it). Every row stores the file's SHA-256: a missing, truncated or altered file is dropped
and recomputed, never shown. The total size is bounded; the least recently used entries go first.

It fails soft: a corrupt index is moved aside (``index.sqlite3.corrupt-TIME``) and rebuilt empty, its files
dropped; a read-only folder is read, not written; a failed write loses the storing, never the explanation,
and sets :attr:`ExplanationCache.warning`.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

# LOCAL and SHARED are imported from here by the callers that store entries.
from explainers.cache_index import LOCAL, SCHEMA, SHARED, UNKNOWN, CacheEntry, listed_label  # noqa: F401 - re-exported
from explainers.explanation import Explanation, ExplanationFileError
from storage import connect, folder
from storage import transaction as in_transaction
from storage.files import write_atomically
from storage.sqlite import connect_read_only

if TYPE_CHECKING:
    from explainers.request import ExplanationRequest

T = TypeVar("T")
log = logging.getLogger("explainers.cache")
DEFAULT_MAX_BYTES = 2 * 1024**3
# Set to 1 to open the cache read-only whatever the folder's permissions (tests; a shared, curated cache).
READ_ONLY_ENV = "EXPLAINERS_CACHE_READ_ONLY"
# A concurrent writer may replace a row's file between reading the row and reading the file: read again.
_READ_ATTEMPTS = 8
_RECOVERY = threading.Lock()  # one thread of this process at a time moves a corrupt index aside
_FAILURES = (OSError, sqlite3.DatabaseError)
_NOT_STORED = "explanations are computed but not stored."


def default_cache_dir() -> Path:
    """storage.folder("cache"): $EXPLAINERS_CACHE_DIR, else $XDG_CACHE_HOME/shap-image-studio, else
    ~/.cache/shap-image-studio."""
    return folder("cache")


def _sqlite_name(error: BaseException) -> str:
    return getattr(error, "sqlite_errorname", "") or ""


def _is_corrupt(error: BaseException) -> bool:
    """A damaged or foreign index file, not a locked, full or read-only one."""
    return _sqlite_name(error).startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))


class ExplanationCache:
    """Index in ``folder/index.sqlite3``, arrays in ``folder/blobs/KEY.DIGEST.npz``. ``read_only`` (default:
    $EXPLAINERS_CACHE_READ_ONLY, else whether this process may write the folder) serves, never stores."""

    def __init__(self, folder: str | Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
                 read_only: bool | None = None):
        self.folder = Path(folder) if folder is not None else default_cache_dir()
        self.blobs, self.path, self.max_bytes = self.folder / "blobs", self.folder / "index.sqlite3", max_bytes
        self._warning: str | None = None
        if read_only is None:
            read_only = os.environ.get(READ_ONLY_ENV, "").strip().lower() in {"1", "true", "yes"}
        self.read_only = read_only or not self._may_write()
        if self.read_only:
            self._warn(f"The cache folder {self.folder} is read-only; {_NOT_STORED}")
        else:
            self._run(self._create, None, write=True, transaction=False)

    @staticmethod
    def _create(db: sqlite3.Connection) -> None:
        db.executescript(SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(entries)")}
        if "owner" not in columns:  # an index written before entries had owners
            db.execute(f"ALTER TABLE entries ADD COLUMN owner TEXT NOT NULL DEFAULT '{UNKNOWN}'")

    @property
    def warning(self) -> str | None:
        """One sentence for the pages when explanations are computed but not stored; None while all is well."""
        return self._warning

    def _may_write(self) -> bool:
        """False on a read-only mount or in another user's folder (never for root elsewhere: hence read_only)."""
        try:
            self.blobs.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        paths = [self.folder, self.blobs] + ([self.path] if self.path.exists() else [])
        return all(os.access(path, os.W_OK) for path in paths)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if not self.read_only:
            with connect(self.path, synchronous="NORMAL") as db:
                yield db
            return
        with connect_read_only(self.path) as db:
            yield db

    def _run(self, work: Callable[[sqlite3.Connection], T], default: T, write: bool = False,
             transaction: bool = True) -> T:
        """``work`` on the index (in one transaction when it writes), again after rebuilding a corrupt or deleted
        index; ``default`` when it fails (a read: a miss; a write: and :attr:`warning` says why)."""
        for attempt in range(2):
            if write and self.read_only:
                return default
            try:
                with self._connect() as db:
                    if not (write and transaction):
                        return work(db)
                    with in_transaction(db):
                        return work(db)
            except _FAILURES as error:
                if attempt == 0 and isinstance(error, sqlite3.DatabaseError) and self._repair(error):
                    continue
                if write:
                    self._failed(error)
                else:
                    log.debug("cache index %s unreadable: %s", self.path, error)
                return default
        return default

    def _repair(self, error: sqlite3.DatabaseError) -> bool:
        """Whether the index was fixed so that the failed statement may run again."""
        if self.read_only or not (_is_corrupt(error) or "no such table" in str(error)):
            return False
        with _RECOVERY:
            try:
                if _is_corrupt(error) and not self._index_is_sound():  # else another writer rebuilt it meanwhile
                    self._move_aside(error)
                # Also an index deleted by hand while a server runs: a new one where it was.
                with connect(self.path, synchronous="NORMAL") as db:
                    self._create(db)
                return True
            except _FAILURES as failure:
                self._failed(failure)
                return False

    def _move_aside(self, error: sqlite3.DatabaseError) -> None:
        """The corrupt index and its -wal and -shm out of the way, and every file gone that no row of the new
        (empty) index points to, so that nothing it indexed can be served unchecked."""
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{self.path}{suffix}").exists():
                os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")
        for path in self._files():
            if path.suffix == ".npz":
                self._unlink(path.name)
        log.warning("The cache index %s could not be read (%s); it was moved to %s and its explanations will be "
                    "computed again.", self.path, error, aside.name)

    def _index_is_sound(self) -> bool:
        try:
            with connect(self.path, synchronous="NORMAL") as db:
                return db.execute("PRAGMA quick_check").fetchall() == [("ok",)]
        except sqlite3.DatabaseError:
            return False

    def _failed(self, error: BaseException) -> None:
        """Records why a write failed; a read-only folder also stops further attempts."""
        name, code = _sqlite_name(error), getattr(error, "errno", None)
        if code in (errno.EROFS, errno.EACCES, errno.EPERM) or name.startswith("SQLITE_READONLY"):
            self.read_only = True
            self._warn(f"The cache folder {self.folder} is read-only; {_NOT_STORED}")
        elif code in (errno.ENOSPC, errno.EDQUOT) or name.startswith("SQLITE_FULL"):
            self._warn(f"The disk holding the cache folder {self.folder} is full; {_NOT_STORED}")
        else:
            self._warn(f"The cache folder {self.folder} could not be written ({error}); {_NOT_STORED}")

    def _warn(self, message: str) -> None:
        if self._warning is None:  # one warning per cache: the pages show it once
            self._warning = message
            log.warning(message)

    def get(self, request: ExplanationRequest) -> Explanation | None:
        """The explanation of ``request``, narrowed to the classes it asks for; None when not stored."""
        stored = self.get_by_key(request.key)
        return None if stored is None else request.shown(stored)

    def get_by_key(self, key: str) -> Explanation | None:
        """The stored explanation as stored, or None when absent or unreadable (a bad entry is removed)."""
        failed = None
        for _ in range(_READ_ATTEMPTS):
            row = self._run(lambda db: db.execute("SELECT file, sha256 FROM entries WHERE key = ?",
                                                  (key,)).fetchone(), None)
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
                    log.warning("cache: entry %s… did not match its request; %s", key[:8],
                                "discarded" if discarded else "ignored")
                    return None
                continue  # the row changed meanwhile (or could not be removed): look again
            self._run(lambda db: db.execute("UPDATE entries SET last_used = ? WHERE key = ?", (time.time(), key)),
                      None, write=True)
            return explanation
        return None

    def _discard(self, key: str, file: str) -> bool:
        """Removes the row of ``key`` if it still names ``file``, and then the file; whether it did."""
        if self._run(lambda db: db.execute("DELETE FROM entries WHERE key = ? AND file = ?", (key, file)).rowcount,
                     0, write=True):
            self._unlink(file)
            return True
        return False

    def __contains__(self, key: str | ExplanationRequest) -> bool:
        key = key if isinstance(key, str) else key.key
        return self._run(lambda db: db.execute("SELECT 1 FROM entries WHERE key = ?", (key,)).fetchone()
                         is not None, False)

    def entries(self, model: str | None = None, method: str | None = None,
                image_digest: str | None = None) -> list[CacheEntry]:
        """Index rows, most recently used first, optionally filtered (by owner: :meth:`CacheEntry.visible_to`)."""
        filters = {column: value for column, value in (("model", model), ("method", method),
                                                        ("image_digest", image_digest)) if value is not None}
        clauses, values = [f"{column} = ?" for column in filters], list(filters.values())
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows: list[tuple[Any, ...]] = self._run(lambda db: db.execute(
            "SELECT key, model, image_digest, image_label, method, request, bytes, created, last_used, seconds, "
            f"owner FROM entries {where} ORDER BY last_used DESC", values).fetchall(), [])
        return [CacheEntry(key, model_, digest, label, method_, json.loads(request), size, created, used, seconds,
                           owner) for key, model_, digest, label, method_, request, size, created, used, seconds, owner
                in rows]

    def stats(self) -> dict[str, Any]:
        count, size = self._run(lambda db: db.execute("SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM entries")
                                .fetchone(), (0, 0))
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

    def put(self, request: ExplanationRequest, explanation: Explanation, image_label: str = "",
            owner: str = LOCAL) -> bool:
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
            db.execute("INSERT OR REPLACE INTO entries (key, model, weights_digest, image_digest, image_label, method, "
                       "request, file, sha256, bytes, created, last_used, seconds, owner) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (key, explanation.model, explanation.weights_digest, explanation.image_digest, image_label,
                        explanation.method, json.dumps(request.identity(), sort_keys=True, default=str), file,
                        digest, len(data), now, now, explanation.seconds, owner))
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

    def _unlink(self, file: str) -> None:
        with suppress(OSError):  # a file that cannot go now is an orphan for sweep
            (self.blobs / file).unlink(missing_ok=True)

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

    def _files(self) -> list[Path]:
        try:
            return [path for path in self.blobs.iterdir() if path.is_file()]
        except OSError:
            return []
