"""Where a model runs: the GPU when torch sees one (``$EXPLAINERS_DEVICE``: ``auto``, ``cpu``, ``cuda``,
``cuda:N``), optionally in half precision (``$EXPLAINERS_HALF=1``; its probability change is measured by
``bench/gpu.py``), at a batch size that suits the device. On a CPU, ``$MODELS_PRECISION=bfloat16`` runs PyTorch's
``predict`` under bfloat16 autocast where the processor computes bfloat16 natively (AVX-512 BF16 or AMX; see
BENCHMARKS.md for its speed and probability change); gradient methods stay in float32."""

from __future__ import annotations

import os

import torch

DEVICE_ENV = "EXPLAINERS_DEVICE"
HALF_ENV = "EXPLAINERS_HALF"
PRECISION_ENV = "MODELS_PRECISION"
PRECISIONS = ("float32", "bfloat16")
# A GPU takes far bigger batches than a CPU before it stops gaining per image.
GPU_BATCH = 128
GPU_MAX_BATCH = 512


class DeviceError(RuntimeError):
    """$EXPLAINERS_DEVICE names a device this machine does not have."""


def select_device() -> torch.device:
    """The device for models: $EXPLAINERS_DEVICE, else the first GPU torch sees, else the CPU."""
    wanted = (os.environ.get(DEVICE_ENV) or "auto").strip().lower()
    if wanted == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(wanted)
    except RuntimeError:
        raise DeviceError(f"{DEVICE_ENV}={wanted!r} is not a device; use auto, cpu, cuda or cuda:N.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"{DEVICE_ENV}={wanted} but torch sees no GPU on this machine; use auto or cpu.")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise DeviceError(f"{DEVICE_ENV}={wanted} but this machine has {torch.cuda.device_count()} GPU(s).")
    return device


def half_precision(device: torch.device) -> bool:
    """Whether models run in float16: only on a GPU, and only when $EXPLAINERS_HALF asks for it."""
    return device.type == "cuda" and os.environ.get(HALF_ENV, "").strip().lower() in {"1", "true", "yes"}


def gpu_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def precision() -> str:
    """$MODELS_PRECISION: ``float32`` (the default) or ``bfloat16``; anything else is an error."""
    wanted = (os.environ.get(PRECISION_ENV) or "float32").strip().lower()
    if wanted not in PRECISIONS:
        raise DeviceError(f"{PRECISION_ENV}={wanted!r} is not a precision; use {' or '.join(PRECISIONS)}.")
    return wanted


def cpu_bfloat16_native() -> bool:
    """Whether this CPU computes bfloat16 in hardware (oneDNN's check: AVX-512 BF16 or AMX), not emulated."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_bfloat16(device: torch.device) -> bool:
    """Whether ``predict`` runs under bfloat16 autocast: on a CPU that computes it natively, when asked."""
    return device.type == "cpu" and precision() == "bfloat16" and cpu_bfloat16_native()
