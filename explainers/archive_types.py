"""What the server and the sandbox's children both know of a zip a person brought (it imports no decoder and no
sandbox): its errors, the total it may unpack, the allowance spent against that, a listing of its members and
which member names lead outside it. The zip is opened only in a child (:mod:`explainers.archive_decode`); the
server holds it as an :class:`explainers.archives.ZipSource`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from explainers.image_types import ImageError

# Everything unpacked from one zip while a worklist is read (one member at a time; see MAX_FILE_BYTES).
MAX_TOTAL_BYTES = 256 * 2**20


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
