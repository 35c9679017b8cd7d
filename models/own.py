"""Users' own models from their cards (issue 15): the network built from a checked card and its safetensors
weights, and its validation in a child process with a memory limit, so that a hostile or broken file cannot take
the server down. What the validation refuses, in one sentence each: missing or unexpected keys, shapes that do
not match the architecture, NaN or infinite weights, an output whose size is not the card's class count, a
forward pass that fails on a dummy input, and a child that runs out of its memory or time.

An ONNX card's graph runs in ONNX Runtime (telemetry off) behind the same module contract; it has no gradients, so
the model-agnostic methods explain it and DeepSHAP and GradientSHAP say why they cannot.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.cards import ModelCard
from models.weights_files import RefusedFile, check_weights_file

# The child may allocate this much beyond what importing torch took ($EXPLAINERS_MODEL_CHECK_MEMORY_MB).
VALIDATION_MEMORY_BYTES = int(os.environ.get("EXPLAINERS_MODEL_CHECK_MEMORY_MB", "3072")) * 2**20
VALIDATION_SECONDS = 120


class ModelRefused(ValueError):
    """A user's model that is not registered; the message is one sentence."""


@dataclass(frozen=True)
class Validation:
    """What the child found: a passing model's output size and the most memory the child used."""

    classes: int
    peak_bytes: int
    seconds: float


class OnnxNetwork(nn.Module):
    """An ONNX graph as the network after the input transform: N×C×H×W in (N×H×W×C for an nhwc graph), the
    graph's first output out; a graph with a fixed batch of one is run image by image. No gradients."""

    def __init__(self, path: Path, layout: str = "nchw"):
        super().__init__()
        from models.runtime import offline_onnxruntime

        onnxruntime = offline_onnxruntime()
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = max(1, torch.get_num_threads())
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        first = self.session.get_inputs()[0]
        self.input_name, self.layout = first.name, layout
        self.one_at_a_time = first.shape and first.shape[0] == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import numpy as np

        array = x.detach().float().cpu().numpy()
        if self.layout == "nhwc":
            array = array.transpose(0, 2, 3, 1)
        array = np.ascontiguousarray(array, dtype=np.float32)
        rows = [array[i:i + 1] for i in range(len(array))] if self.one_at_a_time else [array]
        outputs = [self.session.run(None, {self.input_name: row})[0] for row in rows]
        return torch.from_numpy(np.ascontiguousarray(np.concatenate(outputs), dtype=np.float32)).to(x.device)

    def __getstate__(self):  # a session does not pickle; a model is rebuilt from its card where it runs
        raise TypeError("an ONNX model is rebuilt from its card, not pickled")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:160] + ("…" if len(text) > 160 else "")


def weights_file_of(card: ModelCard) -> Path:
    """A user's weights file; ModelRefused for a card without one (a built-in's source)."""
    if card.weights is None:  # a built-in's weights source: models.zoo loads it with its architecture's code
        raise ModelRefused(f"{card.name} names no weights file beside its card.")
    return card.weights


def build_network(card: ModelCard) -> nn.Module:
    """The card's architecture with its weights, strictly (every key present, none extra, every shape right),
    and every weight finite; ModelRefused with one sentence otherwise."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from models.zoo import architecture

    weights = weights_file_of(card)
    if card.format == "onnx":
        try:
            return OnnxNetwork(weights, card.preprocessing.layout).eval()
        except Exception as error:  # noqa: BLE001 - ONNX Runtime's own refusals, told in a sentence
            raise ModelRefused(f"ONNX Runtime could not open {weights.name}: {_one_line(error)}.") from None
    try:
        network = architecture(card.architecture or "").untrained(len(card.classes))
    except KeyError:
        raise ModelRefused(f"The architecture {card.architecture} cannot be built.") from None
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, RuntimeError) as error:
        raise ModelRefused(f"{weights.name} could not be read as safetensors: {_one_line(error)}.") from None
    expected = network.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing:
        raise ModelRefused(f"{weights.name} lacks {len(missing)} weights of {card.architecture}, such as "
                           f"{missing[0][:60]!r}.")
    if unexpected:
        raise ModelRefused(f"{weights.name} has {len(unexpected)} weights that {card.architecture} does not, "
                           f"such as {unexpected[0][:60]!r}.")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise ModelRefused(f"{weights.name}'s {key[:60]} is {tuple(tensor.shape)} where {card.architecture} "
                               f"with {len(card.classes)} classes has {tuple(expected[key].shape)}.")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ModelRefused(f"{weights.name}'s {key[:60]} holds NaN or infinite values.")
    network.load_state_dict(state, strict=True)
    return network.eval()


def _peak_resident_bytes() -> int:
    """This process's peak resident memory (VmHWM: since its exec; ru_maxrss would carry over the peak of the
    process that forked it)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _check_here(card: ModelCard) -> dict[str, Any]:
    """The child's work: bound its memory, load, check, one forward pass on a grey dummy input."""
    started = time.monotonic()
    try:
        # Bound what this process may still allocate: what it maps now (torch imported) plus the budget.
        with open(f"/proc/{os.getpid()}/statm") as statm:
            virtual = int(statm.read().split()[0]) * resource.getpagesize()
        limit = virtual + VALIDATION_MEMORY_BYTES
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        torch.set_num_threads(1)
        from models.zoo import build_model

        model = build_model(card)
        height, width = card.preprocessing.input_size
        with torch.no_grad():
            output = model(torch.full((1, 3, height, width), 127.0))
        if output.ndim != 2 or output.shape[0] != 1:
            raise ModelRefused(f"The model's output has the shape {tuple(output.shape)}, not one row of class "
                               "scores per image.")
        if output.shape[1] != len(card.classes):
            raise ModelRefused(f"The model gives {output.shape[1]} outputs but its card names "
                               f"{len(card.classes)} classes.")
        if not torch.isfinite(output).all():
            raise ModelRefused("The model's output on a grey test image is NaN or infinite.")
        peak = _peak_resident_bytes()
        return {"ok": True, "classes": int(output.shape[1]), "peak_bytes": peak,
                "seconds": time.monotonic() - started}
    except ModelRefused as error:
        return {"ok": False, "reason": str(error)}
    except Exception as error:  # noqa: BLE001 - whatever a foreign model does, it is told in one sentence
        if isinstance(error, MemoryError) or "allocate" in str(error).lower():
            return {"ok": False, "reason": f"Loading and running the model took more than "
                                          f"{VALIDATION_MEMORY_BYTES // 2**20} MB beyond the app's own, the limit "
                                          "for a user's model."}
        return {"ok": False, "reason": f"A forward pass of the model failed: {_one_line(error)}."}


def validate(card: ModelCard, timeout: float = VALIDATION_SECONDS) -> Validation:
    """The card's weights judged by their bytes here, then loaded and run in a child process (``python -m
    models.own CARD``) under a memory limit and a time limit; ModelRefused with one sentence when anything is
    wrong."""
    import json
    import subprocess
    import sys

    weights = weights_file_of(card)
    try:
        checked = check_weights_file(weights)
    except RefusedFile as error:
        raise ModelRefused(str(error)) from None
    if checked.format != card.format:
        raise ModelRefused(f"The card says {card.format} but {weights.name} holds {checked.format}.")
    root = str(Path(__file__).resolve().parents[1])
    try:
        done = subprocess.run([sys.executable, "-m", "models.own", str(card.path)], cwd=root, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ModelRefused(f"Checking the model took more than {timeout:.0f} s; it is not registered.") from None
    lines = done.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise ModelRefused(f"The process checking the model ended abruptly (exit code {done.returncode}), most "
                           "likely out of its memory limit; the model is not registered.") from None
    if not answer.get("ok"):
        raise ModelRefused(answer.get("reason") or "The model did not pass its check.")
    return Validation(classes=answer["classes"], peak_bytes=answer["peak_bytes"], seconds=answer["seconds"])


def _main(argv: list[str]) -> int:
    """The child: ``python -m models.own CARD`` prints one JSON line, what :func:`validate` reads."""
    import json

    from models.cards import CardError, read_card

    try:
        card = read_card(argv[0])
        answer = _check_here(card)
    except (CardError, IndexError) as error:
        answer = {"ok": False, "reason": str(error) or "No card was given."}
    print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_main(sys.argv[1:]))
