"""Reading the scans of a zip without trusting its directory, in the sandbox's children (the server never opens
a zip a person brought).

Members are unpacked in chunks that stop as soon as one holds more than its directory says, more than the
per-file limit, or more than what is left of the zip's total allowance; names that lead outside the zip are
skipped and counted; a damaged, encrypted or unusually compressed member is one sentence, not a traceback.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from explainers.images import MAX_FILE_BYTES, ImageError, InputImage

# Everything unpacked from one zip while a worklist is read (one member at a time; see MAX_FILE_BYTES).
MAX_TOTAL_BYTES = 256 * 2**20
CHUNK = 2**20
# Stored and Deflate only: zipfile unpacks bzip2 and LZMA without an output limit per read, so one small
# chunk of either could unpack to gigabytes before a check of ours ran. Deflate reads are bounded by CHUNK.
SUPPORTED = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
METHODS = {9: "Deflate64", 12: "bzip2", 14: "LZMA", 93: "Zstandard", 95: "xz", 98: "PPMd",
           99: "AES encryption (method 99)"}
# A directory this large lists hundreds of thousands of entries: parsing it alone would take gigabytes.
MAX_DIRECTORY_BYTES = 16 * 2**20
# What zipfile and the decompressors raise on damaged data.
DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError, ValueError,
          struct.error)


class ArchiveError(ValueError):
    """A zip that cannot be opened at all; the message is one sentence."""


class MemberError(ImageError):
    """One member that cannot be unpacked; the message is one sentence naming it as the caller asked."""


@dataclass
class Allowance:
    """Bytes that may still be unpacked from one zip."""

    left: int = field(default_factory=lambda: MAX_TOTAL_BYTES)

    @property
    def spent(self) -> bool:
        return self.left <= 0


@dataclass
class Listing:
    """A zip's image members (their places in its directory, sorted by name) and what was left out."""

    members: list[int] = field(default_factory=list)
    outside: int = 0  # members whose paths lead outside the zip (``..``, absolute, a drive)


def leads_outside(name: str) -> bool:
    """Whether a member's name is absolute, names a drive, or climbs out with ``..``."""
    name = name.replace("\\", "/")
    return name.startswith("/") or re.match(r"^[A-Za-z]:", name) is not None or ".." in name.split("/")


def member_path(name: str) -> PurePosixPath:
    return PurePosixPath(name.replace("\\", "/"))


def _hidden(path: PurePosixPath) -> bool:
    """A dot file or folder, or macOS's ``__MACOSX`` copies of resource forks (``._scan.png``)."""
    return any(part.startswith(".") for part in path.parts) or path.parts[:1] == ("__MACOSX",)


class ZipSource:
    """One zip, as bytes (an upload) or a path (the command line). It is opened, listed and unpacked only in the
    sandbox's children (:func:`list_members`, :func:`member_image`): the server holds its bytes, the listing and
    the allowance, never a ZipFile. Members are read by their place in its directory, so the same name twice
    stays two members. A child keeps the last zip it was sent, so reading its members one after another sends it
    through the pipe about once."""

    def __init__(self, source: bytes | Path):
        self.source = source
        self.allowance = Allowance()  # spent while the worklist is read; reopening a scan has its own
        self.key = hashlib.sha256(source).hexdigest() if isinstance(source, (bytes, bytearray)) else None
        self._names: dict[int, str] = {}
        self._sizes: dict[int, int] = {}

    def listing(self, suffixes: tuple[str, ...]) -> Listing:
        """Members whose names end in ``suffixes``; folders, hidden files and other files are left out silently,
        those leading outside the zip are counted. ArchiveError when the zip cannot be opened."""
        reply = self._call("zip_list", {"suffixes": list(suffixes)})
        if reply.result.get("error"):
            raise ArchiveError(str(reply.result["error"]))
        for place, name, size in reply.result["members"]:
            self._names[int(place)], self._sizes[int(place)] = str(name), int(size)
        return Listing([int(place) for place, _, _ in reply.result["members"]], int(reply.result["outside"]))

    def path(self, place: int) -> PurePosixPath:
        return member_path(self._names[place])

    def image(self, place: int, shown: str, frame: int = 0, fresh: bool = False) -> tuple[InputImage, int]:
        """Member ``place`` unpacked (see :func:`read_member`) and decoded at ``frame`` in a child, with its
        frame count; ``shown`` is what sentences call it. The worklist's allowance pays for a first reading; a
        later frame or a scan opened again (``fresh``) reads under an allowance of its own."""
        from explainers import sandbox

        allowance = Allowance() if fresh or frame else self.allowance
        reply = self._call("zip_image", {"place": place, "name": shown, "frame": frame, "allowance": allowance.left})
        allowance.left -= int(reply.result.get("spent", 0))
        if reply.result.get("error"):
            raise MemberError(str(reply.result["error"]))
        return sandbox.image_reply(reply, b""), int(reply.result.get("frames", 1))

    def _call(self, operation: str, arguments: dict[str, Any]) -> Any:
        from explainers import sandbox

        if self.key is None:
            return sandbox.call(operation, {**arguments, "path": str(self.source), "zip": None}, check=False)
        reply = sandbox.call(operation, {**arguments, "path": None, "zip": self.key}, check=False)
        if reply.result.get("send"):  # this child has not seen the zip yet
            reply = sandbox.call(operation, {**arguments, "path": None, "zip": self.key}, bytes(self.source),
                                 check=False)
        return reply


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


def member_image(archive: zipfile.ZipFile, place: int, shown: str, frame: int,
                 left: int) -> tuple[dict[str, Any], InputImage | None, int]:
    """In a child: (what to report, the decoded image or None, its frame count); the report holds the bytes
    unpacked (``spent``) and, when it failed, the sentence (``error``)."""
    from explainers.images import load_here

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
            from explainers.dicom_decode import read_dicom

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
        raise ArchiveError(f"This zip lists {entries:,} entries, far more than a "
                           "worklist can hold; zip fewer files at a time.")


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, shown: str, allowance: Allowance,
                cap: int = MAX_FILE_BYTES) -> bytes:
    """A member's bytes, unpacked CHUNK by CHUNK and refused (MemberError) as soon as it holds more than its
    directory says, than ``cap`` or than ``allowance`` has left; what was unpacked is spent either way."""
    if info.flag_bits & 0x1:
        raise MemberError(f"{shown} is encrypted in the zip; zip it again without a password.")
    if info.compress_type not in SUPPORTED:
        method = METHODS.get(info.compress_type, f"compression method {info.compress_type}")
        raise MemberError(f"{shown} is compressed with {method}, which is not read here; zip it again with the "
                          "usual (Deflate) compression.")
    if info.file_size > cap:
        raise MemberError(f"{shown} unpacks to more than the limit of {cap // 2**20} MB "
                          f"({info.file_size / 2**20:.1f} MB).")
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
                    raise MemberError(f"{shown} holds more data than the zip's directory says, so it was not "
                                      "read." if size > info.file_size else _over_total(shown))
                chunks.append(chunk)
    except MemberError:
        raise
    except DAMAGE:  # a bad CRC (also what a member larger than its directory says ends in), bad Deflate data …
        raise MemberError(f"{shown} is damaged inside the zip (its data does not unpack to what the zip's "
                          "directory says), so it was not read.") from None
    finally:
        allowance.left -= size
    if size != info.file_size:
        raise MemberError(f"{shown} is truncated inside the zip, so it was not read.")
    return b"".join(chunks)


def _over_total(shown: str) -> str:
    return f"{shown} was not read: the zip's scans unpack to more than {MAX_TOTAL_BYTES // 2**20} MB in all."
