"""Budget "auto" against a fixed budget, on the bundled photos and MRIs: how many model evaluations the pages'
default target error saves, and what error each run reaches.

For each image and sampled method (kernel, permutation), one run at the method's default budget (500, the whole
budget spent) and one with budget "auto" (the pages' default target error, the same 500 as its most). The error
is the top class's relative standard error ‖standard errors‖ / ‖values‖ (explainers.errors), the quantity the
target bounds. Rows are printed as they come; the table goes to bench/auto_budget.md.

Run: .venv/bin/python -m bench.auto_budget [--target 0.1] [--mris 3] [--seeds 1]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from explainers.errors import relative_error
from explainers.explanation import Explanation
from explainers.images import load_image
from explainers.methods import get_method
from explainers.params import TARGET_PARAM
from explainers.request import explain
from models import load_classifier

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("kernel", "permutation")


def top_error(explanation: Explanation) -> float:
    """The explained top class's relative standard error."""
    assert explanation.segment_errors is not None and explanation.segment_values is not None
    known = relative_error(explanation.segment_errors[:1], explanation.segment_values[:1])
    return float("nan") if known is None else known


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=TARGET_PARAM.page_default, help="the target error")
    parser.add_argument("--mris", type=int, default=3, help="how many bundled MRIs (the tumour model is slow)")
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    images = {
        "efficientnet_lite0": sorted((ROOT / "assets/samples/photos").glob("*.png")),
        "brain_tumor_vgg16": sorted((ROOT / "assets/samples/mri").glob("*.jpg"))[:: max(1, 13 // args.mris)][
            : args.mris
        ],
    }
    rows = []
    for model, paths in images.items():
        classifier = load_classifier(model)
        for path in paths:
            image = load_image(path).pixels
            for method in METHODS:
                budget = get_method(method).default_budget
                for seed in range(args.seeds):
                    runs = {}
                    for target in (0.0, args.target):
                        started = time.perf_counter()
                        e = explain(
                            classifier,
                            image,
                            method,
                            top_k=1,
                            max_evals=budget,
                            seed=seed,
                            params={"target_error": target},
                        )
                        runs[target] = (e.n_evals, top_error(e), time.perf_counter() - started)
                    (fixed_n, fixed_error, fixed_s), (auto_n, auto_error, auto_s) = runs[0.0], runs[args.target]
                    row = (model, path.stem, method, seed, fixed_n, fixed_error, fixed_s, auto_n, auto_error, auto_s)
                    rows.append(row)
                    print(" | ".join(str(round(v, 4)) if isinstance(v, float) else str(v) for v in row), flush=True)
    lines = [
        "# Budget auto against a fixed budget",
        "",
        f"`python -m bench.auto_budget --target {args.target} --mris {args.mris} --seeds {args.seeds}` on "
        f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}. Fixed: the default budget "
        f"(500), spent whole. Auto: target relative error {args.target:g} (the pages' default), 500 at most. Error: "
        "the top class's relative standard error.",
        "",
        "| model | image | method | fixed: evaluations | fixed: error | auto: evaluations | auto: error | saved |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model, stem, method, _, fixed_n, fixed_error, _, auto_n, auto_error, _ in rows:
        lines.append(
            f"| {model} | {stem} | {method} | {fixed_n} | {fixed_error:.3f} | {auto_n} | {auto_error:.3f} "
            f"| {1 - auto_n / fixed_n:.0%} |"
        )
    for model in images:
        for method in METHODS:
            mine = [row for row in rows if row[0] == model and row[2] == method]
            if mine:
                fixed, auto = sum(row[4] for row in mine), sum(row[7] for row in mine)
                lines.append(
                    f"| **{model}** | all | {method} | {fixed} | {np.median([r[5] for r in mine]):.3f} "
                    f"(median) | {auto} | {np.median([r[8] for r in mine]):.3f} (median) | "
                    f"{1 - auto / fixed:.0%} |"
                )
    (ROOT / "bench" / "auto_budget.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
