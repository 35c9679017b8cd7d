"""The cache index's rows: their schema, who may see each one, and what an image is called there.

The index is shared by every visitor of the Gallery, so no row may hold a file name (it can be a patient's):
a bundled sample keeps its own name, any other image is named by its digest ("image 3fa2c1d0", like an
upload's "upload 3fa2c1d0" or a scan's "scan 3fa2c1d0"). The same rule is applied again when rows are read,
so an index written before it never shows a stored file name either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Who may see an entry in the Gallery: SHARED (a bundled sample's) for everyone; else the user who asked for it
# (LOCAL on an open, single-user app and on the command line). Rows of an index older than the column are
# UNKNOWN: shown only on an open app.
SHARED, LOCAL, UNKNOWN = "", "local", "unknown"
SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, weights_digest TEXT NOT NULL, image_digest TEXT NOT NULL,
    image_label TEXT NOT NULL, method TEXT NOT NULL, request TEXT NOT NULL, file TEXT NOT NULL,
    sha256 TEXT NOT NULL, bytes INTEGER NOT NULL, created REAL NOT NULL, last_used REAL NOT NULL,
    seconds REAL NOT NULL, owner TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS entries_last_used ON entries (last_used);
CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Names made of nothing but a digest (explainers.images, explainers.dicom): safe to list to anyone.
_DIGEST_NAME = re.compile(r"(?:image|upload|scan) [0-9a-f]{4,16}(?:, frame \d+ of \d+)?")


def listed_label(label: str, image_digest: str, owner: str) -> str:
    """What the index stores and the Gallery shows for an image: a bundled sample's (SHARED) own name or a
    digest name as it is; anything else, a file name above all, becomes "image <digest[:8]>"."""
    if (owner == SHARED and label) or _DIGEST_NAME.fullmatch(label):
        return label
    return f"image {image_digest[:8]}"


@dataclass(frozen=True)
class CacheEntry:
    key: str
    model: str
    image_digest: str
    image_label: str  # as stored: an old index may hold a file name; show :attr:`image_name`
    method: str
    request: dict[str, Any]
    bytes: int
    created: float
    last_used: float
    seconds: float
    owner: str = UNKNOWN

    @property
    def shared(self) -> bool:
        return self.owner == SHARED

    @property
    def image_name(self) -> str:
        """The image's name for the Gallery and ``cache list``: never a file name, even from an old index."""
        return listed_label(self.image_label, self.image_digest, self.owner)

    def visible_to(self, user: str | None) -> bool:
        """Whether the Gallery lists it for ``user`` (None: an open app, where everything is listed)."""
        return user is None or self.owner in (SHARED, user)
