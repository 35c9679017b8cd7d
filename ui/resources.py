"""Heavy objects loaded once per server process and shared by every session (keyed by plain names)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from explainers.images import InputImage, load_image
from explainers.masks import head_mask
from explainers.superpixels import slic_segments
from models import Classifier, get_sample, load_classifier
from models.registry import WeightsKind


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def get_classifier(name: str, weights: WeightsKind = "pretrained") -> Classifier:
    return load_classifier(name, weights=weights)


@st.cache_resource(show_spinner=False, max_entries=64)
def get_sample_image(name: str) -> InputImage:
    """A bundled sample, decoded once per server (an InputImage is read-only data, safe to share)."""
    return load_image(get_sample(name).path, sample=True)


@st.cache_data(show_spinner=False, max_entries=64)
def superpixels_of(image_digest: str, _image: np.ndarray, count: int) -> np.ndarray:
    """SLIC superpixels of a prepared image, keyed by its digest (the array itself is not hashed)."""
    return slic_segments(_image, count)


@st.cache_data(show_spinner=False, max_entries=64)
def head_mask_of(image_digest: str, _image: np.ndarray) -> np.ndarray | None:
    """The head of a prepared MRI slice (explainers.masks.head_mask), keyed by the image's digest."""
    return head_mask(_image)
