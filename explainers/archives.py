"""A zip a person brought, as the server holds it (:class:`ZipSource`): its bytes or path, its listing and the
allowance spent on it, never a ZipFile. It is opened, listed and unpacked only in the sandbox's children
(:mod:`explainers.archive_decode`), reached through :mod:`explainers.sandbox`; the server never opens it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath
from typing import Any

from explainers import sandbox
from explainers.archive_types import (
    MAX_TOTAL_BYTES,
    Allowance,
    ArchiveError,
    Listing,
    MemberError,
    leads_outside,
    member_path,
)
from explainers.image_types import MAX_FILE_BYTES, InputImage

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_TOTAL_BYTES",
    "Allowance",
    "ArchiveError",
    "Listing",
    "MemberError",
    "ZipSource",
    "leads_outside",
    "member_path",
]


class ZipSource:
    """One zip, as bytes (an upload) or a path (the command line). It is opened, listed and unpacked only in the
    sandbox's children (:mod:`explainers.archive_decode`: ``list_members``, ``member_image``): the server holds
    its bytes, the listing and the allowance, never a ZipFile. Members are read by their place in its directory,
    so the same name twice stays two members. A child keeps the last zip it was sent, so reading its members one
    after another sends it through the pipe about once."""

    def __init__(self, source: bytes | Path):
        self.source = source
        self.allowance = Allowance(MAX_TOTAL_BYTES)  # spent while the worklist is read; reopening a scan has its own
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
        """Member ``place`` unpacked (see :func:`explainers.archive_decode.read_member`) and decoded at ``frame``
        in a child, with its frame count; ``shown`` is what sentences call it. The worklist's allowance pays for a
        first reading; a later frame or a scan opened again (``fresh``) reads under an allowance of its own."""
        allowance = Allowance(MAX_TOTAL_BYTES) if fresh or frame else self.allowance
        reply = self._call("zip_image", {"place": place, "name": shown, "frame": frame, "allowance": allowance.left})
        allowance.left -= int(reply.result.get("spent", 0))
        if reply.result.get("error"):
            raise MemberError(str(reply.result["error"]))
        return sandbox.image_reply(reply, b""), int(reply.result.get("frames", 1))

    def _call(self, operation: str, arguments: dict[str, Any]) -> Any:
        if self.key is None:
            return sandbox.call(operation, {**arguments, "path": str(self.source), "zip": None}, check=False)
        reply = sandbox.call(operation, {**arguments, "path": None, "zip": self.key}, check=False)
        if reply.result.get("send"):  # this child has not seen the zip yet
            reply = sandbox.call(
                operation, {**arguments, "path": None, "zip": self.key}, bytes(self.source), check=False
            )
        return reply
