"""The Scans page's second reader: in "read first" mode each scan opens with the image alone; the reader records a
read (class and confidence) before the model's verdict and the buttons to its maps appear; the reads are kept
(studies.reads: no patient data), compared with the model and exported as CSV."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import streamlit as st
from PIL import Image

from explainers.images import ImageError
from explainers.worklist import Scan, Worklist
from studies.reads import (
    CONFIDENCE_LABELS,
    CONFIDENCE_POINTS,
    Read,
    ReadError,
    ReadStore,
    agreement,
    plural,
    reads_csv,
)
from ui import keys
from viz.card import verdict_text
from viz.panels import image_panel, percent

SHOWN_SIDE = 512  # the reader's view of a scan, at most this many pixels a side
ReadsByDigest = dict[str, Read]


def get_read_store() -> ReadStore:
    return ReadStore()


def reader() -> str:
    return st.session_state.get(keys.READER) or ""


def reads_by_digest(store: ReadStore, model: str) -> ReadsByDigest:
    return {read.digest: read for read in store.reads(reader(), model)}


def blind_order(scans: list[Scan]) -> list[Scan]:
    """The second reader's order: by the pixels' digest, so that the order of the file names (often grouped
    by class) gives nothing away; the same for every visit."""
    return sorted(scans, key=lambda scan: (scan.image is None, scan.image.digest if scan.image else "", scan.row))


def masked_row(scan: Scan, read: Read | None, row: dict, title: Callable[[str], str]) -> dict:
    """A worklist row as the second reader sees it: no "#" (the file order), and the verdict and everything that
    hints at it (the label, the agreement, the domain check, the model's confidence) only once the scan is read."""
    shown = {name: row[name] for name in ("thumbnail", "scan", "frame", "series") if name in row}
    shown["your read"] = title(read.read_class) if read else ""
    for name in ("verdict", "confidence", "in domain", "label", "agrees", "explained"):
        unreadable = scan.probs is None and name == "verdict"  # the sentence saying why it could not be read
        blank = None if name == "confidence" else ""
        shown[name] = row[name] if read is not None or unreadable else blank
    shown["you agree"] = "" if read is None else ("✓" if read.agrees else "✗")
    return shown


def _view(scan: Scan) -> np.ndarray | None:
    """The scan's full picture at most SHOWN_SIDE a side, decoded once per opened scan."""
    assert scan.image is not None
    kept = st.session_state.get(keys.READ_VIEW)
    if kept is not None and kept[0] == scan.image.digest:
        return kept[1]
    try:
        pixels = scan.image.load().pixels
    except ImageError as error:
        st.error(str(error))
        return None
    picture = Image.fromarray(pixels)
    picture.thumbnail((SHOWN_SIDE, SHOWN_SIDE))
    view = np.asarray(picture)
    st.session_state[keys.READ_VIEW] = (scan.image.digest, view)
    return view


def read_first(scan: Scan, spec, store: ReadStore, reads: ReadsByDigest) -> bool:
    """Draws the opened scan for the second reader; True once it is read (the caller then offers its maps)."""
    assert scan.image is not None and scan.probs is not None and scan.verdict is not None
    read = reads.get(scan.image.digest)
    names = list(spec.class_names)
    if read is None:
        view = _view(scan)
        if view is None:
            return False
        left, right = st.columns([3, 2])
        left.html(image_panel(view, title=scan.name))

        def record() -> None:
            assert scan.image is not None and scan.probs is not None and scan.verdict is not None
            try:
                store.record(
                    reader=reader(),
                    model=spec.name,
                    digest=scan.image.digest,
                    read_class=st.session_state.get(keys.READ_CLASS),
                    confidence=st.session_state.get(keys.READ_CONFIDENCE),
                    classes=names,
                    model_class=names[scan.verdict],
                    model_probability=float(scan.probs[scan.verdict]),
                    label=scan.label,
                    in_domain=scan.domain_warning is None,
                )
            except ReadError as error:
                st.session_state[keys.READ_ERROR] = str(error)
                return
            for key in (keys.READ_CLASS, keys.READ_CONFIDENCE):
                st.session_state.pop(key, None)

        with right.form(f"read_{scan.image.digest}", border=True):
            st.markdown("**Your read first.** The model's verdict and maps appear once it is recorded.")
            st.radio("What do you see?", names, index=None, format_func=spec.class_title, key=keys.READ_CLASS)
            st.select_slider(
                "How sure are you?",
                options=list(range(1, CONFIDENCE_POINTS + 1)),
                value=3,
                format_func=lambda point: f"{point}: {CONFIDENCE_LABELS[point - 1]}",
                key=keys.READ_CONFIDENCE,
            )
            error = st.session_state.pop(keys.READ_ERROR, None)
            if error:
                st.error(error)
            st.form_submit_button("Record my read", type="primary", on_click=record)
        return False
    view = _view(scan)
    left, right = st.columns([3, 2])
    if view is not None:
        left.html(image_panel(view, title=scan.name))
    verdict = verdict_text(
        spec.title,
        spec.class_title(names[scan.verdict]),
        percent(float(scan.probs[scan.verdict])),
        in_domain=scan.domain_warning is None,
    )
    if scan.domain_warning:
        right.warning(scan.domain_warning)
    you = f"You read **{spec.class_title(read.read_class)}** ({read.confidence} of {CONFIDENCE_POINTS}: "
    you += f"{CONFIDENCE_LABELS[read.confidence - 1]}). "
    right.markdown(you + verdict + (": **you agree**." if read.agrees else ": **you disagree**."))
    return True


def agreement_section(store: ReadStore, model: str, title: str, worklist: Worklist) -> None:
    """The reader's agreement with the model, on this worklist and over every read of this model; the CSV."""
    mine = store.reads(reader(), model)
    here = {scan.image.digest for scan in worklist.scans if scan.image is not None}
    on_list = [read for read in mine if read.digest in here]
    with st.container(border=True):
        st.markdown(f"**Reader {reader() or 'reader'} and {title}.** This worklist: {agreement(on_list).sentence()}")
        if len(mine) != len(on_list):
            st.caption(f"Every read of this model by this reader: {agreement(mine).sentence()}")
        everyone = store.reads(model=model)
        st.download_button(
            f"Download the reads (CSV, {plural(len(everyone), 'read')} of this model, every reader)",
            reads_csv(everyone),
            file_name=f"reads_{model}.csv",
            mime="text/csv",
            disabled=not everyone,
            key="reads_download",
        )
