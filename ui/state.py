"""The model and image chosen in app.py's sidebar, read by every page through one helper.

Pages never read the sidebar's widget keys directly: the helper supplies the defaults when the sidebar has
not run yet in this session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, overload

import streamlit as st

from explainers.dicom import DicomScan, read_scan
from explainers.images import ImageError, InputImage, is_dicom_source, load_image
from explainers.request import ExplanationRequest
from explainers.sandbox import SandboxError
from models import Classifier, ModelSpec, ModelUnavailableError, all_specs, default_sample, get_spec, list_samples
from ui import keys
from ui.resources import get_classifier, get_sample_image

DEFAULT_MODEL = "efficientnet_lite0"


@dataclass(frozen=True)
class Selection:
    spec: ModelSpec
    image: InputImage | None  # None when the upload could not be read
    image_label: str  # what to call the image on screen (never an upload's file name)
    true_label: str | None  # from a sample's file name, when known
    error: str | None  # one sentence for an unreadable upload
    scan: DicomScan | None = None  # a DICOM upload: its frames and windows (shown by the sidebar)


def available_models() -> list[ModelSpec]:
    return [spec for spec in all_specs() if spec.available]


def uploaded_scan() -> DicomScan | None:
    """The DICOM upload's header, read once per upload (None for a picture or no upload)."""
    upload = st.session_state.get(keys.UPLOAD)
    if upload is None:
        return None
    _upload_image()
    return st.session_state[keys.DECODED_UPLOADS].get("scan")


def _upload_image() -> tuple[InputImage | None, str | None]:
    upload = st.session_state.get(keys.UPLOAD)
    if upload is None:
        return None, "Upload an image in the sidebar, or choose a sample."
    decoded = st.session_state.setdefault(keys.DECODED_UPLOADS, {})
    if decoded.get("file_id") != upload.file_id:
        decoded.clear()  # keep one upload per session
        decoded["file_id"] = upload.file_id
        data = upload.getvalue()
        try:
            if is_dicom_source(data, upload.name):
                decoded["scan"] = read_scan(data, name=upload.name)
            else:
                decoded["image"] = load_image(data, name=upload.name)
        except ImageError as error:
            decoded["error"] = str(error)
    if "error" in decoded:
        return None, decoded["error"]
    scan = decoded.get("scan")
    if scan is None:
        return decoded["image"], None
    # A scan's frame and window (the sidebar's slider and picker); the last few pictures are kept.
    windows = {window.name: window for window in scan.windows()}
    frame = min(max(int(st.session_state.get(keys.SLICE, 1)), 1), scan.frames) - 1
    window = windows.get(st.session_state.get(keys.WINDOW), next(iter(windows.values())))
    shown = decoded.setdefault("frames", {})
    if (frame, window.name) not in shown:
        try:
            image = scan.image(frame, window)
        except SandboxError as error:  # the decoder died on it: the scan is dropped, its header shown no more
            decoded.pop("scan", None)
            decoded["error"] = str(error)
            return None, str(error)
        except ImageError as error:  # kept too: a frame that cannot be shown is not decoded again on every run
            image = str(error)
        if len(shown) >= 8:
            shown.pop(next(iter(shown)))
        shown[frame, window.name] = image
    found = shown[frame, window.name]
    return (None, found) if isinstance(found, str) else (found, None)


def opened_scan() -> tuple[Any, int] | None:
    """(worklist, index) of the scan opened from the Scans page, if any."""
    worklist = st.session_state.get(keys.WORKLIST)
    index = st.session_state.get(keys.WORKLIST_INDEX)
    if worklist is None or index is None or not 0 <= index < len(worklist.scans):
        return None
    return worklist, index


def step_scan(step: int) -> None:
    """A callback: the previous (-1) or next (+1) readable scan of the worklist."""
    opened = opened_scan()
    if opened is None:
        return
    worklist, index = opened
    readable = [scan.index for scan in worklist.scans if scan.image is not None]
    if index in readable:
        st.session_state[keys.WORKLIST_INDEX] = readable[(readable.index(index) + step) % len(readable)]


def open_scan(worklist: Any, index: int, page: str) -> None:
    """A callback: shows worklist scan ``index`` on every page (the sidebar's "Scans" source), then ``page``."""
    st.session_state[keys.SOURCE] = "Scans"
    st.session_state[keys.WORKLIST_INDEX] = index
    st.session_state[keys.PENDING_PAGE] = page


def keep_settings() -> None:
    """Carries every setting in keys.KEPT (and the methods' budgets and parameters) over to this run, so a page
    that does not show a widget does not make Streamlit forget its value: Compare's settings survive a visit to
    Explain, and the other way round. (Re-assigning a widget's key to itself keeps it.)"""
    from explainers.methods import all_methods

    kept = set(keys.KEPT) | {
        keys.param(method.name, param.name, "main")
        for method in all_methods()
        for param in method.params
        if param.placement == "main"
    }
    for key in list(st.session_state.keys()):
        if isinstance(key, str) and (key in kept or key.startswith(keys.KEPT_PREFIXES)):
            st.session_state[key] = st.session_state[key]


def compare_requests(classifier: Classifier, image: InputImage | str) -> list[ExplanationRequest]:
    """The requests the Compare page makes for ``image`` (or its digest) with its current methods and settings
    (those a method cannot make for this model are left out)."""
    from explainers.methods import get_method
    from service.compare import compare_requests as requests_for
    from ui.controls import COMPARE_DEFAULT_METHODS, chosen_output, compare_settings, recommended_first

    spec = classifier.spec
    chosen = st.session_state.get(keys.COMPARE_METHODS, recommended_first(spec.name, COMPARE_DEFAULT_METHODS))
    settings = {name: compare_settings(get_method(name)) for name in chosen}
    plan = requests_for(
        classifier,
        image,
        settings,
        top_k=int(st.session_state.get(keys.COMPARE_TOP_K, min(3, spec.num_classes))),
        seed=int(st.session_state.get(keys.SEED, 0)),
        output=chosen_output(spec),
    )
    return list(plan.requests.values())


def current_selection() -> Selection:
    """The selected model and image, with defaults when the sidebar has not run."""
    spec = get_spec(st.session_state.get(keys.MODEL, DEFAULT_MODEL))
    if st.session_state.get(keys.SOURCE) == "Scans":
        opened = opened_scan()
        if opened is None:
            return Selection(spec, None, "no scan", None, "Open a scan from the Scans page's worklist.")
        worklist, index = opened
        scan = worklist.scans[index]
        try:  # a worklist keeps thumbnails only: the opened scan is decoded again (and kept until the next)
            image = worklist.load(index)
        except ImageError as error:
            return Selection(spec, None, scan.name, scan.label, str(error))
        return Selection(spec, image, image.display_name, scan.label, None)
    if st.session_state.get(keys.SOURCE) == "Upload":
        upload, problem = _upload_image()
        return Selection(
            spec,
            upload,
            upload.display_name if upload else "no upload",
            None,
            problem,
            st.session_state.get(keys.DECODED_UPLOADS, {}).get("scan"),
        )
    samples = {sample.name: sample for sample in list_samples()}
    sample = samples.get(st.session_state.get(keys.sample(spec.policy.name)) or "") or default_sample(spec)
    return Selection(spec, get_sample_image(sample.name), sample.title, sample.label, None)


def fresh_slot(name: str, selection: Selection) -> Any:
    """A placeholder whose previous content goes at once when the model or image changed since this session last
    drew it. (Streamlit keeps a rerun's not-yet-redrawn elements on screen, faded, until the run ends: beside a new
    scan, that would be the previous scan's verdict and maps. A block replaced by a plain element loses its
    children at once.) On a slider change, the image's own results stay until their successors arrive."""
    slot = st.empty()
    drawn_key, shown = f"{keys.DRAWN_PREFIX}{name}", (selection.spec.name, getattr(selection.image, "digest", None))
    if st.session_state.get(drawn_key) != shown:
        slot.caption(f"{selection.image_label}: working…")
        st.session_state[drawn_key] = shown
    return slot


def results_slot(name: str, selection: Selection) -> Any:
    """A container for everything drawn from an image's explanation, empty at once when the model or image
    changed since this session last drew it, while a slider change keeps the image's own results until their
    successors arrive.

    Two placeholders at fixed places take turns: a new image draws into the other one, and the one that held the
    previous image's maps receives a plain empty element, which drops them at once. (One placeholder cannot do
    it: Streamlit's browser side lets a new block inherit the old block's children at the same place, and the
    server merges a caption followed by a block at one place into the block alone, so the previous maps stayed,
    faded, beside the new scan until its explanation was drawn.)"""
    slots = st.empty(), st.empty()
    drawn_key, parity_key = f"{keys.DRAWN_PREFIX}{name}", f"{keys.DRAWN_PREFIX}{name}_parity"
    shown = (selection.spec.name, getattr(selection.image, "digest", None))
    parity = st.session_state.get(parity_key, 0)
    if st.session_state.get(drawn_key) != shown:
        parity = 1 - parity
        st.session_state[drawn_key], st.session_state[parity_key] = shown, parity
    slots[1 - parity].empty()
    return slots[parity].container()


@dataclass(frozen=True)
class Layout:
    """A page's three areas, made in this order under the header before the model loads, so that a new model or
    image empties the previous verdict and maps at once (see :func:`fresh_slot`, :func:`results_slot`)."""

    verdict: Any  # a placeholder: the verdict and the image as the model sees it
    controls: Any  # a container: the method's settings
    results: Any  # a container: everything drawn from the explanation


@overload
def page_start(title: str, layout: Literal[False] = False) -> tuple[Selection, Classifier]: ...


@overload
def page_start(title: str, layout: Literal[True]) -> tuple[Selection, Classifier, Layout]: ...


def page_start(title: str, layout: bool = False) -> tuple[Selection, Classifier] | tuple[Selection, Classifier, Layout]:
    """A page's header, the selection, and the loaded model; one sentence and a stop when either is missing.
    With ``layout``, also the page's :class:`Layout`, made before the model loads."""
    selection = current_selection()
    st.header(f"{title} · {selection.spec.title}")
    if selection.image is None:
        st.info(selection.error or "Choose an image in the sidebar.")
        st.stop()
    areas: Layout | None = None
    if layout:
        areas = Layout(
            fresh_slot(f"{title}_verdict", selection), st.container(), results_slot(f"{title}_results", selection)
        )
    try:
        classifier = get_classifier(selection.spec.name)
    except ModelUnavailableError as error:
        st.error(str(error))
        st.stop()
    return (selection, classifier) if areas is None else (selection, classifier, areas)
