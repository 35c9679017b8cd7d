"""Additivity error and seconds of every method at its default parameters on the four reference models.

Run: .venv/bin/python -m bench.method_table [--out bench/method_table.md]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from explainers.images import load_image
from explainers.methods import all_methods
from explainers.request import explain
from models import load_classifier
from models.registry import WeightsKind

CASES: tuple[tuple[str, WeightsKind, str], ...] = (
    ("efficientnet_lite0", "pretrained", "assets/samples/photos/chelsea.png"),
    ("brain_tumor_vgg16", "pretrained", "assets/samples/mri/Te-gl_0010.jpg"),
    ("digits_cnn", "pretrained", "assets/samples/digits/digit_7.png"),
    ("resnet18", "random", "assets/samples/photos/chelsea.png"),
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench/method_table.md")
    parser.add_argument("--methods", nargs="*", default=None, help="only these methods (default: all)")
    args = parser.parse_args()
    rows = [
        "| method | model | budget | evaluations | seconds | additivity error | |f(x) − base| (top class) |",
        "|---|---|---|---|---|---|---|",
    ]
    for model_name, weights, image_path in CASES:
        classifier = load_classifier(model_name, weights=weights)
        image = load_image(image_path)
        explain(classifier, image, "partition", top_k=1, max_evals=20)  # warm-up: numba compilation, caches
        for method in all_methods():
            if args.methods and method.name not in args.methods:
                continue
            started = time.perf_counter()
            result = explain(classifier, image, method.name, top_k=3)
            wall = time.perf_counter() - started
            gap = float(np.abs(result.probs[result.classes[0]] - result.base_values[0]))
            label = f"{model_name} ({weights})" if weights == "random" else model_name
            rows.append(
                f"| {method.name} | {label} | {method.default_budget} {method.budget_meaning} | "
                f"{result.n_evals} | {wall:.1f} | {result.additivity_error:.1e} | {gap:.3g} |"
            )
            print(rows[-1], flush=True)
    Path(args.out).write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
