"""Scans: a worklist of a folder of scans (under the server's scan folder) or of uploaded files or a zip, with
thumbnails, verdicts, confidence, the label the file or folder name gives, agreement, and how many of each
scan's Compare explanations are cached; filters, sorting, next/previous, and "explain all" on the job engine."""

from __future__ import annotations

import numpy as np
import streamlit as st

from explainers import formats
from explainers.images import ImageError
from explainers.worklist import (
    LOW_CONFIDENCE,
    Predictor,
    Scan,
    WorklistError,
    count_cached,
    matches,
    predict_all,
    summary,
)
from explainers.worklist_sources import from_folder, from_uploads, inside
from models import ModelUnavailableError, get_spec, list_samples
from storage.folders import folder
from ui import keys
from ui.compute import get_cache, release_others, submit, watch_all
from ui.reads import (
    ReadsByDigest,
    agreement_section,
    blind_order,
    get_read_store,
    masked_row,
    read_first,
    reads_by_digest,
)
from ui.resources import get_classifier
from ui.state import DEFAULT_MODEL, compare_requests, open_scan
from ui.worklists import PACS_SOURCE, configured_pacs, keep_worklist, pacs_worklist, series_of, write_back
from viz.card import RESEARCH_NOTICE
from viz.plots import image_uri

spec = get_spec(st.session_state.get(keys.MODEL, DEFAULT_MODEL))
st.header(f"Scans · {spec.title}")
try:
    classifier = get_classifier(spec.name)
except ModelUnavailableError as error:
    st.error(str(error))
    st.stop()

root = folder("scans")
cache = get_cache()
left, right = st.columns([1, 2])
pacs = configured_pacs()
sources = ["A folder on this server", "Files or a zip"] + ([PACS_SOURCE] if pacs is not None else [])
source = left.radio("Scans from", sources, key=keys.WORKLIST_SOURCE)
try:
    if source == "A folder on this server":
        subfolders = (
            ["."]
            + sorted(
                str(path.relative_to(root))
                for path in root.rglob("*")
                if path.is_dir() and not path.name.startswith(".")
            )
            if root.is_dir()
            else ["."]
        )
        chosen = right.selectbox(f"Folder (under {root.name}/)", subfolders, key=keys.WORKLIST_FOLDER)
        key: tuple[str, str, str | tuple[str, ...]] = ("folder", spec.name, chosen)
        if st.session_state.get(keys.WORKLIST_KEY) != key:
            with st.spinner("Reading the scans and their verdicts…"):  # predicted as they are read
                worklist = from_folder(
                    spec, inside(root, chosen), (s.path for s in list_samples()), Predictor(classifier, cache)
                )
            keep_worklist(worklist, key)
    elif source == PACS_SOURCE and pacs is not None:
        pacs_key, found = pacs_worklist(spec, pacs, Predictor(classifier, cache), st)
        if found is None:
            st.info("Search the PACS to list its series here; their images are retrieved as they are listed.")
            st.stop()
        if st.session_state.get(keys.WORKLIST_KEY) != pacs_key or found is not st.session_state.get(keys.WORKLIST):
            keep_worklist(found, pacs_key)
    else:
        uploads = right.file_uploader(
            f"Scans ({formats.listed()}) or a zip of them",
            accept_multiple_files=True,
            type=[*formats.extensions(), "zip"],
            key=keys.WORKLIST_UPLOADS,
        )
        key = ("uploads", spec.name, tuple(upload.file_id for upload in uploads or []))
        if not uploads:
            st.info("Upload scans, several at once or a zip, to list them here.")
            st.stop()
        if st.session_state.get(keys.WORKLIST_KEY) != key:
            with st.spinner("Reading the scans and their verdicts…"):
                # A zip's scans keep a reference to its bytes (Streamlit holds the upload anyway), to decode
                # one again when it is opened.
                worklist = from_uploads(
                    spec, [(upload.name, upload.getvalue()) for upload in uploads], Predictor(classifier, cache)
                )
            keep_worklist(worklist, key)
except WorklistError as error:
    st.error(str(error))
    st.stop()

worklist = st.session_state[keys.WORKLIST]
with st.spinner("Reading the verdicts…"):
    predict_all(worklist, classifier, cache)  # only what a kept worklist lacks for this model
requests = {scan.index: compare_requests(classifier, scan.image.digest) for scan in worklist.scans if scan.image}
count_cached(worklist, lambda scan: requests[scan.index], cache)

names = spec.class_names
readable = [scan for scan in worklist.scans if scan.probs is not None]
counts = summary(worklist, names)
explained = sum(1 for scan in readable if scan.explained >= scan.wanted)
a, b = st.columns([1, 1])
reading = a.toggle(
    "Read first (second reader)",
    key=keys.WORKLIST_READ_FIRST,
    help="Each scan opens with the image alone; you record your read before the model's verdict and maps appear.",
)
store = get_read_store()
reads: ReadsByDigest = {}
if reading:
    b.text_input("Reader", key=keys.READER, placeholder="your name or initials", max_chars=40)
    reads = reads_by_digest(store, spec.name)
    done = sum(1 for scan in readable if scan.image and scan.image.digest in reads)
    st.markdown(f"{counts['scans']} scans; {done} of {len(readable)} read by you. Verdicts show once you have read.")
else:
    line = f"{counts['scans']} scans"
    if counts["labelled"]:
        line += f"; {counts['agree']} of {counts['labelled']} labelled ones agree with their label"
    line += f"; {explained} of {len(readable)} fully explained (the Compare page's methods and settings)."
    st.markdown(line)
outside = [scan for scan in readable if scan.domain_warning]
if outside:
    st.warning(
        f"{len(outside)} of {len(readable)} scans do not look like the model's domain (marked ⚠ under "
        f"“in domain”): their verdicts may mean nothing. {outside[0].name}: {outside[0].domain_warning}"
    )
if spec.card.clinical:
    st.caption(f"**{RESEARCH_NOTICE}**")
if worklist.notes:
    st.warning(" ".join(worklist.notes))

if reading:  # filtering by verdict or confidence would give the verdicts away
    unread = st.toggle("Not yet read", key=keys.WORKLIST_UNREAD)
    shown = blind_order([scan for scan in worklist.scans if not (unread and scan.image and scan.image.digest in reads)])
else:
    with st.container(border=True):
        a, b, c, d = st.columns([2, 1, 1, 1])
        classes = set(a.multiselect("Verdict", list(names), key=keys.WORKLIST_CLASSES, format_func=spec.class_title))
        disagrees = b.toggle("Disagrees with its label", key=keys.WORKLIST_DISAGREES)
        low = c.toggle(f"Confidence under {LOW_CONFIDENCE:.0%}", key=keys.WORKLIST_LOW)
        unexplained = d.toggle("Not yet explained", key=keys.WORKLIST_UNEXPLAINED)
    shown = [scan for scan in worklist.scans if matches(scan, classes, names, disagrees, low, unexplained)]


@st.cache_data(show_spinner=False, max_entries=1024)
def thumbnail(digest: str, _pixels: np.ndarray) -> str:
    return image_uri(_pixels)[0]


frames = worklist.multi_frame
remote = any(scan.image is not None and scan.image.origin.remote is not None for scan in worklist.scans)


def row_of(scan: Scan) -> dict:
    """One worklist row; what the model says only where it could read the scan."""
    row = {
        "#": scan.row,
        "thumbnail": thumbnail(scan.image.digest, scan.image.thumbnail) if scan.image else None,
        "scan": scan.name,
        **({"frame": scan.frame + 1 if scan.frame is not None else None} if frames else {}),
        **({"series": series_of(scan)} if remote else {}),
        "verdict": scan.error,
        "confidence": scan.confidence,
        "in domain": "",
        "label": spec.class_title(scan.label) if scan.label else "",
        "agrees": "",
        "explained": f"{scan.explained} of {scan.wanted}" if scan.wanted else "",
    }
    verdict = scan.verdict
    if verdict is not None:
        title = spec.class_title(verdict)
        row["verdict"] = f"({title}: not its domain)" if scan.domain_warning else title
        row["in domain"] = "⚠ no" if scan.domain_warning else "✓"
        row["agrees"] = "" if scan.label is None else ("✓" if names[verdict] == scan.label else "✗")
    return row


rows = [row_of(scan) for scan in shown]
if reading:
    rows = [
        masked_row(scan, reads.get(scan.image.digest) if scan.image else None, row, spec.class_title)
        for scan, row in zip(shown, rows, strict=True)
    ]
picked = st.dataframe(
    rows,
    hide_index=True,
    on_select="rerun",
    selection_mode="single-row",
    key=keys.WORKLIST_TABLE,
    column_config={
        "thumbnail": st.column_config.ImageColumn(" ", width="small"),
        "confidence": st.column_config.ProgressColumn("confidence", min_value=0.0, max_value=1.0, format="percent"),
    },
)
st.caption(
    f"Sort by clicking a column's header; select a row to open the scan. {len(shown)} of {len(worklist.scans)} shown."
)

openable = [scan for scan in shown if scan.image is not None]
selected = picked.selection.rows if picked is not None else []
picked_scan = shown[selected[0]] if selected and selected[0] < len(shown) else None
if (
    picked_scan is not None
    and picked_scan.image is not None
    and (not reading or picked_scan.probs is None or read_first(picked_scan, spec, store, reads))
):
    left, middle, right = st.columns(3)
    left.button(
        f"Open {picked_scan.name} in Compare",
        type="primary",
        on_click=open_scan,
        args=(worklist, picked_scan.index, "app_pages/compare.py"),
    )
    middle.button("Open in Explain", on_click=open_scan, args=(worklist, picked_scan.index, "app_pages/explain.py"))
    with right:
        top_k = int(st.session_state.get(keys.COMPARE_TOP_K, min(3, spec.num_classes)))
        write_back(picked_scan, requests[picked_scan.index], cache, classifier, top_k)

if reading:
    agreement_section(store, spec.name, spec.title, worklist)

# Each explanation once, even where two rows hold the same picture (the same pixels are the same request).
unique = {request.key: (scan, request) for scan in openable for request in requests[scan.index]}
missing = [(scan, request) for key, (scan, request) in unique.items() if key not in cache]
active = [job for job in st.session_state.get(keys.WORKLIST_JOBS, []) if not job.done]
if missing and not active:
    if st.button(f"Explain all shown ({len(missing)} explanations missing)", key="worklist_explain_all"):
        wanted: dict[int, list] = {}
        for scan, request in missing:
            wanted.setdefault(scan.index, []).append(request)
        jobs = []
        for index, scan_requests in wanted.items():
            try:
                image = worklist.scans[index].image.load()  # decoded again, one scan at a time
            except ImageError as error:
                st.error(f"{worklist.scans[index].name}: {error}")
                continue
            jobs += [submit(request, image, score=True, batch=True) for request in scan_requests]
        st.session_state[keys.WORKLIST_JOBS] = jobs
        st.rerun()
if active:
    release_others("worklist", active)
    watch_all(st.session_state[keys.WORKLIST_JOBS], "Explaining the worklist")
