"""Users' own models from their cards (issue 15): the validation of a card's network (models.networks builds it)
in a child process with a memory limit, so that a hostile or broken file cannot take the server down. What the
validation refuses, in one sentence each: missing or unexpected keys, shapes that do not match the architecture,
NaN or infinite weights, an output whose size is not the card's class count, a forward pass that fails on a dummy
input, and a child that runs out of its memory or time.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from models.cards import ModelCard
from models.networks import ModelRefused, weights_file_of
from models.weights_files import RefusedFile, check_weights_file
from models.zoo import build_model
from storage.messages import one_line

# The child may allocate this much beyond what importing torch took ($EXPLAINERS_MODEL_CHECK_MEMORY_MB).
VALIDATION_MEMORY_BYTES = int(os.environ.get("EXPLAINERS_MODEL_CHECK_MEMORY_MB", "3072")) * 2**20
VALIDATION_SECONDS = 120


@dataclass(frozen=True)
class Validation:
    """What the child found: a passing model's output size and the most memory the child used."""

    classes: int
    peak_bytes: int
    seconds: float


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
        model = build_model(card)
        height, width = card.preprocessing.input_size
        with torch.no_grad():
            output = model(torch.full((1, 3, height, width), 127.0))
        if output.ndim != 2 or output.shape[0] != 1:
            raise ModelRefused(
                f"The model's output has the shape {tuple(output.shape)}, not one row of class scores per image."
            )
        if output.shape[1] != len(card.classes):
            raise ModelRefused(
                f"The model gives {output.shape[1]} outputs but its card names {len(card.classes)} classes."
            )
        if not torch.isfinite(output).all():
            raise ModelRefused("The model's output on a grey test image is NaN or infinite.")
        peak = _peak_resident_bytes()
        return {"ok": True, "classes": int(output.shape[1]), "peak_bytes": peak, "seconds": time.monotonic() - started}
    except ModelRefused as error:
        return {"ok": False, "reason": str(error)}
    except Exception as error:  # noqa: BLE001 - whatever a foreign model does, it is told in one sentence
        if isinstance(error, MemoryError) or "allocate" in str(error).lower():
            return {
                "ok": False,
                "reason": f"Loading and running the model took more than "
                f"{VALIDATION_MEMORY_BYTES // 2**20} MB beyond the app's own, the limit "
                "for a user's model.",
            }
        return {"ok": False, "reason": f"A forward pass of the model failed: {one_line(error, 160)}."}


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
        done = subprocess.run(
            [sys.executable, "-m", "models.own", str(card.path)],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise ModelRefused(f"Checking the model took more than {timeout:.0f} s; it is not registered.") from None
    lines = done.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise ModelRefused(
            f"The process checking the model ended abruptly (exit code {done.returncode}), most "
            "likely out of its memory limit; the model is not registered."
        ) from None
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
