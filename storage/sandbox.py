"""Child processes for untrusted work: a file a person brings is parsed and decoded in a child with a memory, a
CPU-time and a wall-clock limit, so a decoder that aborts (python-gdcm's C++ exceptions), panics (pylibjpeg-rle's
Rust decoder), loops or runs out of memory takes down a child, never the server.

A :class:`ChildPool` keeps a few children warm, so a task costs a round trip through two pipes, not a process
start. The protocol carries JSON and raw array bytes only, never pickles: a child that a hostile file has taken
over can send nothing the parent would execute. A child that dies or overruns becomes :class:`ChildStopped`
with one sentence, and is replaced. Each layer has its own child module (``explainers.sandbox_child`` decodes
images, ``storage.yaml_child`` parses model cards and study files), which calls :func:`serve`
with its handlers; this module imports nothing of ours.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import resource
import selectors
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
_HEADER = struct.Struct(">Q")
# The most a child's answer may carry: a 32-million-value frame in float64 (256 MB), with room to spare.
MAX_REPLY_BYTES = 512 * 2**20
_ROOT = Path(__file__).resolve().parents[1]


class ChildStopped(Exception):
    """The child died, overran its time or could not start; the message is one sentence, nothing of the file."""


@dataclass
class Reply:
    """A child's answer: its JSON result, the arrays it sent and its peak resident memory during the task."""

    result: dict[str, Any]
    arrays: list[np.ndarray]
    peak_bytes: int


def write_message(stream: Any, header: dict[str, Any], blobs: Sequence[bytes | memoryview] = ()) -> None:
    """One message: an 8-byte length, a JSON header naming the blobs' sizes, then the blobs."""
    header = {**header, "blobs": [len(blob) if isinstance(blob, bytes) else blob.nbytes for blob in blobs]}
    encoded = json.dumps(header).encode()
    stream.write(_HEADER.pack(len(encoded)) + encoded)
    for blob in blobs:
        stream.write(blob)
    stream.flush()


class _Child:
    """One child process running ``module`` and its two pipes."""

    def __init__(self, module: str, memory_bytes: int) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")])),
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "SANDBOX_MEMORY_BYTES": str(memory_bytes),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        # stderr goes nowhere: a decoder's complaints may quote the file, and nothing of a file is logged.
        self.process = subprocess.Popen(
            [sys.executable, "-m", module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=_ROOT,
            start_new_session=True,
        )
        self.started = time.monotonic()

    def call(
        self, operation: str, arguments: dict[str, Any], payload: bytes | None, deadline: float, cpu_seconds: int
    ) -> Reply:
        """Sends one task and waits for its answer until ``deadline``; raises _Stopped when the child fails."""
        try:
            write_message(
                self.process.stdin,
                {"op": operation, "args": arguments, "cpu": cpu_seconds},
                [payload] if payload is not None else [],
            )
        except (BrokenPipeError, OSError) as error:
            raise _Stopped("write") from error
        reader = _Reader(self.process.stdout, deadline)
        try:
            return self._answer(reader)
        finally:
            reader.selector.close()

    def _answer(self, reader: _Reader) -> Reply:
        (length,) = _HEADER.unpack(reader.read(_HEADER.size))
        if length > 1 << 20:
            raise _Stopped("header")
        header = json.loads(reader.read(length))
        if sum(int(size) for size in header.get("blobs", [])) > MAX_REPLY_BYTES:
            raise _Stopped("size")  # a child that a file took over must not make the server allocate without end
        if len(header.get("arrays", [])) != len(header["blobs"]):
            raise _Stopped("array")  # every array its blob, and no blob without its array
        arrays = []
        for spec, size in zip(header.get("arrays", []), header["blobs"], strict=True):
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
            got = os.readv(self.fd, [view[done : done + (1 << 22)]])
            if not got:
                raise _Stopped("exit")
            done += got
        return buffer


class ChildPool:
    """Up to ``size`` warm children running ``module``; a task waits for a free one. Thread-safe (every Streamlit
    session shares one)."""

    def __init__(
        self,
        module: str,
        size: int = 1,
        memory_bytes: int = 2 << 30,
        wall_seconds: float = 60,
        cpu_seconds: int = 40,
        stopped: str = "The reader stopped on this file; nothing was kept.",
    ) -> None:
        self.module, self.size, self.memory_bytes = module, max(1, size), memory_bytes
        self.wall_seconds, self.cpu_seconds, self.stopped = wall_seconds, cpu_seconds, stopped
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
            self._idle.put(_Child(self.module, self.memory_bytes))

    def call(
        self, operation: str, arguments: dict[str, Any], payload: bytes | None = None, wall_seconds: float | None = None
    ) -> Reply:
        deadline = time.monotonic() + (wall_seconds or self.wall_seconds)
        child = self._take(deadline)
        try:
            reply = child.call(operation, arguments, payload, deadline, self.cpu_seconds)
        except _Stopped as stopped:
            child.kill()
            with self._lock:
                self._count -= 1
                self.replaced += 1
            code = child.process.returncode
            self.last_stop = (
                "timeout"
                if str(stopped) == "timeout"
                else f"signal {-code}"
                if code is not None and code < 0
                else f"{stopped} {code}"
            )
            log.warning("sandbox child %s stopped (%s); replaced", self.module, self.last_stop)
            threading.Thread(target=self._replace, daemon=True).start()
            raise ChildStopped(self.stopped) from None
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
                    try:
                        return _Child(self.module, self.memory_bytes)
                    except OSError:
                        with self._lock:
                            self._count -= 1
                        raise ChildStopped("No reader could be started here; try again in a moment.") from None
                try:
                    child = self._idle.get(timeout=max(0.01, deadline - time.monotonic()))
                except queue.Empty:
                    raise ChildStopped("Every reader is busy with other files; try again in a moment.") from None
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
        self._idle.put(_Child(self.module, self.memory_bytes))

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().kill()
            except queue.Empty:
                return


# -- the child's side --------------------------------------------------------------------------------------------


def _read_message(stream: Any) -> tuple[dict[str, Any], bytes | None] | None:
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    header = json.loads(stream.read(_HEADER.unpack(head)[0]))
    blobs = [stream.read(size) for size in header.get("blobs", [])]
    return header, (blobs[0] if blobs else None)


def _peak_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident size (Linux ≥ 4.0)
    except OSError:
        pass


def serve(handle: Callable[[str, dict[str, Any], bytes | None], tuple[dict[str, Any], list[np.ndarray]]]) -> None:
    """The child's loop: limits on itself, then one task at a time from stdin, answered on stdout.

    No core files (an abort would write the file's contents to disk); an address-space limit (MemoryError, or
    death, instead of swapping the server); per task a CPU-time limit (SIGXCPU ends the child) whose soft value
    is raised for each new task. Anything a library prints goes to stderr, which the parent discards, so stdout
    carries the protocol alone. ``handle`` turns a user's mistake into ``{"error": sentence}``.
    """
    protocol = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a library's print() must not corrupt the protocol
    sys.stdout = sys.stderr
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    memory = int(os.environ.get("SANDBOX_MEMORY_BYTES", 2 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    while True:
        message = _read_message(sys.stdin.buffer)
        if message is None:
            return  # the parent closed the pipe
        header, payload = message
        used = resource.getrusage(resource.RUSAGE_SELF)
        limit = int(used.ru_utime + used.ru_stime) + int(header.get("cpu", 40))
        resource.setrlimit(resource.RLIMIT_CPU, (limit, resource.RLIM_INFINITY))
        _reset_peak()
        result, arrays = handle(header["op"], header.get("args", {}), payload)
        specs = [{"dtype": array.dtype.str, "shape": list(array.shape)} for array in arrays]
        write_message(
            protocol,
            {"result": result, "arrays": specs, "peak_bytes": _peak_bytes()},
            [np.ascontiguousarray(array).data.cast("B") for array in arrays],
        )


# -- a text file read in a child first (model cards, study files) ------------------------------------------------

_probe_pools: dict[str, ChildPool] = {}
_probe_lock = threading.Lock()


def probe(module: str, text: str, name: str, stopped: str, **arguments: Any) -> None:
    """Parses ``text`` once in a child running ``module`` (memory 512 MB, 10 s) before the caller parses it here:
    a parse that ends in the child ends here too, in the same bounded time and memory, whatever it finds (a
    mistake is then reported by the caller's own parse, with its line numbers). Raises ChildStopped(``stopped``)
    when the child dies or overruns. ``EXPLAINERS_SANDBOX=0`` skips the child (debugging only)."""
    if os.environ.get("EXPLAINERS_SANDBOX", "1") == "0":
        return
    with _probe_lock:
        pool = _probe_pools.get(module)
        if pool is None:
            pool = _probe_pools[module] = ChildPool(module, 1, 512 * 2**20, 10, 10, stopped)
            atexit.register(pool.close)
    pool.call("parse", {"name": name, **arguments}, text.encode("utf-8"))


def serve_parser(parse: Callable[[str, dict[str, Any]], None]) -> None:
    """A probe child's main: ``parse(text, arguments)`` for every task; its outcome is not sent back, only that it
    ended (an exception is the file's mistake, which the parent's own parse reports)."""

    def handle(operation: str, arguments: dict[str, Any], payload: bytes | None) -> tuple[dict[str, Any], list]:
        try:
            parse((payload or b"").decode("utf-8", errors="replace"), arguments)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:  # noqa: BLE001 - reported by the parent's own parse
            return {"ended": type(error).__name__}, []
        return {"ended": "ok"}, []

    serve(handle)
