"""The decoding child of :mod:`explainers.sandbox` (its loop and limits: :func:`storage.sandbox.serve`): images
and DICOM files decoded, every failure of a decoder on a hostile file turned into one sentence.

The one module that imports the decoders (:mod:`explainers.image_decode`, :mod:`explainers.dicom_decode`,
:mod:`explainers.archive_decode`); it imports nothing of the server's side (sandbox, images, dicom, archives)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from explainers.archive_decode import list_members, member_image, open_zip
from explainers.archive_types import ArchiveError
from explainers.dicom_decode import read_dicom
from explainers.dicom_types import DicomError, Window
from explainers.image_decode import load_here
from explainers.image_types import ImageError, InputImage

Handler = Callable[[dict[str, Any], Any], tuple[dict[str, Any], list[np.ndarray]]]


def _source(arguments: dict[str, Any], payload: bytes | None) -> bytes | Path:
    if arguments.get("path") is not None:
        return Path(arguments["path"])
    # the parent sends an upload's bytes as the payload whenever it sends no path (explainers.sandbox.run_on_source)
    assert payload is not None, "a task with neither a path nor a payload"
    return payload


def _image(image: InputImage) -> tuple[dict[str, Any], list[np.ndarray]]:
    fields = {
        "source": image.source,
        "display_name": image.display_name,
        "digest": image.digest,
        "window": list(image.window) if image.window else None,
        "frame": image.frame,
        "modality": image.modality,
    }
    return fields, [np.ascontiguousarray(image.pixels)]


def _load(arguments: dict[str, Any], payload: bytes | None) -> tuple[dict[str, Any], list[np.ndarray]]:
    return _image(
        load_here(
            _source(arguments, payload),
            arguments.get("name"),
            sample=bool(arguments.get("sample")),
            frame=int(arguments.get("frame", 0)),
        )
    )


def _scan(arguments: dict[str, Any], payload: bytes | None) -> tuple[dict[str, Any], list[np.ndarray]]:
    return read_dicom(_source(arguments, payload), arguments.get("name")).header, []


def _scan_frame(arguments: dict[str, Any], payload: bytes | None) -> tuple[dict[str, Any], list[np.ndarray]]:
    values = read_dicom(_source(arguments, payload), arguments.get("name")).frame(int(arguments["index"]))
    return {}, [np.ascontiguousarray(values)]


def _scan_image(arguments: dict[str, Any], payload: bytes | None) -> tuple[dict[str, Any], list[np.ndarray]]:
    name, centre, width = arguments["window"]
    scan = read_dicom(_source(arguments, payload), arguments.get("name"))
    return _image(scan.image(int(arguments["index"]), Window(name, centre, width)))


_zip: dict[str, Any] = {}  # the last zip sent to this child: its key and its opened archive


def _archive(arguments: dict[str, Any], payload: bytes | None) -> Any:
    """The zip a task names: a path, or bytes sent now or kept from an earlier task (None: send them)."""
    if arguments.get("path") is not None:
        return open_zip(Path(arguments["path"]))
    if payload is not None:
        _zip.clear()
        _zip.update(key=arguments["zip"], archive=open_zip(payload))
    return _zip["archive"] if _zip.get("key") == arguments["zip"] else None


def _zip_list(arguments: dict[str, Any], payload: bytes | None) -> tuple[dict[str, Any], list[np.ndarray]]:
    try:
        archive = _archive(arguments, payload)
    except ArchiveError as error:
        return {"error": str(error)}, []
    if archive is None:
        return {"send": True}, []
    return list_members(archive, tuple(arguments["suffixes"])), []


def _zip_image(arguments: dict[str, Any], payload: bytes | None) -> tuple[dict[str, Any], list[np.ndarray]]:
    try:
        archive = _archive(arguments, payload)
    except ArchiveError as error:  # a zip on disk that changed since it was listed
        return {"error": str(error)}, []
    if archive is None:
        return {"send": True}, []
    report, image, frames = member_image(
        archive, int(arguments["place"]), str(arguments["name"]), int(arguments["frame"]), int(arguments["allowance"])
    )
    if image is None:
        return report, []
    fields, arrays = _image(image)
    return {**fields, **report, "frames": frames}, arrays


HANDLERS: dict[str, Handler] = {
    "image": _load,
    "scan": _scan,
    "scan_frame": _scan_frame,
    "scan_image": _scan_image,
    "zip_list": _zip_list,
    "zip_image": _zip_image,
}


def handle(operation: str, arguments: dict[str, Any], payload: bytes | None) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Runs one task; a user's mistake in the file becomes ``{"error": sentence}``, never an exception."""
    try:
        return HANDLERS[operation](arguments, payload)
    except DicomError as error:
        return {"error": str(error), "kind": "dicom"}, []
    except ImageError as error:
        return {"error": str(error), "kind": "image"}, []
    except MemoryError:
        return {
            "error": "This file needs more memory to decode than one file may use here, so nothing was kept.",
            "kind": "image",
        }, []
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # noqa: BLE001 - a decoder's own failure on a hostile file, panics included
        print(f"decoder failed: {type(error).__name__}", file=sys.stderr)
        return {
            "error": "This file is damaged in a way the decoders cannot read, so it cannot be shown.",
            "kind": "image",
        }, []


def main() -> None:
    import PIL.Image  # noqa: F401 - imported early too, for the same reason
    import pydicom.pixels  # noqa: F401 - imported before the first task, so a decode costs no import

    from storage.sandbox import serve

    serve(handle)


if __name__ == "__main__":
    main()
