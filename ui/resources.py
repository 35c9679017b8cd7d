"""Heavy objects loaded once per server process and shared by every session (keyed by plain names)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from explainers.images import get_sample, load_image
from explainers.superpixels import slic_segments
from models import Classifier, load_classifier


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def get_classifier(name: str, weights: str = "pretrained") -> Classifier:
    return load_classifier(name, weights=weights)  # type: ignore[arg-type]


@st.cache_data(show_spinner=False, max_entries=64)
def get_sample_image(name: str) -> np.ndarray:
    return load_image(get_sample(name).path)


@st.cache_data(show_spinner=False, max_entries=64)
def superpixels_of(image_digest: str, _image: np.ndarray, count: int) -> np.ndarray:
    """SLIC superpixels of a prepared image, keyed by its digest (the array itself is not hashed)."""
    return slic_segments(_image, count)
