"""Which map to believe, per model and method, measured on the model's labelled samples: the randomisation
check (service.trust: ρ after the top layer and after every layer), faithfulness on equal terms (the gap between
removing the least and the most relevant blocks by linear imputation, explainers.faithfulness), stability (the
relative standard error of the sampled methods' values, from their error bars), and seconds. Then the
recommended method: among the methods that pass the check and come within 10 % of the widest gap on equal
terms, the fastest.

Rows go to ``bench/trust.csv`` as they are measured (a rerun skips what is there); the table to
``bench/trust.md``.

Run: .venv/bin/python -m bench.trust [--quick] [--models ...] [--samples N]
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from explainers.faithfulness import faithfulness
from explainers.images import load_image
from explainers.methods import get_method
from explainers.request import explain
from explainers.sanity import FAILS_ABOVE, survives
from models import labelled_samples, load_classifier, samples_for
from models.trust import TRUST_FILE
from service.trust import sanity_check

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("digits_cnn", "efficientnet_lite0", "brain_tumor_vgg16")
# Budgets small enough for two cores (the check explains each sample 2 + 4 times per method).
BUDGETS = {"partition": 200, "permutation": 300, "kernel": 300, "owen": 200, "deep": 4, "gradient": 16}
TIE = 0.1  # gaps on equal terms within 10 % of the widest count as tied (two samples)
FIELDS = ("model", "method", "samples", "rho_top", "rho_all", "rho_one", "gap", "stability", "seconds")


def measure(model: str, method: str, samples: int) -> dict[str, object] | None:
    """One row, or None where the method refuses the model (said on stdout)."""
    classifier = load_classifier(model)
    refused = get_method(method).unsupported(classifier)
    if refused:
        print(f"{model} {method}: {refused}", flush=True)
        return None
    # The labelled samples (their file names give the class), else the model's own samples (the photos).
    chosen = labelled_samples(classifier.spec) or samples_for(classifier.spec)
    images = [load_image(s.path) for s in chosen[:samples]]
    budget = BUDGETS[method]
    started = time.perf_counter()
    explanations = [explain(classifier, image, method, top_k=1, max_evals=budget) for image in images]
    seconds = (time.perf_counter() - started) / len(images)
    gaps = [faithfulness(classifier, e).equal_gap for e in explanations]
    stability = [e.relative_error for e in explanations if e.relative_error is not None]
    sanity = sanity_check(classifier, images, method, budget)
    return {
        "model": model,
        "method": method,
        "samples": len(images),
        "rho_top": sanity.after_top,
        "rho_all": sanity.cascade[-1][1],
        "rho_one": sanity.one_layer[1],
        "gap": round(float(np.mean(gaps)), 4),
        "stability": round(float(np.mean(stability)), 4) if stability else "",
        "seconds": round(seconds, 1),
    }


def recommended(rows: list[dict[str, str]]) -> tuple[str, str]:
    """(method, why) for one model's rows: among the methods that pass the randomisation check, those within
    TIE of the widest gap on equal terms (closer than two samples can tell apart), the fastest."""
    passing = [row for row in rows if not survives(float(row["rho_top"]))]
    if not passing:
        best = max(rows, key=lambda row: float(row["gap"]))
        return best[
            "method"
        ], f"none passes the randomisation check; the widest gap on equal terms ({float(best['gap']):.3f})"
    widest = max(float(row["gap"]) for row in passing)
    close = [row for row in passing if float(row["gap"]) >= (1 - TIE) * widest]
    best = min(close, key=lambda row: float(row["seconds"]))
    others = ", ".join(row["method"] for row in close if row is not best)
    return best["method"], (
        f"passes the randomisation check (ρ {float(best['rho_top']):.2f} after the top layer), its gap on equal "
        f"terms ({float(best['gap']):.3f}) is within {TIE:.0%} of the widest of the {len(passing)} methods that "
        f"pass ({widest:.3f}), and it is the fastest of those" + (f" (also close: {others})" if others else "")
    )


def shipped(rows: list[dict[str, str]]) -> dict[str, dict]:
    """What models.trust reads: per model, each method's check and gap, and the recommended method."""
    result = {}
    for model in dict.fromkeys(row["model"] for row in rows):
        mine = [row for row in rows if row["model"] == model]
        method, why = recommended(mine)
        result[model] = {
            "measured": f"{time.strftime('%Y-%m-%d')}, {mine[0]['samples']} sample(s), `python -m bench.trust`",
            "methods": {
                row["method"]: {
                    "rho_top": float(row["rho_top"]),
                    "passes": not survives(float(row["rho_top"])),
                    "gap": float(row["gap"]),
                    "seconds": float(row["seconds"]),
                }
                for row in mine
            },
            "recommended": method,
            "why": why,
        }
    return result


def table(rows: list[dict[str, str]]) -> list[str]:
    lines = [
        "## Which map to believe: sanity, faithfulness on equal terms, stability, seconds (issue 34)",
        "",
        "`python -m bench.trust`: each model's labelled samples, else its own samples (the first N), each "
        "method at a small budget "
        f"({', '.join(f'{m} {b}' for m, b in BUDGETS.items())}). ρ: the mean Spearman correlation of the map's "
        "signed block totals with the map on a copy of the model whose weights are re-initialised (the top "
        f"layer; every layer; one middle layer alone); beyond ±{FAILS_ABOVE} after the top layer fails. Gap: the "
        "probability's area with the least relevant blocks removed first minus with the most relevant first, "
        "removal by noisy linear imputation (higher is better). Stability: the relative standard error of the "
        "values (sampled methods). Seconds: one explanation.",
        "",
        "| model | method | samples | ρ top layer | ρ every layer | ρ one layer | check | gap ↑ | stability | s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        check = "**fails**" if survives(float(row["rho_top"])) else "passes"
        lines.append(
            f"| {row['model']} | {row['method']} | {row['samples']} | {float(row['rho_top']):.2f} | "
            f"{float(row['rho_all']):.2f} | {float(row['rho_one']):.2f} | {check} | {float(row['gap']):.3f} | "
            f"{row['stability'] or '–'} | {row['seconds']} |"
        )
    lines += ["", "Recommended per model:", ""]
    for model in dict.fromkeys(row["model"] for row in rows):
        method, why = recommended([row for row in rows if row["model"] == model])
        lines.append(f"- **{model}: {method}**: {why}.")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--methods", nargs="*", default=list(BUDGETS))
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="digits only, one sample")
    args = parser.parse_args()
    models, samples = (["digits_cnn"], 1) if args.quick else (args.models, args.samples)
    samples_of = {"brain_tumor_vgg16": 1}  # about 9 images/s in PyTorch on two cores: one sample
    out = ROOT / "bench" / ("trust_quick.csv" if args.quick else "trust.csv")
    done = {(row["model"], row["method"]) for row in csv.DictReader(out.open())} if out.exists() else set()
    with out.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        if not done:
            writer.writeheader()
        for model in models:
            for method in args.methods:
                if (model, method) in done:
                    continue
                row = measure(model, method, min(samples, samples_of.get(model, samples)))
                if row is None:
                    continue
                writer.writerow(row)
                handle.flush()
                print(row, flush=True)
    rows = list(csv.DictReader(out.open()))
    (out.with_suffix(".md")).write_text("\n".join(table(rows)) + "\n")
    if not args.quick:
        TRUST_FILE.write_text(json.dumps(shipped(rows), indent=1) + "\n")
        print(f"wrote {TRUST_FILE}")
    print(f"wrote {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
