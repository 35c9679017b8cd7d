"""The model and image chosen in app.py's sidebar, read by every page through one helper.

Pages never read the sidebar's widget keys directly: the helper supplies the defaults when the sidebar has
not run yet in this session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from explainers.images import ImageError, InputImage, load_image
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


def available_models() -> list[ModelSpec]:
    return [spec for spec in all_specs() if spec.available]


def _upload_image() -> tuple[InputImage | None, str | None]:
    upload = st.session_state.get(keys.UPLOAD)
    if upload is None:
        return None, "Upload an image in the sidebar, or choose a sample."
    decoded = st.session_state.setdefault(keys.DECODED_UPLOADS, {})
    if upload.file_id not in decoded:
        decoded.clear()  # keep one decoded upload per session
        try:
            decoded[upload.file_id] = (load_image(upload.getvalue(), name=upload.name), None)
        except ImageError as error:
            decoded[upload.file_id] = (None, str(error))
    return decoded[upload.file_id]


def current_selection() -> Selection:
    """The selected model and image, with defaults when the sidebar has not run."""
    spec = get_spec(st.session_state.get(keys.MODEL, DEFAULT_MODEL))
    if st.session_state.get(keys.SOURCE) == "Upload":
        image, error = _upload_image()
        return Selection(spec, image, image.display_name if image else "no upload", None, error)
    samples = {sample.name: sample for sample in list_samples()}
    sample = samples.get(st.session_state.get(keys.sample(spec.domain)) or "") or default_sample(spec)
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


def page_start(title: str, verdict_slot: bool = False) -> tuple[Selection, Classifier] | tuple[Selection, Classifier, Any]:
    """A page's header, the selection, and the loaded model; one sentence and a stop when either is missing.
    With ``verdict_slot``, also a :func:`fresh_slot` under the header, cleared before the model loads."""
    selection = current_selection()
    st.header(f"{title} · {selection.spec.title}")
    if selection.image is None:
        st.info(selection.error or "Choose an image in the sidebar.")
        st.stop()
    slot = fresh_slot(f"{title}_verdict", selection) if verdict_slot else None
    try:
        classifier = get_classifier(selection.spec.name)
    except ModelUnavailableError as error:
        st.error(str(error))
        st.stop()
    return (selection, classifier, slot) if verdict_slot else (selection, classifier)
