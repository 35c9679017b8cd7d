"""The decoding sandbox: every image and DICOM file a person brings is opened, parsed and decoded in a child
process (:mod:`storage.sandbox`) with a memory, a CPU-time and a wall-clock limit, so a decoder that aborts,
panics, loops or runs out of memory takes down a child, never the server.

A small pool of children is kept warm (``EXPLAINERS_DECODERS``, default 2), so a decode costs a round trip
through two pipes, not a process start. A child that dies or overruns becomes :class:`SandboxError` with one
sentence, and is replaced. ``EXPLAINERS_SANDBOX=0`` decodes in-process instead (for debugging a decoder; never
for a server).
"""

from __future__ import annotations

import atexit
import os
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

from explainers.dicom_types import DicomError
from explainers.image_types import ImageError, InputImage, SourceKind, image_digest
from storage.sandbox import ChildPool, ChildStopped, Reply

# Per decode: a 512 MB DICOM series streams through pydicom in well under this; a child past it is stuck.
WALL_SECONDS = float(os.environ.get("EXPLAINERS_DECODE_SECONDS", 60))
CPU_SECONDS = int(os.environ.get("EXPLAINERS_DECODE_CPU_SECONDS", 40))
# Address space of a child: its libraries take about 0.2 GB of it; the rest bounds one decode's working set.
MEMORY_BYTES = int(float(os.environ.get("EXPLAINERS_DECODE_MEMORY_MB", 2048)) * 2**20)
STOPPED = "The decoder stopped on this file; nothing was kept."


class SandboxError(ImageError):
    """The decoding child died, overran its time or could not start; one sentence, nothing of the file."""


def enabled() -> bool:
    return os.environ.get("EXPLAINERS_SANDBOX", "1") != "0"


def decoder_pool(size: int = 1, memory_bytes: int = MEMORY_BYTES, wall_seconds: float = WALL_SECONDS) -> ChildPool:
    """A pool of decoding children (the process's own is :func:`pool`; tests make small ones with tight limits)."""
    return ChildPool("explainers.sandbox_child", size, memory_bytes, wall_seconds, CPU_SECONDS, STOPPED)


_pool: ChildPool | None = None
_pool_lock = threading.Lock()


def pool() -> ChildPool:
    """The process's pool, made at first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = decoder_pool(int(os.environ.get("EXPLAINERS_DECODERS", 2)))
            atexit.register(_pool.close)
        return _pool


def call(operation: str, arguments: dict[str, Any], payload: bytes | None = None, check: bool = True) -> Reply:
    """Runs ``operation`` in a sandboxed child; a user's mistake in the file comes back as its ImageError (or,
    without ``check``, in the reply's ``error``)."""
    if enabled():
        try:
            reply = pool().call(operation, arguments, payload)
        except ChildStopped as stopped:
            raise SandboxError(str(stopped)) from None
    else:  # the only import of the child's code here: the server never loads its decoders otherwise
        from explainers.sandbox_child import handle

        reply = Reply(*handle(operation, arguments, payload), 0)
    failure = reply.result.get("error")
    if failure is not None and check:
        raise (DicomError if reply.result.get("kind") == "dicom" else ImageError)(str(failure))
    return reply


def run_on_source(operation: str, source: bytes | bytearray | str | Path, arguments: dict[str, Any]) -> Reply:
    """``operation`` on a file (the child opens the path itself) or on an upload's bytes (sent through the pipe)."""
    if isinstance(source, (bytes, bytearray)):
        return call(operation, {**arguments, "path": None}, bytes(source))
    return call(operation, {**arguments, "path": os.fspath(source)})


def image_reply(reply: Reply, source: bytes | bytearray | str | Path, sample: bool = False) -> InputImage:
    """The InputImage a child decoded from ``source``. Nothing it says is taken on trust that could reach others:
    the digest is computed again here (a child cannot choose a cache key), the source kind is the one asked for
    (a child cannot make an upload a shared sample), and the name must be one this app gives."""
    fields = reply.result
    if (
        len(reply.arrays) != 1
        or reply.arrays[0].dtype != np.uint8
        or reply.arrays[0].ndim != 3
        or reply.arrays[0].shape[2] != 3
    ):
        raise SandboxError(STOPPED)
    pixels = reply.arrays[0]
    digest = image_digest(pixels)
    name = str(fields.get("display_name"))
    kind: SourceKind
    if isinstance(source, (bytes, bytearray)):
        kind, names = "upload", {f"upload {digest[:8]}"}
    else:
        kind, names = "sample" if sample else "file", {Path(source).name}
    if digest != fields.get("digest") or not (
        name in names or _SCAN_NAME.fullmatch(name) and name.startswith(f"scan {digest[:8]}")
    ):
        raise SandboxError(STOPPED)
    window: tuple[float, float] | None = None
    if fields.get("window"):
        values = [float(value) for value in fields["window"]]
        if len(values) != 2:  # a window is a centre and a width; anything else is no reply of ours
            raise SandboxError(STOPPED)
        window = (values[0], values[1])
    frame = fields.get("frame")
    return InputImage(
        pixels,
        kind,
        name,
        digest,
        window=window,
        frame=int(frame) if frame is not None else None,
        modality=str(fields["modality"])[:16] if fields.get("modality") else None,
    )


_SCAN_NAME = re.compile(r"scan [0-9a-f]{8}(, frame \d+ of \d+)?")
