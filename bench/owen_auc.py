"""Owen values over the superpixel hierarchy (`owen`) against shap's Partition SHAP over rectangles with a
blur masker (`partition`), on deletion and insertion AUC at equal budgets.

Each explanation is scored for the model's top class by explainers.faithfulness, each under its own masker
(owen removes superpixels filled as its game fills them, partition removes 16 px blocks blurred as shap
blurs them), beside a random order of the same features. Lower deletion AUC and higher insertion AUC are
better. Prints a markdown table and writes it to bench/owen_auc.md.

Run: .venv/bin/python -m bench.owen_auc [--photos chelsea coffee] [--budgets 200 500] [--mri-budget 80]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from explainers.faithfulness import faithfulness
from explainers.images import load_image
from explainers.request import explain
from models import load_classifier

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("owen", "partition")
COLUMNS = (
    "model",
    "image",
    "class",
    "budget",
    "method",
    "evals",
    "deletion AUC ↓",
    "insertion AUC ↑",
    "random deletion",
    "random insertion",
    "seconds",
)


def score(model: str, images: list[Path], budgets: list[int], segments: int, warm_up: bool) -> list[dict]:
    classifier = load_classifier(model)
    if warm_up:  # shap's numba functions compile on first use, once per process
        explain(classifier, load_image(images[0]), "partition", top_k=1, max_evals=20)
        explain(classifier, load_image(images[0]), "owen", top_k=1, max_evals=20, params={"segments": 8})
    rows = []
    for path in images:
        image = load_image(path)
        for budget in budgets:
            for method in METHODS:
                params = {"segments": segments} if method == "owen" else {}
                e = explain(classifier, image, method, top_k=1, max_evals=budget, params=params)
                scores = faithfulness(classifier, e, steps=10)
                rows.append(
                    {
                        "model": model,
                        "image": path.stem,
                        "class": e.class_names[0],
                        "budget": budget,
                        "method": method,
                        "evals": e.n_evals,
                        "deletion": scores.deletion_auc,
                        "insertion": scores.insertion_auc,
                        "random_deletion": scores.random_deletion_auc,
                        "random_insertion": scores.random_insertion_auc,
                        "seconds": e.seconds,
                    }
                )
                print(
                    f"{model} {path.stem} {budget} {method}: deletion {scores.deletion_auc:.3f}, "
                    f"insertion {scores.insertion_auc:.3f} ({e.seconds:.0f} s)",
                    flush=True,
                )
    return rows


def table(rows: list[dict]) -> list[str]:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['image']} | {row['class']} | {row['budget']} | {row['method']} | "
            f"{row['evals']} | {row['deletion']:.3f} | {row['insertion']:.3f} | "
            f"{row['random_deletion']:.3f} | {row['random_insertion']:.3f} | {row['seconds']:.0f} |"
        )
    return lines


def summary(rows: list[dict]) -> list[str]:
    """Means over the images of each model and budget, and how often owen beats partition."""
    lines = [
        "| model | budget | method | mean deletion AUC ↓ | mean insertion AUC ↑ | deletion below random ↑ | "
        "insertion above random ↑ | better deletion | better insertion |",
        "|---" * 9 + "|",
    ]
    keys = sorted({(row["model"], row["budget"]) for row in rows})
    for model, budget in keys:
        chosen = {
            method: [r for r in rows if (r["model"], r["budget"], r["method"]) == (model, budget, method)]
            for method in METHODS
        }
        for method in METHODS:
            other = METHODS[1 - METHODS.index(method)]
            pairs = list(zip(chosen[method], chosen[other], strict=True))  # one row each per image
            better_deletion = sum(mine["deletion"] < theirs["deletion"] for mine, theirs in pairs)
            better_insertion = sum(mine["insertion"] > theirs["insertion"] for mine, theirs in pairs)
            lines.append(
                f"| {model} | {budget} | {method} | "
                f"{np.mean([r['deletion'] for r in chosen[method]]):.3f} | "
                f"{np.mean([r['insertion'] for r in chosen[method]]):.3f} | "
                f"{np.mean([r['random_deletion'] - r['deletion'] for r in chosen[method]]):.3f} | "
                f"{np.mean([r['insertion'] - r['random_insertion'] for r in chosen[method]]):.3f} | "
                f"{better_deletion}/{len(pairs)} | {better_insertion}/{len(pairs)} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", nargs="*", default=["chelsea", "coffee", "astronaut"])
    parser.add_argument("--budgets", type=int, nargs="*", default=[200, 500])
    parser.add_argument("--mris", nargs="*", default=["Te-gl_0010", "Te-me_0017"])
    parser.add_argument("--mri-budget", type=int, default=80, help="the tumour VGG16 runs ~3 images/s on 2 cores")
    parser.add_argument("--segments", type=int, default=50, help="owen's superpixel count (its default)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "owen_auc.md"))
    args = parser.parse_args()
    started = time.perf_counter()
    samples = ROOT / "assets" / "samples"
    rows = score(
        "efficientnet_lite0",
        [samples / "photos" / f"{name}.png" for name in args.photos],
        args.budgets,
        args.segments,
        warm_up=True,
    )
    photo_seconds = time.perf_counter() - started
    rows += score(
        "brain_tumor_vgg16",
        [samples / "mri" / f"{name}.jpg" for name in args.mris],
        [args.mri_budget],
        args.segments,
        warm_up=False,
    )
    total_seconds = time.perf_counter() - started
    text = [
        "# owen (superpixel hierarchy) against partition (shap's rectangles, blur) on deletion and insertion AUC",
        "",
        f"`python -m bench.owen_auc` on {platform.machine()}, {platform.system()}, CPU only; "
        f"{total_seconds / 60:.1f} min in all (photos {photo_seconds / 60:.1f} min, MRIs "
        f"{(total_seconds - photo_seconds) / 60:.1f} min). owen at its defaults ({args.segments} superpixels, "
        "fill auto: mean colour for photos, black for MRIs, merge_space 1); partition at its defaults "
        "(blur 128). The model's top class; 10 curve steps; each scored under its own masker, beside a random "
        "order of the same features. Lower deletion and higher insertion AUC are better; `evals` counts model "
        "evaluations of the explanation (the curves' 44 are extra). The two maskers remove differently (a "
        "blurred 16 px block against a superpixel's mean colour or black), so the raw areas mix the ranking "
        "with the masker: the gaps to the random order of the same masker compare the rankings alone.",
        "",
        "## Mean over the images",
        "",
        *summary(rows),
        "",
        "## Every explanation",
        "",
        *table(rows),
        "",
    ]
    print("\n".join(text))
    Path(args.out).write_text("\n".join(text), encoding="utf-8")


if __name__ == "__main__":
    main()
