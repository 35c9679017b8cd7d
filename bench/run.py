"""Speed benchmark: each method against the model's forward-pass floor and against shap's own code as the
seeds use it, as ratios measured in one run. Writes BENCHMARKS.md.

Run: .venv/bin/python -m bench.run [--quick]

The floor for N evaluations is N ÷ (forward throughput at the model's best batch size). shap's code is
timed on the same model, image and budget: Partition with Image("blur(128,128)"), batch size 50, top-3;
KernelExplainer over 50 SLIC segments with the seed notebook's per-mask loop; GradientExplainer, top-3.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import shap
import torch
from skimage.segmentation import slic

from explainers.api import explain
from explainers.backgrounds import make_background
from explainers.images import load_image
from models import load_classifier

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "efficientnet_lite0": "assets/samples/photos/chelsea.png",
    "brain_tumor_vgg16": "assets/samples/mri/Te-gl_0010.jpg",
}


def best_throughput(classifier, image: np.ndarray, batches=(1, 4, 8, 16, 32)) -> tuple[int, float]:
    """(batch size, images per second) of the fastest batch size, model evaluations only."""
    results = {}
    for batch in batches:
        data = np.repeat(image[None], batch, axis=0).astype(np.float32)
        classifier.predict(data, batch_size=batch)  # warm-up
        repeats = max(1, 32 // batch)
        started = time.perf_counter()
        for _ in range(repeats):
            classifier.predict(data, batch_size=batch)
        results[batch] = batch * repeats / (time.perf_counter() - started)
    best = max(results, key=results.get)
    return best, results[best]


def timed(function) -> tuple[float, object]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def shap_partition(classifier, image, budget: int) -> float:
    masker = shap.maskers.Image("blur(128,128)", image.shape)
    explainer = shap.Explainer(lambda x: classifier.predict(x, batch_size=len(x)), masker)
    seconds, _ = timed(lambda: explainer(image[None].astype(np.float32), max_evals=budget, batch_size=50,
                                         outputs=shap.Explanation.argsort.flip[:3], silent=True))
    return seconds


def shap_kernel_seed_loop(classifier, image, samples: int) -> float:
    segments = slic(image, n_segments=50, compactness=30, sigma=3, start_label=0)
    background = image.mean(axis=(0, 1))

    def mask_image(zs: np.ndarray) -> np.ndarray:  # the seed notebook's loop, one mask at a time
        out = np.zeros((zs.shape[0],) + image.shape, dtype=np.float32)
        for i in range(zs.shape[0]):
            out[i] = image
            for j in range(zs.shape[1]):
                if zs[i, j] == 0:
                    out[i][segments == j] = background
        return out

    players = int(segments.max()) + 1
    explainer = shap.KernelExplainer(lambda z: classifier.predict(mask_image(z), batch_size=len(z)),
                                     np.zeros((1, players)))
    seconds, _ = timed(lambda: explainer.shap_values(np.ones((1, players)), nsamples=samples, silent=True))
    return seconds


def shap_gradient(classifier, image, samples: int) -> float:
    references = torch.from_numpy(make_background(classifier, image, "auto", 16)).permute(0, 3, 1, 2)
    x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]
    explainer = shap.GradientExplainer(classifier.module, references)
    seconds, _ = timed(lambda: explainer.shap_values(x, nsamples=samples, ranked_outputs=3))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller budgets (a smoke run)")
    parser.add_argument("--models", nargs="*", default=list(CASES))
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args()
    base_scale = 0.2 if args.quick else 1.0
    lines = [f"# Benchmarks\n\nMeasured {time.strftime('%Y-%m-%d')} on {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cores, torch {torch.__version__} on the CPU, one run of `python -m bench.run"
             f"{' --quick' if args.quick else ''}`. Ratios compare times measured in this run.\n"]
    for model_name in args.models:
        classifier = load_classifier(model_name)
        image = classifier.prepare(load_image(ROOT / CASES[model_name]))
        explain(classifier, image, "partition", top_k=1, max_evals=20)  # warm-up: numba, caches
        batch, throughput = best_throughput(classifier, image)
        # A slow model (VGG16 at 240 px runs at a few images/s on 2 cores) gets 30 % of the budgets, so the
        # whole run stays under 15 minutes; ratios are per equal number of evaluations either way.
        scale = base_scale * (1.0 if throughput >= 10 else 0.3)
        budgets = {"partition": int(500 * scale), "kernel": int(1000 * scale), "gradient": int(200 * scale)}
        lines.append(f"\n## {model_name}\n\nForward throughput at its best batch size ({batch}): "
                     f"{throughput:.1f} images/s. Budgets at {scale:.0%} of the issue's (partition 500, kernel "
                     "1000, gradient 200).\n")
        lines.append("| method | budget | our seconds | model evaluations | floor seconds | × floor | "
                     "shap's code seconds | × shap |")
        lines.append("|---|---|---|---|---|---|---|---|")
        runs = [
            ("partition", budgets["partition"], {}, lambda: shap_partition(classifier, image, budgets["partition"])),
            ("kernel", budgets["kernel"], {"segments": 50},
             lambda: shap_kernel_seed_loop(classifier, image, budgets["kernel"])),
            ("permutation", budgets["kernel"], {"segments": 50}, None),
            ("gradient", budgets["gradient"], {}, lambda: shap_gradient(classifier, image, budgets["gradient"])),
            ("deep", 8, {}, None),
        ]
        for method, budget, params, reference in runs:
            ours, result = timed(lambda: explain(classifier, image, method, top_k=3, max_evals=budget,
                                                 params=params))
            floor = result.n_evals / throughput
            shap_seconds = reference() if reference is not None else None
            shap_cell = f"{shap_seconds:.1f} | {ours / shap_seconds:.2f}" if shap_seconds else "– | –"
            lines.append(f"| {method} | {budget} | {ours:.1f} | {result.n_evals} | {floor:.1f} | "
                         f"{ours / floor:.2f} | {shap_cell} |")
            print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
