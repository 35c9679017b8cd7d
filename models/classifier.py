"""A loaded model behind one contract: RGB images in [0, 255] in, class probabilities out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from models.catalog import get_spec
from models.device import GPU_BATCH, GPU_MAX_BATCH, cpu_bfloat16, half_precision, select_device
from models.folding import fold_batchnorm
from models.registry import ModelSpec, WeightsKind
from models.runtime import (
    OnnxPredictor,
    RuntimeChoice,
    RuntimeKind,
    measure_choice,
    onnx_predictor,
    remembered_choice,
    tuning_enabled,
)
from models.transforms import ProbabilityModel
from models.weights_files import file_digest

# One forward pass takes at most this many images, whatever the caller asks: a CPU is no faster per image
# beyond a few dozen, and 1000 EfficientNet images at once held 17 GB in ONNX Runtime.
MAX_BATCH = 64
# A centre crop scales the shorter side up to the model's size, so a 20000×1 strip would become gigabytes;
# explainers.images refuses such files first with the same limit (models does not import explainers).
MAX_ASPECT = 50


class _Logits(nn.Module):
    """transform → a network's ``logits`` (its forward without the final softmax)."""

    def __init__(self, transform: nn.Module, network: nn.Module):
        super().__init__()
        self.transform = transform
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        network: Any = self.network  # a network with a ``logits`` method (checked by Classifier.logit_module)
        return network.logits(self.transform(x))


def resize_for(spec: ModelSpec, image: np.ndarray) -> np.ndarray:
    """The image as the model sees it: H×W×3 uint8 at the model's input size.

    Raises ValueError for an image without pixels or with an aspect ratio beyond 1:MAX_ASPECT.
    """
    height, width = spec.input_size
    rows, columns = image.shape[:2]
    if rows == 0 or columns == 0:
        raise ValueError(f"The image is {columns}×{rows} pixels and has no pixels to classify.")
    if max(rows, columns) > MAX_ASPECT * min(rows, columns):
        raise ValueError(f"The image is {columns}×{rows} pixels, an aspect ratio beyond the limit of 1:{MAX_ASPECT}.")
    pil = Image.fromarray(image)
    if spec.resize == "center_crop":
        # torchvision's recipe: shorter side to resize_size, then a centred crop of the input size.
        shorter = spec.resize_shorter_side or min(height, width)
        scale = shorter / min(pil.size)
        pil = pil.resize(
            (max(width, round(pil.width * scale)), max(height, round(pil.height * scale))), Image.Resampling.BILINEAR
        )
        left, top = (pil.width - width) // 2, (pil.height - height) // 2
        pil = pil.crop((left, top, left + width, top + height))
    else:
        pil = pil.resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(pil, dtype=np.uint8)


class Classifier:
    """A ready-to-call model: ``predict`` maps N×H×W×3 images in [0, 255] to N×classes probabilities.

    It fulfils explainers' ``Classifier`` protocol (explainers never import this package).

    ``module`` is always the PyTorch model (gradient methods need it); ``predict`` may run the same network
    in ONNX Runtime instead when that is faster here (see models.runtime).
    """

    def __init__(self, spec: ModelSpec, module: nn.Module, weights: WeightsKind, device: torch.device | None = None):
        self.spec = spec
        self.device = device or torch.device("cpu")
        self.half = half_precision(self.device)
        # $MODELS_PRECISION=bfloat16 on a CPU with native bfloat16: PyTorch's predict under autocast (the weights
        # stay float32; convolutions and matrix products run in bfloat16, softmax in float32).
        self.bfloat16 = cpu_bfloat16(self.device)
        # channels_last: 1.3–1.7× faster convolutions on CPU (and on tensor cores); inputs arrive NHWC, already
        # that layout. ``module`` stays on the CPU in float32 (gradient methods, exports); ``_forward`` is the one
        # that predicts, on the device.
        self.module = module.eval().to(memory_format=torch.channels_last)
        self._forward = self.module
        if self.device.type != "cpu":
            import copy

            self._forward = copy.deepcopy(self.module).to(self.device).to(memory_format=torch.channels_last)
            if self.half:
                self._forward = self._forward.half()
        self.weights = weights
        self.batch_size = spec.batch_size if self.device.type == "cpu" else GPU_BATCH
        self.runtime: RuntimeKind = "torch"
        self.onnx: OnnxPredictor | None = None
        self.tuning: RuntimeChoice | None = None  # what was measured, when it was
        self._gradient_module: nn.Module | None = None
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)

    @property
    def gradient_module(self) -> nn.Module | None:
        """``module`` for gradient methods: the same network with batch-norm folded into the convolutions
        (see models.folding), or ``module`` itself where nothing folds; None for a model without gradients (one
        that runs in ONNX Runtime)."""
        if not self.spec.differentiable:
            return None
        if self._gradient_module is None:
            generator = torch.Generator().manual_seed(0)
            example = torch.rand(2, 3, *self.spec.input_size, generator=generator) * 255
            self._gradient_module = fold_batchnorm(self.module, example.contiguous(memory_format=torch.channels_last))
        return self._gradient_module

    @property
    def logit_module(self) -> nn.Module | None:
        """:attr:`gradient_module` without its softmax (logits out, the same weights), for log-odds; None when
        the network ends in its own softmax."""
        folded = self.gradient_module
        if folded is None or not isinstance(folded, ProbabilityModel):
            return None
        if isinstance(folded.softmax, nn.Softmax):
            return nn.Sequential(folded.transform, folded.network).eval()
        if callable(getattr(folded.network, "logits", None)):  # a network that ends in its own softmax
            return _Logits(folded.transform, folded.network).eval()
        return None

    @property
    def default_output(self) -> str:
        return self.spec.policy.output

    def use_runtime(self, runtime: RuntimeKind, batch_size: int | None = None) -> None:
        """Runs ``predict`` in PyTorch or in ONNX Runtime (which needs ``onnx``), optionally at another batch."""
        if runtime == "onnxruntime" and self.onnx is None:
            raise ValueError(f"{self.name} has no ONNX Runtime session")
        self.runtime = runtime
        if batch_size is not None:
            self.batch_size = batch_size

    @property
    def name(self) -> str:
        return self.spec.name

    # -- the domain policy's defaults that explainers' "auto" settings read (see explainers.classifier) --------

    @property
    def default_fill(self) -> str:
        return self.spec.policy.fill

    @property
    def default_background(self) -> str:
        return self.spec.policy.background

    @property
    def sample_folder(self) -> Path:
        from models.samples import sample_folder

        return sample_folder(self.spec)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.spec.class_names

    def prepare(self, image: np.ndarray) -> np.ndarray:
        return resize_for(self.spec, image)

    def predict(self, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Probabilities for a batch of prepared images (N×H×W×3, uint8 or float in [0, 255]), ``batch_size``
        (at most MAX_BATCH) at a time."""
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        step = min(batch_size or self.batch_size, MAX_BATCH if self.device.type == "cpu" else GPU_MAX_BATCH)
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(images), step):
                batch = np.ascontiguousarray(images[start : start + step], dtype=np.float32)
                if self.onnx is not None and self.runtime == "onnxruntime":
                    outputs.append(self.onnx(batch))
                else:
                    outputs.append(self.predict_tensor(torch.from_numpy(batch).to(self.device, non_blocking=True)))
        if not outputs:
            return np.zeros((0, self.spec.num_classes), dtype=np.float32)
        return np.concatenate(outputs)

    def predict_tensor(self, images: torch.Tensor) -> np.ndarray:
        """Probabilities for N×H×W×3 float images in [0, 255] already on :attr:`device` (the superpixel games
        build their masked images there, so nothing is copied but the probabilities)."""
        with torch.inference_mode():
            batch = images.permute(0, 3, 1, 2)
            if self.bfloat16:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return self._forward(batch).float().numpy()
            return self._forward(batch.half() if self.half else batch).float().cpu().numpy()

    @property
    def weights_digest(self) -> str:
        """Identifies the weights as they compute (for cache keys): a digest of the weights file, or "random";
        "-bfloat16" after it where predict runs in bfloat16, so those values are never served as float32's."""
        if self.weights == "random":
            return "random"
        path = self.spec.weights_file()
        digest = file_digest(path) if path is not None else "unknown"
        return f"{digest}-bfloat16" if self.bfloat16 else digest


class ModelUnavailableError(RuntimeError):
    """The pretrained weights of a registered model are not on this machine."""


def load_classifier(name: str, weights: WeightsKind = "pretrained", tune: bool | None = None) -> Classifier:
    """Builds a registered model. Raises ModelUnavailableError (with the fix) when weights are missing.

    With ``tune`` (default: unless $MODELS_TUNE=0), pretrained models run ``predict`` at the runtime and
    batch size measured fastest on this machine, measured at the first load and remembered on disk.
    """
    spec = get_spec(name)
    if weights == "pretrained":
        reason = spec.missing_reason()
        if reason is not None:
            raise ModelUnavailableError(f"{spec.title} is unavailable: {reason}")
    torch.manual_seed(0)  # "random" weights are reproducible
    classifier = Classifier(spec, spec.build(weights), weights, select_device())
    if weights == "pretrained" and classifier.device.type == "cpu":  # ONNX Runtime runs here on the CPU only
        configure_runtime(classifier, tuning_enabled() if tune is None else tune)
    return classifier


def configure_runtime(classifier: Classifier, tune: bool) -> None:
    """Sets ``predict``'s runtime and batch size: measured (remembered per machine) or the registry's."""
    spec, digest = classifier.spec, classifier.weights_digest
    if not tune:
        if spec.runtime == "onnxruntime" and not classifier.bfloat16:  # bfloat16 was asked for: PyTorch's
            classifier.onnx = onnx_predictor(spec, classifier.module, digest)
            classifier.runtime = "onnxruntime" if classifier.onnx is not None else "torch"
        return
    choice = remembered_choice(spec, digest, classifier.bfloat16)
    if choice is None or choice.runtime == "onnxruntime":
        classifier.onnx = onnx_predictor(spec, classifier.module, digest)
    if choice is None or (choice.runtime == "onnxruntime" and classifier.onnx is None):
        choice = measure_choice(spec, classifier.module, digest, classifier.onnx, classifier.bfloat16)
    classifier.use_runtime(choice.runtime, choice.batch_size)
    classifier.tuning = choice
