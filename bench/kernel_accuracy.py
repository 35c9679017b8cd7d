"""Kernel SHAP accuracy per evaluation against exact Shapley values on a real superpixel game.

The exact table (2^S evaluations) is computed once; every estimator then reads the same game, so the
comparison costs no further model evaluations. Prints the median relative L2 error over seeds.

Run: .venv/bin/python -m bench.kernel_accuracy --model efficientnet_lite0 --image assets/samples/photos/chelsea.png --segments 12
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import shap

from explainers.explanation import top_classes
from explainers.images import load_image
from explainers.methods.exact import all_coalitions, shapley_from_table
from explainers.methods.kernel import paired_kernel_shap
from explainers.superpixels import build_game
from models import load_classifier


def shap_kernel(game, players: int, budget: int, seed: int) -> np.ndarray:
    np.random.seed(seed)
    explainer = shap.KernelExplainer(game, np.zeros((1, players)))
    values = np.asarray(explainer.shap_values(np.ones((1, players)), nsamples=budget - 2, l1_reg=False,
                                              silent=True))
    return values[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--image", default="assets/samples/photos/chelsea.png")
    parser.add_argument("--segments", type=int, default=12)
    parser.add_argument("--budgets", type=int, nargs="*", default=[128, 256, 512, 1024, 2048])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    classifier = load_classifier(args.model)
    image = classifier.prepare(load_image(args.image))
    game = build_game(classifier, image, segments=args.segments, compactness=10.0, sigma=1.0, fill="mean",
                      fill_constant=0.0, total=0, progress=None)
    players = game.players
    started = time.perf_counter()
    table = game(all_coalitions(players))
    exact = shapley_from_table(table, players)
    target = int(top_classes(table[-1], 1)[0])
    print(f"{args.model}: {players} superpixels, exact table in {time.perf_counter() - started:.0f} s, "
          f"class {classifier.class_names[target]}")
    print("| budget | shap KernelExplainer | paired (ours) | ratio |")
    print("|---|---|---|---|")
    reference = exact[:, target]
    for budget in args.budgets:
        if budget >= 2 ** players:
            continue
        errors = {}
        for name, estimator in (("shap", shap_kernel), ("paired", paired_kernel_shap)):
            runs = [estimator(game, players, budget, seed)[:, target] for seed in range(args.seeds)]
            errors[name] = float(np.median([np.linalg.norm(r - reference) / np.linalg.norm(reference)
                                            for r in runs]))
        print(f"| {budget} | {errors['shap']:.3f} | {errors['paired']:.3f} | "
              f"{errors['paired'] / errors['shap']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
