"""A worklist: the scans of a folder (or of uploaded files, or a zip) with their verdicts, the label their folder
or file name gives, and how many of their explanations are cached. Pure computation: the Scans page draws it.

Scans are named by a digest of their pixels (``scan 3b2dfea7``), never by their file names, which may hold a
patient's name; only the label a name encodes (a class, e.g. "glioma" from ``Te-gl_0010`` or a folder named
``glioma``) is read from it.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Sequence

import numpy as np

from explainers.domain import domain_warning
from explainers.images import IMAGE_SUFFIXES, ImageError, InputImage, load_image
from explainers.predictions import store_prediction, stored_prediction

MAX_SCANS = 500
MAX_ZIP_BYTES = 512 * 1024 * 1024
# Below this confidence a verdict counts as low.
LOW_CONFIDENCE = 0.6


class WorklistError(ValueError):
    """A folder or archive that cannot be listed; the message is one sentence."""


@dataclass
class Scan:
    """One row of the worklist."""

    index: int
    image: InputImage | None  # None when it could not be read
    label: str | None  # what its folder or file name says it shows
    error: str | None = None
    probs: np.ndarray | None = None
    explained: int = 0  # explanations cached, of ``wanted``
    wanted: int = 0
    domain_warning: str | None = None  # one sentence when it does not look like the model's domain
    domain_checked: str | None = None  # the input kind the warning was computed for (once per scan and kind)

    @property
    def name(self) -> str:
        return self.image.display_name if self.image is not None else f"file {self.index + 1}"

    @property
    def verdict(self) -> int | None:
        return None if self.probs is None else int(np.argmax(self.probs))

    @property
    def confidence(self) -> float | None:
        return None if self.probs is None else float(np.max(self.probs))


@dataclass
class Worklist:
    scans: list[Scan] = field(default_factory=list)
    skipped: int = 0  # files beyond MAX_SCANS


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


def scan_files(folder: Path) -> list[Path]:
    """Images and DICOM files under ``folder`` (its subfolders too), sorted; links and hidden files left out."""
    if not folder.is_dir():
        raise WorklistError("That folder does not exist on the server.")
    found = []
    for path in sorted(folder.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts) or path.is_symlink():
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            found.append(path)
    return found


def inside(root: Path, relative: str) -> Path:
    """``relative`` under ``root``, refusing anything that leads out of it (``..``, absolute paths, links)."""
    target = (root / relative).resolve()
    if target != root.resolve() and root.resolve() not in target.parents:
        raise WorklistError("Only folders under the server's scan folder can be opened.")
    return target


def from_folder(spec: Any, folder: Path, sample_paths: Iterable[Path] = ()) -> Worklist:
    """Reads every scan of ``folder`` (up to MAX_SCANS); a file that cannot be read is a row with its reason."""
    files = scan_files(folder)
    samples = {path.resolve() for path in sample_paths}
    worklist = Worklist(skipped=max(0, len(files) - MAX_SCANS))
    for index, path in enumerate(files[:MAX_SCANS]):
        label = label_for(spec, path.relative_to(folder))
        try:
            image = load_image(path, sample=path.resolve() in samples)
        except ImageError as error:
            worklist.scans.append(Scan(index, None, label, str(error)))
            continue
        if not image.display_name.startswith("scan "):  # a picture: named by its pixels too
            image = replace(image, display_name=f"scan {image.digest[:8]}")
        worklist.scans.append(Scan(index, image, label))
    return worklist


def from_uploads(spec: Any, files: Sequence[tuple[str, bytes]]) -> Worklist:
    """Uploaded files, a zip among them opened in place (its members' paths give labels, nothing else)."""
    members: list[tuple[PurePosixPath, bytes]] = []
    for name, data in files:
        if name.lower().endswith(".zip"):
            members += _zip_members(data)
        else:
            members.append((PurePosixPath(PurePosixPath(name).name), data))
    worklist = Worklist(skipped=max(0, len(members) - MAX_SCANS))
    for index, (path, data) in enumerate(members[:MAX_SCANS]):
        label = label_for(spec, path)
        try:
            image = load_image(data, name=f"file {index + 1}{path.suffix.lower()}")
        except ImageError as error:
            worklist.scans.append(Scan(index, None, label, str(error)))
            continue
        worklist.scans.append(Scan(index, replace(image, source="upload", display_name=f"scan {image.digest[:8]}"),
                                   label))
    return worklist


def _zip_members(data: bytes) -> list[tuple[PurePosixPath, bytes]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [info for info in archive.infolist() if not info.is_dir()
                 and PurePosixPath(info.filename).suffix.lower() in IMAGE_SUFFIXES
                 and not any(part.startswith(".") or part == ".." for part in PurePosixPath(info.filename).parts)]
        if sum(info.file_size for info in infos) > MAX_ZIP_BYTES:
            raise WorklistError(f"This zip unpacks to more than {MAX_ZIP_BYTES // 2**20} MB of scans.")
        return [(PurePosixPath(info.filename), archive.read(info)) for info in infos[:MAX_SCANS]]
    except zipfile.BadZipFile as error:
        raise WorklistError("This zip file is damaged and cannot be opened.") from error


def predict_all(worklist: Worklist, classifier: Any, cache: Any, batch: int = 32) -> int:
    """Every readable scan's probabilities: stored, else predicted in batches and stored; and its out-of-domain
    warning. Returns how many needed the model."""
    missing = []
    for scan in worklist.scans:
        if scan.image is None:
            continue
        kind = classifier.spec.input_kind
        if scan.domain_checked != kind:  # pixel statistics of the whole scan: once, not on every page run
            scan.domain_warning, scan.domain_checked = domain_warning(scan.image, kind), kind
        scan.probs = stored_prediction(cache, classifier.name, classifier.weights_digest, scan.image.digest)
        if scan.probs is None or len(scan.probs) != len(classifier.class_names):
            missing.append(scan)
    for start in range(0, len(missing), batch):
        chunk = missing[start:start + batch]
        probs = classifier.predict(np.stack([classifier.prepare(scan.image.pixels) for scan in chunk]))
        for scan, row in zip(chunk, probs):
            scan.probs = row
            store_prediction(cache, classifier.name, classifier.weights_digest, scan.image.digest, row)
    return len(missing)


def count_cached(worklist: Worklist, requests_for: Any, cache: Any) -> None:
    """How many of each scan's wanted explanations (``requests_for(scan)``) are in the cache."""
    for scan in worklist.scans:
        if scan.image is None:
            continue
        requests = requests_for(scan)
        scan.wanted = len(requests)
        scan.explained = sum(1 for request in requests if request.key in cache)


def matches(scan: Scan, classes: set[str] | None, names: Sequence[str], disagrees: bool, low: bool,
            unexplained: bool) -> bool:
    """Whether a scan passes the worklist's filters."""
    if scan.probs is None:
        return not (classes or disagrees or low or unexplained)
    verdict = names[scan.verdict]
    if classes and verdict not in classes:
        return False
    if disagrees and (scan.label is None or scan.label == verdict):
        return False
    if low and scan.confidence >= LOW_CONFIDENCE:
        return False
    if unexplained and scan.explained >= scan.wanted:
        return False
    return True
