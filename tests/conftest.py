"""Shared fixtures: real models loaded once per test session, real sample images."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from explainers.images import load_image
from models import Classifier, load_classifier

ROOT = Path(__file__).resolve().parents[1]

# Tests never touch the user's explanation cache: one fresh folder per test session, inherited by the
# command-line processes and the AppTest scripts that the tests start.
os.environ["EXPLAINERS_CACHE_DIR"] = tempfile.mkdtemp(prefix="explainers-test-cache-")
# Nor the user's study answers.
os.environ["EXPLAINERS_STUDY_DIR"] = tempfile.mkdtemp(prefix="explainers-test-studies-")
# Models keep the registry's runtime and batch size: measuring them at every load would slow the tests.
os.environ["MODELS_TUNE"] = "0"
SAMPLES = ROOT / "assets" / "samples"


@pytest.fixture(scope="session")
def efficientnet() -> Classifier:
    return load_classifier("efficientnet_lite0")


@pytest.fixture(scope="session")
def tumour_model() -> Classifier:
    return load_classifier("brain_tumor_vgg16")


@pytest.fixture(scope="session")
def digits_model() -> Classifier:
    return load_classifier("digits_cnn")


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    return load_image(SAMPLES / "photos" / "chelsea.png").pixels


@pytest.fixture(scope="session")
def digit_seven() -> np.ndarray:
    return load_image(SAMPLES / "digits" / "digit_7.png").pixels
