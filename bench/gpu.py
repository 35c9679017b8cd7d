"""The GPU against the CPU: forward images/s, and partition 500 / kernel 1000 / exact 2^14 per image, on
EfficientNet-Lite0 (chelsea), plus the largest probability change of half precision. Writes bench/gpu.md.

Run: .venv/bin/python -m bench.gpu [--skip-exact-on-cpu]

Each device is measured in its own process ($EXPLAINERS_DEVICE=cpu, then cuda; $EXPLAINERS_HALF=1 for the
half-precision row), so the numbers are what a worker on that device would see.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES: tuple[tuple[str, int, dict[str, int]], ...] = (
    ("partition", 500, {}),
    ("kernel", 1000, {"segments": 50}),
    ("exact", 2**14, {"segments": 14}),
)


def measure(skip_exact: bool) -> dict:
    """In this process, on $EXPLAINERS_DEVICE."""
    import numpy as np
    import torch

    from explainers.images import load_image
    from explainers.request import explain
    from models import load_classifier

    classifier = load_classifier("efficientnet_lite0", tune=False)
    image = classifier.prepare(load_image(ROOT / "assets" / "samples" / "photos" / "chelsea.png").pixels)
    batch = np.repeat(image[None], classifier.batch_size, axis=0).astype(np.float32)
    classifier.predict(batch)
    if classifier.device.type == "cuda":
        torch.cuda.synchronize()
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < 3:
        classifier.predict(batch)
        calls += 1
    result = {
        "device": str(classifier.device),
        "half": classifier.half,
        "batch": classifier.batch_size,
        "images_per_s": calls * len(batch) / (time.perf_counter() - started),
        "probs": [float(p) for p in classifier.predict(image[None])[0]],
    }
    for method, budget, params in CASES:
        if method == "exact" and skip_exact and classifier.device.type == "cpu":
            continue
        explain(classifier, image, method, max_evals=min(budget, 64), params=params, top_k=3)  # warm-up, JIT
        started = time.perf_counter()
        explain(classifier, image, method, max_evals=budget, params=params, top_k=3)
        result[f"{method}_s"] = time.perf_counter() - started
    return result


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu")
    parser.add_argument("--skip-exact-on-cpu", action="store_true", help="2^14 evaluations take minutes on a CPU")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.skip_exact_on_cpu)))
        return 0
    import torch

    runs = [("cpu", "0")] + ([("cuda", "0"), ("cuda", "1")] if torch.cuda.is_available() else [])
    rows = []
    for device, half in runs:
        env = {**os.environ, "EXPLAINERS_DEVICE": device, "EXPLAINERS_HALF": half, "MODELS_TUNE": "0"}
        command = [sys.executable, "-m", "bench.gpu", "--child"] + (
            ["--skip-exact-on-cpu"] if args.skip_exact_on_cpu else []
        )
        output = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
        print(rows[-1], file=sys.stderr)
    cpu = rows[0]
    lines = [
        "# GPU against CPU (EfficientNet-Lite0, chelsea, top-3)",
        "",
        "| device | batch | forward images/s | partition 500, s | kernel 1000, s | exact 2^14, s | largest "
        "probability change vs float32 on the same device |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        reference = next((r for r in rows if r["device"] == row["device"] and not r["half"]), cpu)
        # the same model on both, so one probability per class on each side
        change = max(abs(a - b) for a, b in zip(row["probs"], reference["probs"], strict=True))
        cells = [f"{row.get(f'{m}_s', float('nan')):.2f}" for m, _, _ in CASES]
        lines.append(
            f"| {row['device']}{' (half)' if row['half'] else ''} | {row['batch']} | "
            f"{row['images_per_s']:.0f} | {' | '.join(cells)} | {change:.2e} |"
        )
    if len(rows) == 1:
        lines += ["", "No GPU on this machine: the CPU row only."]
    (ROOT / "bench" / "gpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
