"""The model and image chosen in app.py's sidebar, read by every page through one helper.

Pages never read the sidebar's widget keys directly: when a page runs on its own (Streamlit's AppTest
``switch_page``), app.py has not run, so the helper supplies the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from explainers.images import ImageError, Sample, list_samples, load_image
from models import Classifier, ModelSpec, ModelUnavailableError, all_specs, get_spec
from ui.resources import get_classifier, get_sample_image

MODEL_KEY = "model_name"
SOURCE_KEY = "image_source"
UPLOAD_KEY = "upload"
DEFAULT_MODEL = "efficientnet_lite0"
DEFAULT_SAMPLES = {"imagenet": "photos/chelsea", "mri": "mri/Te-gl_0010", "digits": "digits/digit_7"}


@dataclass(frozen=True)
class Selection:
    spec: ModelSpec
    image: np.ndarray | None  # H×W×3 uint8, None when the upload could not be read
    image_label: str  # what to call the image on screen
    true_label: str | None  # from a sample's file name, when known
    error: str | None  # one sentence for an unreadable upload


def available_models() -> list[ModelSpec]:
    return [spec for spec in all_specs() if spec.available]


def samples_for(spec: ModelSpec) -> list[Sample]:
    """Samples of the model's own domain first, then the rest."""
    samples = list_samples()
    return [s for s in samples if s.domain == spec.domain] + [s for s in samples if s.domain != spec.domain]


def sample_key(spec: ModelSpec) -> str:
    """The sidebar's sample picker is one widget per model domain, each remembering its choice."""
    return f"sample_{spec.domain}"


def default_sample(spec: ModelSpec) -> str:
    return DEFAULT_SAMPLES.get(spec.domain, samples_for(spec)[0].name)


def _upload_image() -> tuple[np.ndarray | None, str, str | None]:
    upload = st.session_state.get(UPLOAD_KEY)
    if upload is None:
        return None, "no upload", "Upload an image in the sidebar, or choose a sample."
    cache = st.session_state.setdefault("_decoded_uploads", {})
    if upload.file_id not in cache:
        try:
            cache.clear()  # keep one decoded upload per session
            cache[upload.file_id] = (load_image(upload.getvalue(), name=upload.name), None)
        except ImageError as error:
            cache[upload.file_id] = (None, str(error))
    image, error = cache[upload.file_id]
    return image, upload.name, error


def current_selection() -> Selection:
    """The selected model and image, with defaults when the sidebar has not run."""
    name = st.session_state.get(MODEL_KEY, DEFAULT_MODEL)
    spec = get_spec(name)
    if st.session_state.get(SOURCE_KEY) == "Upload":
        image, label, error = _upload_image()
        return Selection(spec, image, label, None, error)
    sample_name = st.session_state.get(sample_key(spec)) or default_sample(spec)
    sample = next((s for s in list_samples() if s.name == sample_name), None)
    if sample is None:
        sample_name = default_sample(spec)
        sample = next(s for s in list_samples() if s.name == sample_name)
    return Selection(spec, get_sample_image(sample.name), sample.title, sample.label, None)


def ensure_navigation() -> None:
    """Routes a page through app.py (its sidebar and navigation) even on a fresh server.

    Until some session has run app.py's ``st.navigation``, Streamlit treats a ``pages/`` folder as a legacy
    multipage app: a first visit to a page's URL runs that page alone, without app.py. Turning that legacy
    mode off and rerunning sends the visit through app.py, which then opens the same page.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def page_start(title: str) -> tuple[Selection, Classifier]:
    """A page's header, the selection, and the loaded model; one sentence and a stop when either is missing."""
    ensure_navigation()
    selection = current_selection()
    st.header(f"{title} · {selection.spec.title}")
    if selection.image is None:
        st.info(selection.error or "Choose an image in the sidebar.")
        st.stop()
    try:
        classifier = get_classifier(selection.spec.name)
    except ModelUnavailableError as error:
        st.error(str(error))
        st.stop()
    return selection, classifier
