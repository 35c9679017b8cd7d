"""Where a worklist comes from: a folder, uploaded files, a zip (explainers.archives reads it without trusting
its directory) or, for the command line, any folder or zip. Entries are counted and capped (MAX_SCANS rows,
frames included) and whatever is left out is counted with one sentence per reason."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

from explainers import archives
from explainers.archives import ArchiveError, Listing, ZipSource
from explainers.images import IMAGE_SUFFIXES, ImageError, InputImage
from explainers.worklist import (
    MAX_SCANS,
    Origin,
    Predictor,
    Scan,
    ScanImage,
    Worklist,
    WorklistError,
    label_for,
    thumbnail,
)

Entries = Iterable[tuple[PurePosixPath | Path, Origin]]  # a folder's files are Paths, a zip's members not


def _read(spec: Any, entries: Entries, predictor: Predictor | None, limit: int) -> Worklist:
    """Reads ``entries`` (a label's path and an origin each) into rows, up to ``limit`` rows, one per frame; an
    entry that cannot be read is a row with its sentence, and what is left out is counted with a note."""
    worklist = Worklist()
    beyond = unread = 0
    for path, origin in entries:
        if len(worklist.scans) >= limit:
            beyond += 1
        elif origin.archive is not None and origin.archive.allowance.spent:
            unread += 1
        else:  # named after its first row, so that a sentence about "file 7.png" sits on row 7
            origin = replace(origin, name=f"file {len(worklist.scans) + 1}{path.suffix.lower()}")
            beyond += _read_file(worklist, label_for(spec, path), origin, predictor, limit)
    if predictor is not None:
        predictor.flush()
    if beyond:
        worklist.notes.append(f"{beyond} more scans (files or slices) are not listed: a worklist holds up to {limit}.")
    if unread:
        worklist.notes.append(
            f"{unread} more entr{'y was' if unread == 1 else 'ies were'} not read: the zip's "
            f"scans unpack to more than {archives.MAX_TOTAL_BYTES // 2**20} MB in all."
        )
    worklist.skipped += beyond + unread
    return worklist


def _read_file(worklist: Worklist, label: str | None, origin: Origin, predictor: Predictor | None, limit: int) -> int:
    """One file's rows (one per frame, each decoded alone); returns how many frames did not fit."""
    try:
        first, frames = origin.decode(0)
    except ImageError as error:
        worklist.scans.append(Scan(len(worklist.scans), None, label, str(error)))
        return 0
    _add(worklist, first, origin, label, predictor)
    del first  # one decoded picture at a time
    for frame in range(1, frames):
        if len(worklist.scans) >= limit:
            return frames - frame
        try:
            _add(worklist, origin.decode(frame)[0], origin, label, predictor)
        except ImageError as error:
            worklist.scans.append(Scan(len(worklist.scans), None, label, str(error), frame=frame))
    return 0


def _add(worklist: Worklist, image: InputImage, origin: Origin, label: str | None, predictor: Predictor | None) -> None:
    shown = image.display_name if image.display_name.startswith("scan ") else f"scan {image.digest[:8]}"
    reference = ScanImage(image.digest, shown, thumbnail(image.pixels), origin, image.frame)
    scan = Scan(len(worklist.scans), reference, label, frame=image.frame)
    worklist.scans.append(scan)
    if predictor is not None:
        predictor(scan, image)


def scan_files(folder: Path) -> Iterator[Path]:
    """Images and DICOM files under ``folder`` (its subfolders too), in sorted order, one folder at a time;
    links and hidden files and folders left out."""
    for root, folders, files in os.walk(folder):  # links to folders are not followed
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in sorted(files):
            path = Path(root, name)
            if (
                not name.startswith(".")
                and path.suffix.lower() in IMAGE_SUFFIXES
                and not path.is_symlink()
                and path.is_file()
            ):
                yield path


def inside(root: Path, relative: str) -> Path:
    """``relative`` under ``root``, refusing anything that leads out of it (``..``, absolute paths, links)."""
    target = (root / relative).resolve()
    if target != root.resolve() and root.resolve() not in target.parents:
        raise WorklistError("Only folders under the server's scan folder can be opened.")
    return target


def from_folder(
    spec: Any,
    folder: Path,
    sample_paths: Iterable[Path] = (),
    predictor: Predictor | None = None,
    limit: int = MAX_SCANS,
) -> Worklist:
    """Every scan of ``folder`` (up to ``limit`` rows); a file that cannot be read is a row with its reason."""
    if not folder.is_dir():
        raise WorklistError("That folder does not exist on the server.")
    samples = {path.resolve() for path in sample_paths}

    def entries() -> Entries:
        for path in scan_files(folder):
            yield path.relative_to(folder), Origin(path=path, sample=path.resolve() in samples)

    return _read(spec, entries(), predictor, limit)


def from_uploads(
    spec: Any, files: Sequence[tuple[str, bytes]], predictor: Predictor | None = None, limit: int = MAX_SCANS
) -> Worklist:
    """Uploaded files, a zip among them opened in place (its members' paths give labels, nothing else)."""
    # Every zip is listed first, so that a damaged one is refused before anything is read.
    zips = [
        (source, _listing(source))
        for source in (ZipSource(data) for name, data in files if name.lower().endswith(".zip"))
    ]

    def entries() -> Entries:
        listed = iter(zips)
        for name, data in files:
            if name.lower().endswith(".zip"):
                yield from _members(*next(listed))
            else:
                yield PurePosixPath(PurePosixPath(name).name), Origin(data=data)

    return _with_outside(_read(spec, entries(), predictor, limit), sum(listing.outside for _, listing in zips))


def from_zip(spec: Any, archive: Path, predictor: Predictor | None = None, limit: int = MAX_SCANS) -> Worklist:
    """The scans of a zip file on disk (the command line)."""
    source = ZipSource(archive)
    listing = _listing(source)
    return _with_outside(_read(spec, _members(source, listing), predictor, limit), listing.outside)


def from_pacs(
    spec: Any, pacs: Any, series: Sequence[Any], predictor: Predictor | None = None, limit: int = MAX_SCANS
) -> Worklist:
    """The image instances of the PACS's ``series`` (explainers.pacs.Series; up to ``limit`` rows), each retrieved
    and decoded in the sandbox as it is read, then let go; objects without pixels (reports, documents) are left
    out and counted in a note. WorklistError (one sentence) when the PACS cannot list them."""
    from explainers.pacs import PacsError, Remote

    others = 0

    def entries() -> Entries:
        nonlocal others
        for found in series:
            for instance in pacs.instances(found):  # no label: nothing on a PACS is named after its class
                if not instance.image:
                    others += 1
                    continue
                yield PurePosixPath("pacs/instance.dcm"), Origin(remote=Remote(pacs, instance))

    try:
        worklist = _read(spec, entries(), predictor, limit)
    except PacsError as error:
        raise WorklistError(str(error)) from None
    if others:
        worklist.notes.append(
            f"{others} object{'s' * (others != 1)} without pixels (reports, documents) left out: nothing to explain."
        )
    return worklist


def from_path(
    spec: Any, path: Path, sample_paths: Iterable[Path] = (), predictor: Predictor | None = None, limit: int = MAX_SCANS
) -> Worklist:
    """A folder or a .zip file, for the command line (whose user may read any folder)."""
    if path.is_dir():
        return from_folder(spec, path, sample_paths, predictor, limit)
    if not path.exists():
        raise WorklistError("Nothing exists at that path.")
    if not path.is_file() or path.suffix.lower() != ".zip":
        raise WorklistError("That path is neither a folder nor a .zip file.")
    return from_zip(spec, path, predictor, limit)


def _listing(source: ZipSource) -> Listing:
    try:
        return source.listing(IMAGE_SUFFIXES)
    except ArchiveError as error:
        raise WorklistError(str(error)) from None


def _members(source: ZipSource, listing: Listing) -> Entries:
    for place in listing.members:
        yield source.path(place), Origin(archive=source, member=place)


def _with_outside(worklist: Worklist, outside: int) -> Worklist:
    if outside:
        worklist.notes.insert(
            0,
            "1 entry with a path leading outside the zip was skipped."
            if outside == 1
            else f"{outside} entries with paths leading outside the zip were skipped.",
        )
        worklist.skipped += outside
    return worklist
