"""The decoding child of :mod:`explainers.sandbox`: reads tasks from stdin, decodes, answers on stdout.

Limits are set on itself before the first task: no core files (an abort would write the file's pixels to disk),
an address-space limit (MemoryError, or death, instead of swapping the server), and per task a CPU-time limit
(SIGXCPU ends it) whose soft value is raised for each new task. Anything a decoder prints goes to stderr, which
the parent discards, so stdout carries the protocol alone.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from explainers.dicom import Window
from explainers.images import ImageError, InputImage

Handler = Callable[[dict[str, Any], Any], tuple[dict[str, Any], list[np.ndarray]]]


def _source(arguments: dict[str, Any], payload: bytes | None) -> bytes | Path:
    return payload if arguments.get("path") is None else Path(arguments["path"])


def _image(image: InputImage) -> tuple[dict[str, Any], list[np.ndarray]]:
    fields = {"source": image.source, "display_name": image.display_name, "digest": image.digest,
              "window": list(image.window) if image.window else None, "frame": image.frame, "modality": image.modality}
    return fields, [np.ascontiguousarray(image.pixels)]


def _load(arguments: dict[str, Any], payload: bytes | None) -> tuple[dict[str, Any], list[np.ndarray]]:
    from explainers.images import load_here

    return _image(load_here(_source(arguments, payload), arguments.get("name"), sample=bool(arguments.get("sample")),
                            frame=int(arguments.get("frame", 0))))


def _scan(arguments: dict[str, Any], payload: bytes | None) -> tuple[dict[str, Any], list[np.ndarray]]:
    from explainers.dicom_decode import read_dicom

    return read_dicom(_source(arguments, payload), arguments.get("name")).header, []


def _scan_frame(arguments: dict[str, Any], payload: bytes | None) -> tuple[dict[str, Any], list[np.ndarray]]:
    from explainers.dicom_decode import read_dicom

    values = read_dicom(_source(arguments, payload), arguments.get("name")).frame(int(arguments["index"]))
    return {}, [np.ascontiguousarray(values)]


def _scan_image(arguments: dict[str, Any], payload: bytes | None) -> tuple[dict[str, Any], list[np.ndarray]]:
    from explainers.dicom_decode import read_dicom

    name, centre, width = arguments["window"]
    scan = read_dicom(_source(arguments, payload), arguments.get("name"))
    return _image(scan.image(int(arguments["index"]), Window(name, centre, width)))


HANDLERS: dict[str, Handler] = {"image": _load, "scan": _scan, "scan_frame": _scan_frame,
                                "scan_image": _scan_image}


def handle(operation: str, arguments: dict[str, Any], payload: bytes | None) -> tuple[dict[str, Any],
                                                                                     list[np.ndarray]]:
    """Runs one task; a user's mistake in the file becomes ``{"error": sentence}``, never an exception."""
    from explainers.dicom import DicomError

    try:
        return HANDLERS[operation](arguments, payload)
    except DicomError as error:
        return {"error": str(error), "kind": "dicom"}, []
    except ImageError as error:
        return {"error": str(error), "kind": "image"}, []
    except MemoryError:
        return {"error": "This file needs more memory to decode than one file may use here, so nothing was kept.",
                "kind": "image"}, []
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # noqa: BLE001 - a decoder's own failure on a hostile file, panics included
        print(f"decoder failed: {type(error).__name__}", file=sys.stderr)
        return {"error": "This file is damaged in a way the decoders cannot read, so it cannot be shown.",
                "kind": "image"}, []


def _read_message(stream: Any) -> tuple[dict[str, Any], bytes | None] | None:
    head = stream.read(8)
    if len(head) < 8:
        return None
    header = json.loads(stream.read(int.from_bytes(head, "big")))
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


def main() -> None:
    from explainers.sandbox import write_message

    protocol = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a library's print() must not corrupt the protocol
    sys.stdout = sys.stderr
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    import pydicom  # noqa: F401 - imported before the first task, so a decode costs no import
    import pydicom.pixels  # noqa: F401
    import PIL.Image  # noqa: F401
    import explainers.dicom_decode  # noqa: F401

    memory = int(os.environ.get("EXPLAINERS_DECODE_MEMORY_BYTES", 3 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    while True:
        message = _read_message(sys.stdin.buffer)
        if message is None:
            return  # the server closed the pipe
        header, payload = message
        used = resource.getrusage(resource.RUSAGE_SELF)
        limit = int(used.ru_utime + used.ru_stime) + int(header.get("cpu", 40))
        resource.setrlimit(resource.RLIMIT_CPU, (limit, resource.RLIM_INFINITY))
        _reset_peak()
        result, arrays = handle(header["op"], header.get("args", {}), payload)
        specs = [{"dtype": array.dtype.str, "shape": list(array.shape)} for array in arrays]
        write_message(protocol, {"result": result, "arrays": specs, "peak_bytes": _peak_bytes()},
                      [memoryview(array).cast("B") for array in arrays])


if __name__ == "__main__":
    main()
