"""The space an explanation is additive in: each class's probability, or its log-odds.

A saturated model (the tumour model gives p = 0.99984 on a glioma) leaves almost nothing to attribute in
probability: every region that does not undo the verdict gets about zero. The log-odds of class c,
log p_c − log Σ_{j≠c} p_j = z_c − logsumexp_{j≠c} z_j (z: the logits), keeps spreading; shap offers the same
with ``link="logit"``.

Superpixel methods and shap's Partition transform the probabilities the model returns for each masked image;
DeepSHAP and GradientSHAP differentiate the log-odds of the logits (see :func:`log_odds_of_logits`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

Output = Literal["probability", "log-odds"]
OUTPUTS: tuple[Output, ...] = ("probability", "log-odds")
OUTPUT_HELP = (
    "What the values add up to: each class's probability, or its log-odds (log p / (1 − p)), which "
    "keeps showing what moved a confident model (a probability near 1 barely moves)."
)
# The smallest probability log-odds are taken of: a class no float32 softmax can tell from 0 (exp(−87)).
_TINY = 1e-38


def check_output(output: str) -> Output:
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, not {output!r}")
    return output


def log_odds(probs: np.ndarray) -> np.ndarray:
    """N×C (or C) log-odds of each class, float64, from probabilities.

    1 − p_c loses every digit in float32 when p_c is near 1, so the odds against c are the sum of the other
    classes' probabilities (small numbers a softmax keeps to full relative precision), summed directly for
    the one class that may be near 1 (the row's largest).
    """
    p = np.asarray(probs, dtype=np.float64)
    flat = p.reshape(-1, p.shape[-1])
    total = flat.sum(axis=1, keepdims=True)
    others = total - flat  # exact enough for every class below 1/2
    top = np.argmax(flat, axis=1)
    rows = np.arange(len(flat))
    rest = flat.copy()
    rest[rows, top] = 0.0
    others[rows, top] = rest.sum(axis=1)
    result = np.log(np.maximum(flat, _TINY)) - np.log(np.maximum(others, _TINY))
    return result.reshape(p.shape)


def in_space(probs: np.ndarray, output: str) -> np.ndarray:
    """The probabilities themselves, or their log-odds (float64)."""
    if check_output(output) == "probability":
        return np.asarray(probs, dtype=np.float64)
    return log_odds(probs)


def log_odds_of_logits(logits: torch.Tensor, classes: torch.Tensor | None = None) -> torch.Tensor:
    """B×K log-odds z_c − logsumexp_{j≠c} z_j of ``classes`` (every class when None), differentiable."""
    index = torch.arange(logits.shape[-1]) if classes is None else classes
    columns = []
    for class_id in index.tolist():
        others = logits.clone()
        others[..., class_id] = float("-inf")
        columns.append(logits[..., class_id] - torch.logsumexp(others, dim=-1))
    return torch.stack(columns, dim=-1)


def log_odds_of_probs(probs: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """B×K log-odds of ``classes`` from probabilities (a network that ends in its own softmax), differentiable;
    the odds against c are the other classes' probabilities summed, as in :func:`log_odds`."""
    columns = []
    for class_id in classes.tolist():
        others = torch.cat([probs[..., :class_id], probs[..., class_id + 1 :]], dim=-1).sum(dim=-1)
        columns.append(torch.log(probs[..., class_id].clamp_min(_TINY)) - torch.log(others.clamp_min(_TINY)))
    return torch.stack(columns, dim=-1)


def shown(value: float, output: str, signed: bool = True) -> str:
    """One value in words a person reads: +3.2 pp of the probability, or +0.41 log-odds."""
    sign = "+" if signed else ""
    if check_output(output) == "probability":
        return f"{value * 100:{sign}.2g} pp" if abs(value) < 0.001 else f"{value * 100:{sign}.1f} pp"
    return f"{value:{sign}.2f} log-odds"
