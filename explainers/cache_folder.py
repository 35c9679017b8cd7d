"""The cache's folder, kept usable whatever happens to it (explainers.cache stores the explanations in it).

Its SQLite index is opened read-only where this process may not write; each piece of work on it runs in one
transaction, and again after a corrupt index is moved aside (``index.sqlite3.corrupt-TIME``, its files dropped)
or a deleted one is rebuilt empty. A failed write becomes one warning (:attr:`CacheFolder.warning`) and a
read-only folder stops further writes. The files under ``blobs/`` are listed and removed here too.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

from explainers.cache_index import SCHEMA, UNKNOWN
from storage import connect, folder
from storage import transaction as in_transaction
from storage.sqlite import connect_read_only

T = TypeVar("T")
log = logging.getLogger("explainers.cache")
# Set to 1 to open the cache read-only whatever the folder's permissions (tests; a shared, curated cache).
READ_ONLY_ENV = "EXPLAINERS_CACHE_READ_ONLY"
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


class CacheFolder:
    """Index in ``folder/index.sqlite3``, files in ``folder/blobs``. ``read_only`` (default:
    $EXPLAINERS_CACHE_READ_ONLY, else whether this process may write the folder) reads, never writes."""

    def __init__(self, folder: str | Path | None = None, read_only: bool | None = None):
        self.folder = Path(folder) if folder is not None else default_cache_dir()
        self.blobs, self.path = self.folder / "blobs", self.folder / "index.sqlite3"
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

    def _run(
        self, work: Callable[[sqlite3.Connection], T], default: T, write: bool = False, transaction: bool = True
    ) -> T:
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
        log.warning(
            "The cache index %s could not be read (%s); it was moved to %s and its explanations will be "
            "computed again.",
            self.path,
            error,
            aside.name,
        )

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

    def _unlink(self, file: str) -> None:
        with suppress(OSError):  # a file that cannot go now is an orphan for sweep
            (self.blobs / file).unlink(missing_ok=True)

    def _files(self) -> list[Path]:
        try:
            return [path for path in self.blobs.iterdir() if path.is_file()]
        except OSError:
            return []
