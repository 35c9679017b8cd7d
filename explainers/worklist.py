"""A worklist: the scans of a folder (or of uploaded files, or a zip) with their verdicts, the label their folder
or file name gives, and how many of their explanations are cached. Pure computation: the Scans page and the
``scans`` command draw it; explainers.worklist_sources reads folders, uploads and zips into one.

Scans are named by a digest of their pixels (``scan 3b2dfea7``), never by their file names, which may hold a
patient's name; only the label a name encodes (a class, e.g. "glioma" from ``Te-gl_0010`` or a folder named
``glioma``) is read from it. A multi-frame DICOM file gives one row per frame; rows are numbered, so identical
pictures stay apart.

Memory: a worklist keeps each scan's digest and a thumbnail, never its pixels; a scan is decoded again when
opened (:meth:`ScanImage.load`). Verdicts are predicted while the scans are read (a :class:`Predictor` takes each
picture once, in batches of model-sized inputs), so reading a folder holds one decoded picture and one batch at a
time, never the folder, and nothing is decoded twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from explainers.archives import ZipSource
from explainers.dicom import read_scan
from explainers.domain import domain_warning
from explainers.images import ImageError, InputImage, load_image
from explainers.predictions import store_prediction, stored_prediction

# Rows, frames of multi-frame files included.
MAX_SCANS = 500
THUMBNAIL_SIDE = 64
# Below this confidence a verdict counts as low.
LOW_CONFIDENCE = 0.6


class WorklistError(ValueError):
    """A folder or archive that cannot be listed; the message is one sentence."""


@dataclass(frozen=True)
class Origin:
    """Where a scan's file is, to decode it again: a path, an upload's bytes, a member of a zip, or an instance on
    a PACS (``remote``: an object whose ``fetch()`` retrieves the file's bytes again; explainers.pacs.Remote)."""

    name: str = ""  # what sentences call it ("file 3.png", after its row), never its own name
    path: Path | None = None
    data: bytes | None = None
    archive: ZipSource | None = None
    member: int | None = None  # its place in the zip's directory
    sample: bool = False  # a bundled sample (its explanations are shared with everyone)
    remote: Any = None

    def decode(self, frame: int = 0, fresh: bool = False) -> tuple[InputImage, int]:
        """The file decoded at ``frame`` in the sandbox, and how many frames it has (counted on the first frame
        only: 0 for the others); a zip member is unpacked in a child too (``fresh``: under an allowance of its own,
        not the worklist's)."""
        if self.archive is not None and self.member is not None:
            return self.archive.image(self.member, self.name, frame, fresh)
        content: Path | bytes | None = self.path if self.path is not None else self.data
        if content is None and self.remote is not None:
            try:
                content = self.remote.fetch()  # retrieved again each time: the server keeps no PACS file
            except ValueError as error:  # explainers.pacs.PacsError: one sentence
                raise ImageError(str(error)) from None
        if content is None:
            raise ValueError("an origin holds a path, bytes or a zip member")  # our own error: Scan always sets one
        image = load_image(content, name=self.name, sample=self.sample, frame=frame)
        if image.frame is None or frame:  # one frame, or a later one: the count came with the first
            return image, 1 if image.frame is None else 0
        return image, read_scan(content, self.name if isinstance(content, bytes) else None).frames


@dataclass(frozen=True, eq=False)
class ScanImage:
    """A worklist scan's picture without its pixels: the digest, a thumbnail (≤ THUMBNAIL_SIDE), and where to
    decode it again (:meth:`load`)."""

    digest: str
    display_name: str
    thumbnail: np.ndarray
    origin: Origin
    frame: int | None = None  # from 0; None for a single-frame file

    def load(self) -> InputImage:
        """The full picture, decoded again; ImageError (one sentence) when it can no longer be read as it was."""
        image, _ = self.origin.decode(self.frame or 0, fresh=True)
        if image.digest != self.digest:
            raise ImageError(f"{self.origin.name} changed since the worklist was read; read the worklist again.")
        return replace(image, display_name=self.display_name)


@dataclass
class Scan:
    """One row of the worklist."""

    index: int  # its place in the worklist, from 0 (the "#" column shows index + 1)
    image: ScanImage | None  # None when it could not be read
    label: str | None  # what its folder or file name says it shows
    error: str | None = None
    frame: int | None = None  # from 0, in a multi-frame file
    probs: np.ndarray | None = None
    predicted_by: tuple[str, str] | None = None  # (model, weights digest) that ``probs`` are from
    explained: int = 0  # explanations cached, of ``wanted``
    wanted: int = 0
    domain_warning: str | None = None  # one sentence when it does not look like the model's domain
    domain_checked: str | None = None  # the input kind the warning was computed for (once per scan and kind)

    @property
    def row(self) -> int:
        return self.index + 1

    @property
    def name(self) -> str:
        return f"scan {self.image.digest[:8]}" if self.image is not None else f"file {self.row}"

    @property
    def verdict(self) -> int | None:
        return None if self.probs is None else int(np.argmax(self.probs))

    @property
    def confidence(self) -> float | None:
        return None if self.probs is None else float(np.max(self.probs))


@dataclass
class Worklist:
    scans: list[Scan] = field(default_factory=list)
    skipped: int = 0  # entries not listed, for any of the reasons in ``notes``
    notes: list[str] = field(default_factory=list)  # one sentence per reason entries were left out
    _opened: tuple[int, InputImage] | None = field(default=None, repr=False)

    def load(self, index: int) -> InputImage:
        """Scan ``index``'s full picture, decoded again; the last one is kept (pages ask on every run)."""
        if self._opened is None or self._opened[0] != index:
            self._opened = None  # the previous picture goes before the next is decoded
            image = self.scans[index].image
            if image is None:
                raise ImageError(self.scans[index].error or "This scan could not be read.")
            self._opened = index, image.load()
        return self._opened[1]

    @property
    def multi_frame(self) -> bool:
        return any(scan.frame is not None for scan in self.scans)


def label_for(spec: Any, path: PurePosixPath | Path) -> str | None:
    """The class a scan's file name or its folder's name gives, if any."""
    from_name = spec.label_of(path.stem)
    if from_name is not None:
        return from_name
    folder = path.parent.name.lower().replace("_", " ")
    for name in spec.class_names:
        if folder in (name.lower(), name.lower().replace("_", " ")):
            return name
    return None


def thumbnail(pixels: np.ndarray, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    from PIL import Image

    picture = Image.fromarray(pixels)
    picture.thumbnail((side, side))
    return np.asarray(picture)


class Predictor:
    """Fills in scans' verdicts and domain warnings from their decoded pictures as they are read: stored
    predictions first, the rest in batches of model-sized inputs (so only those are kept, not the pictures)."""

    def __init__(self, classifier: Any, cache: Any, batch: int = 32):
        self.classifier, self.cache, self.batch = classifier, cache, batch
        self.pending: list[tuple[Scan, np.ndarray]] = []
        self.predicted = 0  # scans that needed the model

    @property
    def model(self) -> tuple[str, str]:
        return self.classifier.name, self.classifier.weights_digest

    def stored(self, scan: Scan) -> bool:
        """Takes the stored prediction, if there is one of the right length."""
        if scan.image is None:  # unreadable: nothing was stored for it
            return False
        probs = stored_prediction(self.cache, *self.model, scan.image.digest)
        if probs is None or len(probs) != len(self.classifier.class_names):
            return False
        scan.probs, scan.predicted_by = probs, self.model
        return True

    def __call__(self, scan: Scan, image: InputImage) -> None:
        kind = self.classifier.spec.policy.kind
        scan.domain_warning, scan.domain_checked = domain_warning(image, kind), kind
        if not self.stored(scan):
            self.pending.append((scan, self.classifier.prepare(image.pixels)))
            if len(self.pending) >= self.batch:
                self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        probs = self.classifier.predict(np.stack([prepared for _, prepared in self.pending]))
        for (scan, _), row in zip(self.pending, probs, strict=True):
            scan.probs, scan.predicted_by = row, self.model
            if scan.image is not None:  # it was readable when it was queued; a failed scan keeps no prediction
                store_prediction(self.cache, *self.model, scan.image.digest, row)
        self.predicted += len(self.pending)
        self.pending = []


def predict_all(worklist: Worklist, classifier: Any, cache: Any, batch: int = 32) -> int:
    """Verdicts and domain warnings of the readable scans that lack them for this model: stored, else decoded
    again and predicted in batches. Returns how many needed the model."""
    predictor = Predictor(classifier, cache, batch)
    for scan in worklist.scans:
        if scan.image is None or (
            scan.predicted_by == predictor.model and scan.domain_checked == classifier.spec.policy.kind
        ):
            continue
        if scan.domain_checked == classifier.spec.policy.kind and predictor.stored(scan):
            continue
        try:
            predictor(scan, scan.image.load())
        except ImageError as error:  # changed or gone since it was listed
            scan.image, scan.error = None, str(error)
    predictor.flush()
    return predictor.predicted


def count_cached(worklist: Worklist, requests_for: Any, cache: Any) -> None:
    """How many of each scan's wanted explanations (``requests_for(scan)``) are in the cache."""
    for scan in worklist.scans:
        if scan.image is None:
            continue
        requests = requests_for(scan)
        scan.wanted = len(requests)
        scan.explained = sum(1 for request in requests if request.key in cache)


def summary(worklist: Worklist, names: Sequence[str]) -> dict[str, int]:
    """Counts for the page's summary and the command line's last line."""
    readable = [scan for scan in worklist.scans if scan.probs is not None]
    labelled = [scan for scan in readable if scan.label is not None]
    return {
        "scans": len(worklist.scans),
        "readable": len(readable),
        "failed": sum(1 for scan in worklist.scans if scan.image is None),
        "skipped": worklist.skipped,
        "agree": sum(1 for scan in labelled if _verdict_name(scan, names) == scan.label),
        "labelled": len(labelled),
    }


def _verdict_name(scan: Scan, names: Sequence[str]) -> str | None:
    verdict = scan.verdict
    return None if verdict is None else names[verdict]


def matches(
    scan: Scan, classes: set[str] | None, names: Sequence[str], disagrees: bool, low: bool, unexplained: bool
) -> bool:
    """Whether a scan passes the worklist's filters."""
    if scan.probs is None:
        return not (classes or disagrees or low or unexplained)
    verdict = _verdict_name(scan, names)
    if classes and verdict not in classes:
        return False
    if disagrees and (scan.label is None or scan.label == verdict):
        return False
    confidence = scan.confidence
    if low and confidence is not None and confidence >= LOW_CONFIDENCE:
        return False
    if unexplained and scan.explained >= scan.wanted:
        return False
    return True
