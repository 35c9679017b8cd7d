"""The decoding sandbox: every file a person brings is parsed and decoded in a child process with a memory, a
CPU-time and a wall-clock limit, so a decoder that aborts (python-gdcm's C++ exceptions), panics (pylibjpeg-rle's
Rust decoder), loops or runs out of memory takes down a child, never the server.

A small pool of children is kept warm (``EXPLAINERS_DECODERS``, default 2), so a decode costs a round trip
through two pipes, not a process start. The protocol carries JSON and raw array bytes only, never pickles: a
child that a hostile file has taken over can send nothing the parent would execute. A child that dies or
overruns becomes :class:`SandboxError` with one sentence, and is replaced.

``EXPLAINERS_SANDBOX=0`` decodes in-process instead (for debugging a decoder; never for a server).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import selectors
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from explainers.images import ImageError

if TYPE_CHECKING:
    from explainers.images import InputImage

log = logging.getLogger(__name__)

# Per decode: a 512 MB DICOM series streams through pydicom in well under this; a child past it is stuck.
WALL_SECONDS = float(os.environ.get("EXPLAINERS_DECODE_SECONDS", 60))
CPU_SECONDS = int(os.environ.get("EXPLAINERS_DECODE_CPU_SECONDS", 40))
# Address space of a child: its libraries take about 0.2 GB of it; the rest bounds one decode's working set.
MEMORY_BYTES = int(float(os.environ.get("EXPLAINERS_DECODE_MEMORY_MB", 2048)) * 2**20)
STOPPED = "The decoder stopped on this file; nothing was kept."
_HEADER = struct.Struct(">Q")
_ROOT = Path(__file__).resolve().parents[1]


class SandboxError(ImageError):
    """The decoding child died, overran its time or could not start; one sentence, nothing of the file."""


def enabled() -> bool:
    return os.environ.get("EXPLAINERS_SANDBOX", "1") != "0"


@dataclass
class Reply:
    """A child's answer: its JSON result, the arrays it sent and its peak resident memory during the task."""

    result: dict[str, Any]
    arrays: list[np.ndarray]
    peak_bytes: int


def write_message(stream: Any, header: dict[str, Any], blobs: list[bytes | memoryview] = ()) -> None:
    """One message: an 8-byte length, a JSON header naming the blobs' sizes, then the blobs."""
    header = {**header, "blobs": [len(blob) if isinstance(blob, bytes) else blob.nbytes for blob in blobs]}
    encoded = json.dumps(header).encode()
    stream.write(_HEADER.pack(len(encoded)) + encoded)
    for blob in blobs:
        stream.write(blob)
    stream.flush()


class _Child:
    """One decoding process and its two pipes."""

    def __init__(self, memory_bytes: int = MEMORY_BYTES) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")])),
               "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "EXPLAINERS_DECODE_MEMORY_BYTES": str(memory_bytes), "PYTHONDONTWRITEBYTECODE": "1"}
        # stderr goes nowhere: a decoder's complaints may quote the file, and nothing of a file is logged.
        self.process = subprocess.Popen([sys.executable, "-m", "explainers.sandbox_child"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=_ROOT,
                                        start_new_session=True)
        self.started = time.monotonic()

    def call(self, operation: str, arguments: dict[str, Any], payload: bytes | None, deadline: float) -> Reply:
        """Sends one task and waits for its answer until ``deadline``; raises _Stopped when the child fails."""
        try:
            write_message(self.process.stdin, {"op": operation, "args": arguments, "cpu": CPU_SECONDS},
                          [payload] if payload is not None else [])
        except (BrokenPipeError, OSError) as error:
            raise _Stopped("write") from error
        reader = _Reader(self.process.stdout, deadline)
        try:
            return self._answer(reader)
        finally:
            reader.selector.close()

    def _answer(self, reader: "_Reader") -> Reply:
        (length,) = _HEADER.unpack(reader.read(_HEADER.size))
        if length > 1 << 20:
            raise _Stopped("header")
        header = json.loads(reader.read(length))
        arrays = []
        for spec, size in zip(header.get("arrays", []), header["blobs"]):
            shape, dtype = tuple(int(n) for n in spec["shape"]), np.dtype(spec["dtype"])
            if dtype.hasobject or int(np.prod(shape)) * dtype.itemsize != size:
                raise _Stopped("array")
            arrays.append(np.frombuffer(reader.read(size), dtype=dtype).reshape(shape))
        return Reply(header.get("result") or {}, arrays, int(header.get("peak_bytes", 0)))

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()


class _Stopped(Exception):
    """The child died, overran its deadline or sent something malformed."""


class _Reader:
    """Reads exactly n bytes from a pipe, or raises _Stopped at EOF or past the deadline."""

    def __init__(self, stream: Any, deadline: float) -> None:
        self.fd, self.deadline = stream.fileno(), deadline
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.fd, selectors.EVENT_READ)

    def read(self, count: int) -> bytearray:
        """Into a bytearray, so arrays made from it are writable without another copy."""
        buffer, done = bytearray(count), 0
        view = memoryview(buffer)
        while done < count:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0 or not self.selector.select(remaining):
                raise _Stopped("timeout")
            got = os.readv(self.fd, [view[done:done + (1 << 22)]])
            if not got:
                raise _Stopped("exit")
            done += got
        return buffer


class DecoderPool:
    """Up to ``size`` warm children; a task waits for a free one. Thread-safe (every Streamlit session shares it)."""

    def __init__(self, size: int, memory_bytes: int = MEMORY_BYTES, wall_seconds: float = WALL_SECONDS) -> None:
        self.size, self.memory_bytes, self.wall_seconds = max(1, size), memory_bytes, wall_seconds
        self._idle: queue.LifoQueue[_Child] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._count = 0
        self.replaced = 0  # children that died or overran and were replaced (for the benchmark and the log)
        self.last_stop: str | None = None  # why the last child stopped: "timeout", "signal 6", "exit 1", …
        self.last_peak_bytes = 0  # the last task's peak resident memory in its child (for the benchmark)

    def warm(self) -> None:
        """Starts the children now (at server start), so the first upload does not wait for one."""
        with self._lock:
            missing, self._count = self.size - self._count, self.size
        for _ in range(missing):
            self._idle.put(_Child(self.memory_bytes))

    def call(self, operation: str, arguments: dict[str, Any], payload: bytes | None = None,
             wall_seconds: float | None = None) -> Reply:
        deadline = time.monotonic() + (wall_seconds or self.wall_seconds)
        child = self._take(deadline)
        try:
            reply = child.call(operation, arguments, payload, deadline)
        except _Stopped as stopped:
            child.kill()
            with self._lock:
                self._count -= 1
                self.replaced += 1
            code = child.process.returncode
            self.last_stop = "timeout" if str(stopped) == "timeout" else \
                f"signal {-code}" if code is not None and code < 0 else f"{stopped} {code}"
            log.warning("decoder child stopped (%s); replaced", self.last_stop)
            threading.Thread(target=self._replace, daemon=True).start()
            raise SandboxError(STOPPED) from None
        except BaseException:
            child.kill()  # interrupted mid-message: the pipe's state is unknown, so the child goes
            with self._lock:
                self._count -= 1
            raise
        self.last_peak_bytes = reply.peak_bytes
        self._idle.put(child)
        return reply

    def _take(self, deadline: float) -> _Child:
        while True:
            try:
                child = self._idle.get_nowait()
            except queue.Empty:
                with self._lock:
                    start = self._count < self.size
                    self._count += start
                if start:
                    return _Child(self.memory_bytes)
                try:
                    child = self._idle.get(timeout=max(0.01, deadline - time.monotonic()))
                except queue.Empty:
                    raise SandboxError("Every decoder is busy with other files; try again in a moment.") from None
            if child.alive():
                return child
            child.kill()
            with self._lock:
                self._count -= 1

    def _replace(self) -> None:
        with self._lock:
            if self._count >= self.size:
                return
            self._count += 1
        self._idle.put(_Child(self.memory_bytes))

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().kill()
            except queue.Empty:
                return


_pool: DecoderPool | None = None
_pool_lock = threading.Lock()


def pool() -> DecoderPool:
    """The process's pool, made at first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = DecoderPool(int(os.environ.get("EXPLAINERS_DECODERS", 2)))
            atexit.register(_pool.close)
        return _pool


def call(operation: str, arguments: dict[str, Any], payload: bytes | None = None) -> Reply:
    """Runs ``operation`` in a sandboxed child; a user's mistake in the file comes back as its ImageError."""
    if enabled():
        reply = pool().call(operation, arguments, payload)
    else:
        from explainers.sandbox_child import handle

        reply = Reply(*handle(operation, arguments, payload), 0)
    failure = reply.result.get("error")
    if failure is not None:
        from explainers.dicom import DicomError

        raise (DicomError if reply.result.get("kind") == "dicom" else ImageError)(str(failure))
    return reply


def run_on_source(operation: str, source: bytes | bytearray | str | Path, arguments: dict[str, Any]) -> Reply:
    """``operation`` on a file (the child opens the path itself) or on an upload's bytes (sent through the pipe)."""
    if isinstance(source, (bytes, bytearray)):
        return call(operation, {**arguments, "path": None}, bytes(source))
    return call(operation, {**arguments, "path": os.fspath(source)})


def image_reply(reply: Reply) -> "InputImage":
    """The InputImage a child decoded; its digest is computed again here, so a child cannot choose a cache key."""
    from explainers.images import InputImage, image_digest

    fields = reply.result
    if len(reply.arrays) != 1 or reply.arrays[0].dtype != np.uint8 or reply.arrays[0].ndim != 3 \
            or reply.arrays[0].shape[2] != 3:
        raise SandboxError(STOPPED)
    pixels = reply.arrays[0]
    digest = image_digest(pixels)
    if digest != fields.get("digest"):
        raise SandboxError(STOPPED)
    window = tuple(float(value) for value in fields["window"]) if fields.get("window") else None
    frame = fields.get("frame")
    return InputImage(pixels, fields["source"], str(fields["display_name"]), digest, window=window,
                      frame=int(frame) if frame is not None else None, modality=fields.get("modality"))
