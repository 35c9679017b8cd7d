"""How ``Classifier.predict`` runs on this machine: PyTorch or ONNX Runtime, at which batch size.

Both are measured once per machine on a synthetic image when a model is loaded, and the fastest is
remembered in a small JSON file, so later loads are instant. The key of that file names everything that
changes the answer: the model and its weights, the torch and onnxruntime versions, the processor and the
number of threads. ``MODELS_TUNE=0`` switches measuring off (the registry's batch size and runtime are
used as they are); the tests do that.

The surprising detail: on a small CPU the best batch is small (4 to 8 images), and ONNX Runtime, which
folds batch-norm into the convolutions and fuses the activations, runs the same network up to twice as fast
as eager PyTorch. Gradient methods still need the PyTorch module, so both are kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn

from storage import folder
from storage.files import atomic_path, write_atomically

# ONNX Runtime's telemetry, off before it is first imported: importing it already creates its event store
# (~/.cache/Microsoft/DeveloperTools/.onnxruntime: device id, OS, python path, model file names) unless this
# is set; disable_telemetry_events() below then stops the events of the sessions themselves.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

if TYPE_CHECKING:
    from models.registry import ModelSpec

RuntimeKind = Literal["torch", "onnxruntime"]
# Batch sizes tried, smallest first; measuring stops once a bigger batch is clearly slower per image.
TUNE_BATCHES = (1, 2, 4, 8, 16, 32)
# Each measurement repeats its batch for at least this long (a single call on slow models).
MEASURE_SECONDS = 0.3
ONNX_OPSET = 17
# An exported graph is used only if it agrees with PyTorch this closely on probabilities.
ONNX_TOLERANCE = 1e-5
TUNING_VERSION = 1
# Bigger networks (torchvision's VGG-16: 528 MB) are not copied to disk as ONNX; they run in PyTorch.
MAX_EXPORT_BYTES = 128 * 1024**2


@dataclass(frozen=True)
class RuntimeChoice:
    """The predict path chosen for one model on one machine, with what was measured (images per second)."""

    runtime: RuntimeKind
    batch_size: int
    images_per_second: float
    measured: dict[str, dict[str, float]]  # runtime → batch size (as text, for JSON) → images per second
    seconds: float = 0.0  # how long measuring took
    remembered: bool = False  # read from the file of an earlier load rather than measured now


def tuning_enabled() -> bool:
    """False when $MODELS_TUNE is 0/false/no/off."""
    return os.environ.get("MODELS_TUNE", "1").strip().lower() not in ("0", "false", "no", "off")


def models_cache_dir() -> Path:
    """Where measurements and exports are remembered: storage.folder("models")."""
    return folder("models")


def _processor() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_key(name: str, weights_digest: str, bfloat16: bool = False) -> dict[str, Any]:
    """Everything the measured choice depends on (PyTorch's precision among it)."""
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = "absent"
    return {
        "model": name,
        "weights": weights_digest,
        "torch": torch.__version__,
        "onnxruntime": ort_version,
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "processor": _processor(),
        "version": TUNING_VERSION,
        **({"precision": "bfloat16"} if bfloat16 else {}),  # float32 keys as before: their files stay valid
    }


def _key_digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def offline_onnxruntime() -> Any:
    """onnxruntime with its telemetry switched off before the first session is created (it otherwise queues
    events and looks up mobile.events.data.microsoft.com)."""
    import onnxruntime

    onnxruntime.disable_telemetry_events()
    return onnxruntime


class OnnxPredictor:
    """An ONNX Runtime session behind the predict contract: N×H×W×3 float32 in [0, 255] → probabilities."""

    def __init__(self, path: Path, input_scale: float = 1.0):
        onnxruntime = offline_onnxruntime()
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = torch.get_num_threads()
        # Idle ONNX Runtime threads would otherwise spin for a while after each call and starve PyTorch's,
        # which gradient methods use in the same process (measured: 8× slower PyTorch forward passes).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.input_scale = np.float32(input_scale)
        self.path = path

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if self.input_scale != 1:
            batch = batch * self.input_scale
        return self.session.run(None, {self.input_name: batch})[0]


class _ChannelsLastInput(nn.Module):
    """Takes N×H×W×3 like ``predict`` does, so ONNX Runtime gets the array as it is."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x.permute(0, 3, 1, 2))


def export_onnx(module: nn.Module, input_size: tuple[int, int], path: Path) -> Path:
    """Writes ``module`` (N×3×H×W in, probabilities out) as an ONNX graph taking N×H×W×3, batch dynamic."""
    example = torch.rand(2, *input_size, 3) * 255
    with atomic_path(path) as temporary, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape arithmetic, constant at a fixed size
        torch.onnx.export(
            _ChannelsLastInput(module).eval(),
            (example,),
            str(temporary),
            dynamo=False,
            input_names=["images"],
            output_names=["probabilities"],
            opset_version=ONNX_OPSET,
            dynamic_axes={"images": {0: "batch"}, "probabilities": {0: "batch"}},
        )
    return path


def synthetic_images(spec: ModelSpec, count: int) -> np.ndarray:
    """Smooth random colours at the model's input size: content that costs what a real image costs."""
    rng = np.random.default_rng(0)
    coarse = rng.uniform(0, 255, size=(count, 8, 8, 3)).astype(np.float32)
    height, width = spec.input_size
    rows = np.arange(height) * 8 // height
    cols = np.arange(width) * 8 // width
    return np.ascontiguousarray(coarse[:, rows][:, :, cols])


def _images_per_second(run: Callable[[np.ndarray], Any], images: np.ndarray) -> float:
    run(images)  # warm-up: the first call at a new shape builds the kernels
    calls, started = 0, time.perf_counter()
    while True:
        run(images)
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= MEASURE_SECONDS:
            return calls * len(images) / elapsed


def measure_batches(
    run: Callable[[np.ndarray], Any], spec: ModelSpec, batches: tuple[int, ...] = TUNE_BATCHES
) -> dict[int, float]:
    """Images per second at growing batch sizes, stopping once a batch is clearly slower than the best."""
    results: dict[int, float] = {}
    for batch in batches:
        results[batch] = _images_per_second(run, synthetic_images(spec, batch))
        if results[batch] < 0.9 * max(results.values()):
            break
    return results


def _torch_runner(module: nn.Module, bfloat16: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    def run(images: np.ndarray) -> np.ndarray:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            return module(torch.from_numpy(images).permute(0, 3, 1, 2)).float().numpy()

    return run


def onnx_predictor(spec: ModelSpec, module: nn.Module, weights_digest: str) -> OnnxPredictor | None:
    """ONNX Runtime for this model: its shipped graph, else an export of ``module`` cached on disk; None when
    neither works or the export disagrees with PyTorch."""
    try:
        import onnxruntime  # noqa: F401 - only whether it imports
    except ImportError:
        return None
    shipped = spec.onnx_file() if spec.onnx_file is not None else None
    if shipped is not None and shipped.is_file():
        return OnnxPredictor(shipped, spec.onnx_input_scale)
    weight_bytes = sum(p.numel() * p.element_size() for p in module.parameters())
    if not spec.onnx_export or weight_bytes > MAX_EXPORT_BYTES:
        return None
    path = models_cache_dir() / f"{spec.name}-{weights_digest}-torch{torch.__version__}.onnx"
    try:
        if not path.is_file():
            export_onnx(module, spec.input_size, path)
        predictor = OnnxPredictor(path)
    except Exception:  # noqa: BLE001 - an architecture the exporter cannot trace: PyTorch only
        return None
    images = synthetic_images(spec, 2)
    if np.abs(predictor(images) - _torch_runner(module)(images)).max() > ONNX_TOLERANCE:
        return None
    return predictor


def _choice_path(spec: ModelSpec, key: dict[str, Any]) -> Path:
    return models_cache_dir() / f"runtime-{spec.name}-{_key_digest(key)}.json"


def remembered_choice(spec: ModelSpec, weights_digest: str, bfloat16: bool = False) -> RuntimeChoice | None:
    """The choice measured earlier on this machine for these weights, versions and precision, or None."""
    key = machine_key(spec.name, weights_digest, bfloat16)
    try:
        stored = json.loads(_choice_path(spec, key).read_text())
        if stored.get("key") != key:
            return None
        return replace(RuntimeChoice(**stored["choice"]), remembered=True)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def measure_choice(
    spec: ModelSpec, module: nn.Module, weights_digest: str, onnx: OnnxPredictor | None, bfloat16: bool = False
) -> RuntimeChoice:
    """Measures PyTorch (under bfloat16 autocast when asked; and ONNX Runtime when given, float32) at a few batch
    sizes; remembers the fastest."""
    started = time.perf_counter()
    runner = _torch_runner(module, bfloat16)
    candidates: dict[RuntimeKind, dict[int, float]] = {"torch": measure_batches(runner, spec)}
    if onnx is not None:
        candidates["onnxruntime"] = measure_batches(onnx, spec)
    runtime, batch = max(
        ((name, batch) for name, results in candidates.items() for batch in results),
        key=lambda pair: candidates[pair[0]][pair[1]],
    )
    choice = RuntimeChoice(
        runtime=runtime,
        batch_size=batch,
        images_per_second=round(candidates[runtime][batch], 2),
        measured={name: {str(b): round(v, 2) for b, v in results.items()} for name, results in candidates.items()},
        seconds=round(time.perf_counter() - started, 2),
    )
    key = machine_key(spec.name, weights_digest, bfloat16)
    try:
        write_atomically(_choice_path(spec, key), json.dumps({"key": key, "choice": asdict(choice)}, indent=1).encode())
    except OSError:
        pass  # a read-only cache folder: measure again next time
    return choice
