"""The input formats this app reads: the one list every uploader, help text, error sentence and folder scan is
made from, so that adding a format here is the whole change (tests/test_formats.py checks each one decodes).

Imports nothing of ours, so that explainers.image_types and explainers.dicom_types (which imports image_types) can both
use it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InputFormat:
    """One format: its name as users know it, its file extensions (lower case, no dot, the usual one first),
    the names PIL gives it (``Image.format``; none for a scan, which pydicom reads) and whether it is a scan."""

    name: str
    extensions: tuple[str, ...]
    pil_formats: tuple[str, ...] = ()
    scan: bool = False


FORMATS: tuple[InputFormat, ...] = (
    InputFormat("PNG", ("png",), ("PNG",)),
    InputFormat("JPEG", ("jpg", "jpeg"), ("JPEG", "MPO")),  # MPO: a camera's JPEG with a second picture inside
    InputFormat("TIFF", ("tif", "tiff"), ("TIFF",)),
    InputFormat("BMP", ("bmp",), ("BMP",)),
    InputFormat("WebP", ("webp",), ("WEBP",)),
    InputFormat("DICOM", ("dcm", "dicom"), scan=True),
)


def pictures() -> tuple[InputFormat, ...]:
    """The formats PIL decodes."""
    return tuple(fmt for fmt in FORMATS if not fmt.scan)


def scans() -> tuple[InputFormat, ...]:
    """The formats pydicom reads (header first, then one frame at a time)."""
    return tuple(fmt for fmt in FORMATS if fmt.scan)


def extensions(formats: tuple[InputFormat, ...] = FORMATS) -> tuple[str, ...]:
    """Their extensions without the dot, as Streamlit's uploaders take them: ("png", "jpg", …)."""
    return tuple(extension for fmt in formats for extension in fmt.extensions)


def suffixes(formats: tuple[InputFormat, ...] = FORMATS) -> tuple[str, ...]:
    """Their extensions with the dot, as ``Path.suffix`` gives them: (".png", ".jpg", …)."""
    return tuple(f".{extension}" for extension in extensions(formats))


def pil_names() -> dict[str, str]:
    """PIL's name of each picture format (``Image.format``) to its name as users know it: {"WEBP": "WebP", …}."""
    return {pil: fmt.name for fmt in pictures() for pil in fmt.pil_formats}


def listed(formats: tuple[InputFormat, ...] = FORMATS, *, suffix: bool = False) -> str:
    """Their names in a sentence, "PNG, JPEG, TIFF, BMP or WebP"; ``suffix`` adds a scan's usual extension,
    "… or DICOM (.dcm)", since a scan's name alone does not say which files are meant."""
    names = [f"{fmt.name} (.{fmt.extensions[0]})" if suffix and fmt.scan else fmt.name for fmt in formats]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
