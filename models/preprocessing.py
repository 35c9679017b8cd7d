"""A model's preprocessing as data (a card's ``preprocessing`` section), and the one sentence that describes it on
the Models page and in reports: derived here, never written by hand, so the words cannot drift from the numbers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preprocessing:
    """0..255 RGB to the network's input: resize, colour, channel order, then (x / scale − mean) / std."""

    input_size: tuple[int, int] = (224, 224)  # height, width
    resize: str = "stretch"  # or "center_crop": shorter side to resize_shorter_side, then a centred crop
    resize_shorter_side: int | None = None
    colour: str = "rgb"  # or "grayscale" (ITU-R BT.601 luma)
    scale: float = 255.0
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    channel_order: str = "rgb"  # or "bgr"
    layout: str = "nchw"  # an ONNX graph's input: nchw or nhwc
    outputs: str = "logits"  # or "probabilities": the network ends in its own softmax


def _numbers(values: tuple[float, ...]) -> str:
    """One number when every channel shares it, else the list."""
    return f"{values[0]:g}" if len(set(values)) == 1 else "[" + ", ".join(f"{value:g}" for value in values) + "]"


def describe(pre: Preprocessing) -> str:
    """The preprocessing in words, e.g. "resize to 240×240 (bicubic), then x / 255 on 0..255 RGB"."""
    height, width = pre.input_size
    if pre.resize == "center_crop":
        steps = [f"shorter side to {pre.resize_shorter_side} (bilinear), centre crop {height}×{width}"]
    else:
        steps = [f"resize to {height}×{width} (bicubic)"]
    if pre.colour == "grayscale":
        steps.append("grayscale (BT.601)")
    elif pre.channel_order == "bgr":
        steps.append("channels in BGR order")
    scaled = "x" if pre.scale == 1 else f"x / {pre.scale:g}"
    if not any(pre.mean) and all(value == 1 for value in pre.std):
        steps.append(scaled)
    else:
        shifted = f"{scaled} − {_numbers(pre.mean)}" if any(pre.mean) else scaled
        steps.append(f"({shifted}) / {_numbers(pre.std)}" if any(v != 1 for v in pre.std) else shifted)
    sentence = ", ".join(steps[:-1]) + (", then " if len(steps) > 1 else "") + steps[-1] + " on 0..255 RGB"
    if pre.outputs == "probabilities":
        sentence += "; the network ends in its own softmax"
    return sentence
