"""Reading the scans of a zip without trusting its directory: run inside the sandbox's child
(:mod:`explainers.sandbox_child`), never in the server, which holds a zip as :class:`explainers.archives.ZipSource`.

Members are unpacked in chunks that stop as soon as one holds more than its directory says, more than the
per-file limit, or more than what is left of the zip's total allowance; names that lead outside the zip are
skipped and counted; a damaged, encrypted or unusually compressed member is one sentence, not a traceback.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

from explainers.archive_types import (
    MAX_TOTAL_BYTES,
    Allowance,
    ArchiveError,
    MemberError,
    leads_outside,
    member_path,
)
from explainers.dicom_decode import read_dicom
from explainers.image_decode import load_here
from explainers.image_types import MAX_FILE_BYTES, ImageError, InputImage

CHUNK = 2**20
# Stored and Deflate only: zipfile unpacks bzip2 and LZMA without an output limit per read, so one small
# chunk of either could unpack to gigabytes before a check of ours ran. Deflate reads are bounded by CHUNK.
SUPPORTED = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
METHODS = {
    9: "Deflate64",
    12: "bzip2",
    14: "LZMA",
    93: "Zstandard",
    95: "xz",
    98: "PPMd",
    99: "AES encryption (method 99)",
}
# A directory this large lists hundreds of thousands of entries: parsing it alone would take gigabytes.
MAX_DIRECTORY_BYTES = 16 * 2**20
# What zipfile and the decompressors raise on damaged data.
DAMAGE = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    struct.error,
)


def _hidden(path: PurePosixPath) -> bool:
    """A dot file or folder, or macOS's ``__MACOSX`` copies of resource forks (``._scan.png``)."""
    return any(part.startswith(".") for part in path.parts) or path.parts[:1] == ("__MACOSX",)


def list_members(archive: zipfile.ZipFile, suffixes: tuple[str, ...]) -> dict[str, Any]:
    """In a child: the image members' places, names and declared sizes, sorted by name, and how many lead
    outside the zip."""
    named, outside = [], 0
    for place, info in enumerate(archive.infolist()):
        path = member_path(info.filename)
        if info.is_dir() or path.suffix.lower() not in suffixes:
            continue
        if leads_outside(info.filename):
            outside += 1
        elif not _hidden(path):
            named.append((info.filename[:1024], place, info.file_size))
    return {"members": [[place, name, size] for name, place, size in sorted(named)], "outside": outside}


def member_image(
    archive: zipfile.ZipFile, place: int, shown: str, frame: int, left: int
) -> tuple[dict[str, Any], InputImage | None, int]:
    """In a child: (what to report, the decoded image or None, its frame count); the report holds the bytes
    unpacked (``spent``) and, when it failed, the sentence (``error``)."""
    allowance = Allowance(left)
    try:
        data = read_member(archive, archive.infolist()[place], shown, allowance)
    except ImageError as error:
        return {"error": str(error), "spent": left - allowance.left}, None, 0
    spent = {"spent": left - allowance.left}
    try:
        image = load_here(data, name=shown, frame=frame)
        frames = 1
        if image.frame is not None:
            frames = read_dicom(data, shown).frames
    except ImageError as error:
        return {"error": str(error), **spent}, None, 0
    return spent, image, frames


def open_zip(source: bytes | Path) -> zipfile.ZipFile:
    """The zip (in a child: see ZipSource), its directory size checked first; ArchiveError with a sentence."""
    try:
        handle: Any = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else open(source, "rb")
    except OSError as error:
        raise ArchiveError(f"The zip file cannot be read ({error.strerror or error}).") from None
    try:
        _check_directory(handle)
        return zipfile.ZipFile(handle)
    except ArchiveError:
        handle.close()
        raise
    except (*DAMAGE, IndexError, KeyError, OverflowError, MemoryError):
        handle.close()
        raise ArchiveError("This zip file is damaged (or is no zip), so it cannot be opened.") from None


def _check_directory(handle: Any) -> None:
    """Refuses a zip whose central directory is too large to parse safely, from its end record alone."""
    end_record = getattr(zipfile, "_EndRecData", None)  # private, but stable since Python 2; skipped if gone
    if end_record is None:
        return
    record = end_record(handle)
    if record is None:
        raise zipfile.BadZipFile("no end of central directory")
    size = record[zipfile._ECD_SIZE]  # type: ignore[attr-defined]  # typeshed omits zipfile's private _ECD_*
    entries = record[zipfile._ECD_ENTRIES_TOTAL]  # type: ignore[attr-defined]  # typeshed omits zipfile's _ECD_*
    if size > MAX_DIRECTORY_BYTES:
        raise ArchiveError(
            f"This zip lists {entries:,} entries, far more than a worklist can hold; zip fewer files at a time."
        )


def read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, shown: str, allowance: Allowance, cap: int = MAX_FILE_BYTES
) -> bytes:
    """A member's bytes, unpacked CHUNK by CHUNK and refused (MemberError) as soon as it holds more than its
    directory says, than ``cap`` or than ``allowance`` has left; what was unpacked is spent either way."""
    if info.flag_bits & 0x1:
        raise MemberError(f"{shown} is encrypted in the zip; zip it again without a password.")
    if info.compress_type not in SUPPORTED:
        method = METHODS.get(info.compress_type, f"compression method {info.compress_type}")
        raise MemberError(
            f"{shown} is compressed with {method}, which is not read here; zip it again with the "
            "usual (Deflate) compression."
        )
    if info.file_size > cap:
        raise MemberError(
            f"{shown} unpacks to more than the limit of {cap // 2**20} MB ({info.file_size / 2**20:.1f} MB)."
        )
    if info.file_size > allowance.left:
        allowance.left = 0  # the rest of the zip is counted as not read, not listed as rows
        raise MemberError(_over_total(shown))
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(CHUNK):  # a Deflate read unpacks at most CHUNK bytes
                size += len(chunk)
                # zipfile cuts a member at its declared size; ours checks again in case it ever does not.
                if size > min(info.file_size, cap, allowance.left):
                    raise MemberError(
                        f"{shown} holds more data than the zip's directory says, so it was not read."
                        if size > info.file_size
                        else _over_total(shown)
                    )
                chunks.append(chunk)
    except MemberError:
        raise
    except DAMAGE:  # a bad CRC (also what a member larger than its directory says ends in), bad Deflate data …
        raise MemberError(
            f"{shown} is damaged inside the zip (its data does not unpack to what the zip's "
            "directory says), so it was not read."
        ) from None
    finally:
        allowance.left -= size
    if size != info.file_size:
        raise MemberError(f"{shown} is truncated inside the zip, so it was not read.")
    return b"".join(chunks)


def _over_total(shown: str) -> str:
    return f"{shown} was not read: the zip's scans unpack to more than {MAX_TOTAL_BYTES // 2**20} MB in all."
