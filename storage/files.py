"""The one atomic writer: a file appears whole under its name or not at all, so a reader never sees half of
it and a killed or failing writer leaves no half file behind (at most a ``*.tmp`` that a sweep may remove)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for the block to write (by any means: a library that takes a file name);
    renamed over ``path`` when the block ends, removed when it raises.

    The name is unique per process, thread and moment, so concurrent writers of one path never share a
    temporary file; it starts with a dot and ends in ``.tmp``, which listings of finished files skip.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.{time.monotonic_ns()}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        # A failed write (a full disk) must not leave its half file behind.
        with suppress(OSError):
            temporary.unlink(missing_ok=True)


def write_atomically(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` through :func:`atomic_path`, flushed to the disk before the rename, so that
    after a power cut the name points at the whole new file or the whole old one."""
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
