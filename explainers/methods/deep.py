"""DeepSHAP: the DeepLIFT rescale rule averaged over a background set (Lundberg & Lee 2017; Shrikumar et al.,
"Learning Important Features Through Propagating Activation Differences", 2017).

Our own implementation, because shap's DeepExplainer fails on torchvision's ResNets (an in-place ReLU used
twice per block) and gives values that do not add up on ReLU6 networks. Here a copy of the model is rewritten
before explaining: every elementwise non-linearity becomes a rescale node, max-pooling becomes a tree of
max(a, b) = b + relu(a − b) (so its credit also sums exactly), and the product in squeeze-excite blocks uses
the exact two-player Shapley split. The input and each reference run as one doubled batch; a node's
multiplier is Δoutput / Δinput over that pair. The final softmax is attributed to the logits by integrated
gradients on the softmax alone (cheap: no network), corrected to sum exactly, so the values add up to
p(x) − mean p(reference) for the explained probabilities; for log-odds the same is done for
z_c − logsumexp_{j≠c} z_j of the logits.

Which networks it explains is an allow-list (explainers/methods/_deep_check.py), checked before running by one
pass of an example through the rewritten copy: a layer, an option or a call in a forward with no rule here is
refused in one sentence naming the layer, rather than passed through as if it were linear.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops.misc import SqueezeExcitation

from explainers.backgrounds import BACKGROUND_PARAM, make_background, mean_reference, resolve_background
from explainers.classifier import Classifier, gradient_module_of
from explainers.explanation import Explanation
from explainers.methods._deep_check import ALTERNATIVES, DroppedSoftmax, Rewritten, first_unsupported_call
from explainers.methods.base import Attribution, PixelMethod
from explainers.methods.registry import register
from explainers.outputs import log_odds_of_logits
from explainers.progress import ProgressCallback

ELEMENTWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.Hardtanh,
    nn.Sigmoid,
    nn.Tanh,
    nn.SiLU,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.GELU,
    nn.ELU,
    nn.LeakyReLU,
    nn.Softplus,
    nn.Mish,
)
_EPSILON = 1e-7
DTYPE = torch.float32


class _RescaleFunction(torch.autograd.Function):
    """y = fn(x) on a doubled batch [inputs; references]; backward uses Δy / Δx per element."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        y = fn(x)
        ctx.fn = fn
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        x, y = ctx.saved_tensors
        x_in, x_ref = x.chunk(2)
        delta_x = x_in - x_ref
        delta_y = y.chunk(2)[0] - y.chunk(2)[1]
        # Where the pair is (nearly) equal the quotient is unstable: use the gradient at the midpoint.
        midpoint = ((x_in + x_ref) / 2).detach().requires_grad_(True)
        with torch.enable_grad():
            (slope,) = torch.autograd.grad(ctx.fn(midpoint).sum(), midpoint)
        small = delta_x.abs() < _EPSILON
        multiplier = torch.where(small, slope, delta_y / torch.where(small, torch.ones_like(delta_x), delta_x))
        return grad * torch.cat([multiplier, multiplier]), None


class _ProductFunction(torch.autograd.Function):
    """a · b with the exact two-player Shapley split: Δ(ab) = Δa·(b + b')/2 + Δb·(a + a')/2."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = ctx.saved_tensors
        a_mean = (a.chunk(2)[0] + a.chunk(2)[1]) / 2
        b_mean = (b.chunk(2)[0] + b.chunk(2)[1]) / 2
        grad_a = grad * torch.cat([b_mean, b_mean]).expand_as(grad)
        grad_b = grad * torch.cat([a_mean, a_mean]).expand_as(grad)
        return _reduce_to(grad_a, a.shape), _reduce_to(grad_b, b.shape)


def _reduce_to(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sums a broadcast gradient back to the operand's shape (e.g. N×C×1×1 squeeze-excite scales)."""
    dims = [i for i, (g, s) in enumerate(zip(grad.shape, shape, strict=True)) if s == 1 and g != 1]
    return grad.sum(dim=dims, keepdim=True) if dims else grad


class Rescale(Rewritten):
    def __init__(self, original: nn.Module):
        super().__init__(original)
        self.original = copy.deepcopy(original)
        if hasattr(self.original, "inplace"):
            setattr(self.original, "inplace", False)  # noqa: B010  (nn.Module's typed __setattr__ wants a tensor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _RescaleFunction.apply(x, self.original)


def _relu_rescale(x: torch.Tensor) -> torch.Tensor:
    return _RescaleFunction.apply(x, F.relu)


def _pair(value: int | tuple[int, ...]) -> tuple[int, ...]:
    return (value, value) if isinstance(value, int) else tuple(value)


class MaxPoolAsReLUTree(Rewritten):
    """Max-pooling rewritten as max(a, b) = b + relu(a − b) over each window, so the rescale rule applies."""

    def __init__(self, pool: nn.MaxPool2d):
        super().__init__(pool)
        self.kernel, self.stride = _pair(pool.kernel_size), _pair(pool.stride or pool.kernel_size)
        self.padding, self.dilation = _pair(pool.padding), _pair(pool.dilation)
        option = self.unsupported_option(pool)
        if option is not None:
            raise ValueError(f"DeepSHAP cannot rewrite a MaxPool2d with {option}")

    @staticmethod
    def unsupported_option(pool: nn.MaxPool2d) -> str | None:
        """The option of ``pool`` that this rewrite does not follow, in words; None when it follows them all."""
        if pool.ceil_mode:  # windows past the edge, which the unfolded windows below do not have
            return "ceil_mode=True"
        if pool.return_indices:
            return "return_indices=True"
        if _pair(pool.dilation) != (1, 1) and _pair(pool.padding) != (0, 0):
            # A dilated window may skip the edge pixel, so a replicated edge could become its maximum.
            return "both padding and dilation"
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        ph, pw = self.padding
        if ph or pw:
            # Replicated edges never change a window's maximum (the edge pixel is in the same window).
            x = F.pad(x, (pw, pw, ph, ph), mode="replicate")
        out_h = (h + 2 * ph - self.dilation[0] * (self.kernel[0] - 1) - 1) // self.stride[0] + 1
        out_w = (w + 2 * pw - self.dilation[1] * (self.kernel[1] - 1) - 1) // self.stride[1] + 1
        windows = F.unfold(x, self.kernel, dilation=self.dilation, stride=self.stride)
        items = list(windows.view(n, c, self.kernel[0] * self.kernel[1], -1).unbind(dim=2))
        while len(items) > 1:
            paired = [items[i + 1] + _relu_rescale(items[i] - items[i + 1]) for i in range(0, len(items) - 1, 2)]
            items = paired + ([items[-1]] if len(items) % 2 else [])
        return items[0].view(n, c, out_h, out_w)


class SqueezeExcitationProduct(Rewritten):
    """torchvision's SqueezeExcitation with its scale · input product made an exact Shapley split."""

    def __init__(self, block: SqueezeExcitation):
        super().__init__(block)
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ProductFunction.apply(self.block._scale(x), x)


# The refusal for each gradient module checked, so the example pass runs once per loaded model.
_REFUSALS: weakref.WeakKeyDictionary[nn.Module, str | None] = weakref.WeakKeyDictionary()


def unsupported_layer(module: nn.Module, example: torch.Tensor) -> str | None:
    """Why DeepLIFT's rules here do not cover this network, or None: an option of a layer the rewrite does not
    follow, else the first operation outside the allow-list in one pass of ``example`` (N×3×H×W)."""
    for name, layer in module.named_modules():
        option = MaxPoolAsReLUTree.unsupported_option(layer) if isinstance(layer, nn.MaxPool2d) else None
        if option is not None:
            return f"its layer {name} (MaxPool2d with {option}) has no DeepLIFT rule here; {ALTERNATIVES}"
    return first_unsupported_call(rewrite_for_deeplift(module).to(DTYPE), example.to(DTYPE))


def rewrite_for_deeplift(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose non-linear modules follow the rescale rule; softmax layers become identities."""
    from torchvision.ops.misc import SqueezeExcitation

    model = copy.deepcopy(model).eval()

    def rewrite(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, SqueezeExcitation):
                rewrite(child)
                setattr(parent, name, SqueezeExcitationProduct(child))
            elif isinstance(child, ELEMENTWISE):
                setattr(parent, name, Rescale(child))
            elif isinstance(child, nn.MaxPool2d):
                setattr(parent, name, MaxPoolAsReLUTree(child))
            elif isinstance(child, (nn.Softmax, nn.LogSoftmax)):
                setattr(parent, name, DroppedSoftmax(child))
            else:
                rewrite(child)

    rewrite(model)
    return model


def output_of_logits(logits: torch.Tensor, classes: torch.Tensor, output: str = "probability") -> torch.Tensor:
    """B × K outputs of ``classes`` in ``output``'s space: softmax probabilities, or log-odds."""
    if output == "log-odds":
        return log_odds_of_logits(logits, classes)
    return torch.softmax(logits, -1)[:, classes]


def softmax_multipliers(
    logits: torch.Tensor,
    reference_logits: torch.Tensor,
    classes: torch.Tensor,
    steps: int = 64,
    output: str = "probability",
) -> torch.Tensor:
    """K × B × C weights w with Σ_j w_j Δz_j = Δoutput_class exactly: integrated gradients of the final layer
    alone (the softmax, or the log-odds z_c − logsumexp_{j≠c} z_j), corrected to sum exactly."""
    delta = logits - reference_logits  # B × C
    alphas = (torch.arange(steps, dtype=logits.dtype) + 0.5) / steps
    path = reference_logits[None] + alphas[:, None, None] * delta[None]  # steps × B × C
    probs = torch.softmax(path, dim=-1) if output == "probability" else None
    targets = output_of_logits(logits, classes, output) - output_of_logits(reference_logits, classes, output)
    weights = []
    for k, class_id in enumerate(classes.tolist()):
        onehot = torch.zeros_like(path[0, 0])
        onehot[class_id] = 1
        if output == "log-odds":
            # ∂/∂z_j (z_c − logsumexp_{i≠c} z_i) = 1[j = c] − q_j, q the softmax over the other classes.
            others = path.clone()
            others[..., class_id] = float("-inf")
            w = (onehot - torch.softmax(others, dim=-1)).mean(dim=0)
        else:
            # ∂p_c/∂z_j = p_c (1[j = c] − p_j), averaged along the straight path.
            assert probs is not None  # computed above for the probability
            w = (probs[..., class_id : class_id + 1] * (onehot - probs)).mean(dim=0)  # B × C
        target = targets[:, k]
        residual = target - (w * delta).sum(-1)
        norm = (delta * delta).sum(-1).clamp_min(1e-30)
        weights.append(w + (residual / norm)[:, None] * delta)
    return torch.stack(weights)


def rescale_attributions(
    model: nn.Module,
    x: torch.Tensor,
    refs: torch.Tensor,
    output_weights: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    batch_size: int,
    progress: ProgressCallback | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """DeepLIFT attributions averaged over references, for a model rewritten by rewrite_for_deeplift.

    ``output_weights(z_in, z_ref)`` gives K × B × C multipliers of the outputs per explained quantity.
    Returns the K × C × H × W mean attributions and the references' outputs (R × C).
    """
    total: torch.Tensor | None = None
    ref_outputs = []
    for start in range(0, len(refs), batch_size):
        ref = refs[start : start + batch_size]
        inputs = x[None].expand_as(ref).clone().requires_grad_(True)
        outputs = model(torch.cat([inputs, ref]))
        z_in, z_ref = outputs.detach().chunk(2)
        weights = output_weights(z_in, z_ref)
        per_class = []
        for k in range(len(weights)):
            grad_output = torch.cat([weights[k], torch.zeros_like(weights[k])])
            (grad,) = torch.autograd.grad(outputs, inputs, grad_output, retain_graph=k < len(weights) - 1)
            per_class.append((grad * (inputs.detach() - ref)).sum(dim=0))
        chunk_total = torch.stack(per_class)
        total = chunk_total if total is None else total + chunk_total
        ref_outputs.append(z_ref)
        if progress is not None:
            progress(min(start + batch_size, len(refs)), len(refs))
    if total is None:
        raise ValueError("DeepLIFT needs at least one reference.")
    return total / len(refs), torch.cat(ref_outputs)


@register
class Deep(PixelMethod):
    name = "deep"
    title = "DeepSHAP (DeepLIFT rescale)"
    summary = "DeepLIFT's rescale rule through the network, averaged over background references."
    paper = (
        "Lundberg & Lee 2017 (DeepSHAP); Shrikumar et al. 2017, Learning Important Features Through "
        "Propagating Activation Differences"
    )
    params = (BACKGROUND_PARAM,)
    requires_gradients = True
    budget_meaning = "background references"
    default_budget = 8
    min_budget = 1
    max_budget = 128
    smoke_budget = 3
    order = 60

    def unsupported(self, classifier: Classifier) -> str | None:
        reason = super().unsupported(classifier)
        if reason is not None:
            return reason
        module = gradient_module_of(classifier)
        if module is None:  # super().unsupported has refused a model without one
            return None
        if module not in _REFUSALS:
            # Random pixels at the model's input size, so data-dependent branches take their usual path.
            height, width = classifier.prepare(np.zeros((8, 8, 3), np.uint8)).shape[:2]
            example = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(0)) * 255
            _REFUSALS[module] = unsupported_layer(module, example)
        return _REFUSALS[module]

    def attribute(
        self,
        classifier: Classifier,
        image: np.ndarray,
        classes: np.ndarray,
        budget: int,
        seed: int,
        progress: ProgressCallback | None,
        output: str = "probability",
        background: str = "auto",
        **params: Any,
    ) -> Attribution:
        """``budget`` is the number of background references."""
        references = make_background(classifier, image, background, budget)
        class_index = torch.from_numpy(classes)
        module = gradient_module_of(classifier)
        if module is None:  # Method.unsupported refuses such a model first; this guards a direct call
            raise ValueError(f"{classifier.name} has no differentiable module for DeepLIFT.")
        model = rewrite_for_deeplift(module).to(DTYPE)
        x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1).to(DTYPE)
        refs = torch.from_numpy(references).permute(0, 3, 1, 2).to(DTYPE)
        attributions, ref_logits = rescale_attributions(
            model,
            x,
            refs,
            lambda z_in, z_ref: softmax_multipliers(z_in, z_ref, class_index, output=output),
            max(1, classifier.batch_size // 2),
            progress,
        )
        base_values = output_of_logits(ref_logits, class_index, output).mean(dim=0).numpy().astype(np.float64)
        return Attribution(
            attributions.sum(dim=1).numpy().astype(np.float32),
            base_values,
            2 * len(references),
            used={"background_used": resolve_background(classifier, background)},
            extras={"references": len(references)},
        )

    def hidden_image(self, explanation: Explanation, classifier: Classifier, features: np.ndarray) -> np.ndarray:
        return mean_reference(classifier, explanation)
