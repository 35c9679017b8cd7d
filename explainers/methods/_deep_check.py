"""Which networks DeepSHAP can explain: an allow-list of the operations its rules cover, checked by running the
rewritten network once on an example and watching every torch call that touches the input.

Looking at the modules alone is not enough: a forward may call ``F.relu`` or ``torch.max`` itself (DenseNet,
GoogLeNet), and such a call is invisible to the rewrite, which would pass gradients through it and give values
that do not add up. So every call on a tensor that depends on the input must be linear (or a product with a
constant), a shape or size query, or happen inside a node the rewrite made (those run with gradients off,
inside their autograd functions). The surprising part: "depends on the input" is read from ``requires_grad``,
so the example requires gradients and the copy's parameters do not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

ALTERNATIVES = "use gradient, kernel or partition"

# Linear in every tensor argument (affine at most), or a rearrangement: DeepLIFT's linear rule is exact.
LINEAR = frozenset(
    {
        "add",
        "add_",
        "__add__",
        "__radd__",
        "__iadd__",
        "sub",
        "sub_",
        "__sub__",
        "__rsub__",
        "__isub__",
        "rsub",
        "neg",
        "neg_",
        "__neg__",
        "negative",
        "__pos__",
        "positive",
        "sum",
        "mean",
        "cat",
        "concat",
        "concatenate",
        "stack",
        "hstack",
        "vstack",
        "view",
        "view_as",
        "reshape",
        "reshape_as",
        "flatten",
        "unflatten",
        "permute",
        "transpose",
        "swapaxes",
        "swapdims",
        "movedim",
        "t",
        "contiguous",
        "chunk",
        "split",
        "tensor_split",
        "unbind",
        "squeeze",
        "squeeze_",
        "unsqueeze",
        "unsqueeze_",
        "expand",
        "expand_as",
        "narrow",
        "select",
        "__getitem__",
        "__setitem__",
        "index_select",
        "clone",
        "flip",
        "roll",
        "repeat",
        "tile",
        "pad",
        "to",
        "float",
        "type_as",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "linear",
        "batch_norm",
        "dropout",
        "dropout1d",
        "dropout2d",
        "dropout3d",
        "alpha_dropout",
        "feature_alpha_dropout",
        "adaptive_avg_pool1d",
        "adaptive_avg_pool2d",
        "adaptive_avg_pool3d",
        "avg_pool1d",
        "avg_pool2d",
        "avg_pool3d",
        "interpolate",
        "pixel_shuffle",
        "pixel_unshuffle",
        "channel_shuffle",
        "native_channel_shuffle",
        "unfold",
        "fold",
    }
)
# Bilinear: linear while at most one factor depends on the input (a product of two is not).
PRODUCTS = frozenset(
    {
        "mul",
        "mul_",
        "__mul__",
        "__rmul__",
        "__imul__",
        "multiply",
        "matmul",
        "__matmul__",
        "__rmatmul__",
        "mm",
        "bmm",
        "einsum",
    }
)
# Linear in the numerator only.
QUOTIENTS = frozenset({"div", "div_", "__truediv__", "__itruediv__", "true_divide", "divide"})
# New tensors shaped like the input but holding none of its values.
VALUE_FREE = frozenset(
    {"zeros_like", "ones_like", "empty_like", "full_like", "new_zeros", "new_ones", "new_empty", "new_full"}
)
# Calls that return plain Python values read from the input (everything else without a tensor is a shape query).
VALUE_READS = frozenset(
    {"item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__", "__complex__", "__array__"}
)


class Rewritten(nn.Module):
    """A node the DeepLIFT rewrite made; refusals name it as the original (its name and type)."""

    def __init__(self, original: nn.Module):
        super().__init__()
        self.replaces = type(original).__name__


class DroppedSoftmax(Rewritten):
    """A softmax the rewrite removed, so the network ends in logits; only allowed as the last layer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class _Refused(Exception):
    """Stops the example forward at the first call with no DeepLIFT rule."""


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


def _names(model: nn.Module) -> dict[int, str]:
    """Every module's name as in the original network (a wrapper's child takes the wrapper's name)."""
    names: dict[int, str] = {}

    def walk(module: nn.Module, name: str) -> None:
        names.setdefault(id(module), name)
        for child_name, child in module.named_children():
            walk(child, name if isinstance(module, Rewritten) else f"{name}.{child_name}".lstrip("."))

    walk(model, "")
    return names


def _described(layer: nn.Module, name: str) -> str:
    kind = layer.replaces if isinstance(layer, Rewritten) else type(layer).__name__
    return f"its layer {name} ({kind})" if name else "its forward"


class _Watch(TorchFunctionMode):
    """Judges every torch call made with gradients on (the rewrite's own nodes run theirs with them off)."""

    def __init__(self, names: dict[int, str]):
        super().__init__()
        self.names = names
        self.stack: list[nn.Module] = []
        self.softmax_outputs: dict[int, tuple[torch.Tensor, nn.Module]] = {}  # kept alive, so ids stay unique

    def where(self) -> str:
        layer = self.stack[-1] if self.stack else None
        return "its forward" if layer is None else _described(layer, self.names.get(id(layer), ""))

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if torch.is_grad_enabled():
            self.judge(getattr(func, "__name__", str(func)), args, kwargs, result)
        return result

    def judge(self, name: str, args: tuple, kwargs: dict, result: Any) -> None:
        inputs = [t for t in _tensors((args, kwargs)) if t.requires_grad]
        produced = list(_tensors(result))
        if not inputs or (not produced and name not in VALUE_READS):  # a constant, or a shape or size query
            return
        for tensor in inputs:
            if id(tensor) in self.softmax_outputs:
                layer = self.softmax_outputs[id(tensor)][1]
                raise _Refused(
                    f"{_described(layer, self.names.get(id(layer), ''))} is not its last layer, and "
                    f"DeepSHAP removes softmax layers to explain the logits; {ALTERNATIVES}"
                )
        if (
            name in LINEAR
            or (name in PRODUCTS and len(inputs) == 1)
            or (name in QUOTIENTS and len(inputs) == 1 and args and inputs[0] is args[0])
            or (name in VALUE_FREE and not any(t.requires_grad for t in produced))
        ):
            return
        what = name
        if name in PRODUCTS | QUOTIENTS:
            what += " on two input-dependent tensors" if len(inputs) > 1 else " by an input-dependent tensor"
        if self.stack and type(self.stack[-1]).__module__.startswith("torch.nn."):
            raise _Refused(f"{self.where()} has no DeepLIFT rule here; {ALTERNATIVES}")
        raise _Refused(f"{self.where()} calls {what}, which has no DeepLIFT rule here; {ALTERNATIVES}")


def first_unsupported_call(model: nn.Module, example: torch.Tensor) -> str | None:
    """Why DeepLIFT's rules do not cover ``model`` (a throwaway copy already rewritten for DeepLIFT, which is
    changed here), found by one forward pass of ``example``; None when every operation is covered."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    watch = _Watch(_names(model))

    def enter(module: nn.Module, inputs: Any) -> None:
        watch.stack.append(module)

    def leave(module: nn.Module, inputs: Any, output: Any) -> None:
        watch.stack.pop()
        if isinstance(module, DroppedSoftmax):
            for tensor in _tensors(output):
                watch.softmax_outputs[id(tensor)] = (tensor, module)

    for module in model.modules():
        module.register_forward_pre_hook(enter)
        module.register_forward_hook(leave)
    example = example.detach().clone().requires_grad_(True)
    try:
        with torch.enable_grad(), watch:
            output = model(example)
    except _Refused as refusal:
        return str(refusal)
    except Exception as error:  # noqa: BLE001 - a forward that fails once rewritten is told in a sentence
        text = " ".join(str(error).split())[:120]
        return f"its forward fails once rewritten for DeepLIFT ({type(error).__name__}: {text}); {ALTERNATIVES}"
    if not isinstance(output, torch.Tensor) or id(output) not in watch.softmax_outputs:
        return (
            f"its output does not come from a final softmax layer, so DeepSHAP has no logits to explain; {ALTERNATIVES}"
        )
    return None
