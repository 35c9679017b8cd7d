"""Shared fixtures: real models loaded once per test session, real sample images."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

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
# The job engine's embedded LocalCluster runs its workers as threads of the test process (a real Dask cluster
# that starts in a second); tests/test_jobs.py starts worker processes where the test is about them.
os.environ["EXPLAINERS_WORKER_PROCESSES"] = "0"


def _run_until_the_jobs_are_done(original):
    """In a browser, a page's job fragment reruns the page when the job ends; AppTest runs no fragment on a
    timer, so each run waits for the jobs it submitted and runs again, as the fragment would."""

    def run(self, widget_state=None, timeout=None):
        from jobs.engine import ENGINES

        started = time.time()
        result = original(self, widget_state, timeout)
        for _ in range(20):
            pending = [job for engine in list(ENGINES) for job in engine.pending()]
            # A job that ended while the run drew the page was still drawn as running: run again, as the
            # fragment would, so the page shows what a browser shows once it has caught up.
            ended = [
                job
                for engine in list(ENGINES)
                for job in list(engine._jobs.values())
                if job.finished is not None and job.finished >= started
            ]
            if not pending and not ended:
                break
            for job in pending:
                job.wait(300)
            started = time.time()
            result = original(self, self._tree.get_widget_states(), timeout)
        return result

    return run


AppTest._run = _run_until_the_jobs_are_done(AppTest._run)  # type: ignore[method-assign]  # patched on purpose
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


@pytest.fixture
def one_more_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Adds a torchvision classifier the way a maintainer would, one more card beside the built-in ones (a copy
    of ResNet-18's for another architecture), and loads the cards again: ``one_more_card(arch, title, weights)``
    returns the model's name. The registry goes back to the built-in models after the test."""
    from models import catalog, registry

    cards = tmp_path / "builtin"
    shutil.copytree(catalog.BUILTIN_CARDS, cards)
    monkeypatch.setattr(catalog, "BUILTIN_CARDS", cards)
    monkeypatch.setattr(registry, "_REGISTRY", {})
    monkeypatch.setattr(catalog, "_STATE", {"cards": "unread"})

    def add(arch: str, title: str, weights: str) -> str:
        resnet = (cards / "10_resnet18.yaml").read_text()
        (cards / f"15_{arch}.yaml").write_text(
            resnet.replace("resnet18", arch).replace("ResNet-18", title).replace("ResNet18_Weights", weights)
        )
        catalog.ensure_loaded()
        return arch

    return add
