"""What the faithfulness scores "on equal terms" cost per explanation panel, beside the explanation itself and
the older per-masker scores.

For each model × method (partition, permutation, kernel, deep, gradient; top-k 1, seed 0, each method's
default budget as Compare runs it), one explanation is timed, then ``explainers.faithfulness.equal_terms`` on
its own (with the arguments ``faithfulness`` gives it: the top class's row, steps 10, seed 0), then
``faithfulness`` as a whole, as the worker calls it after an explanation; the per-masker part is the whole
minus the equal-terms part. Model evaluations are counted as the rows through ``classifier.predict`` (the
explanation's own count is its ``n_evals``), and the imputation inside ``equal_terms`` is timed apart from the
model. Once per model, ``explainers.imputation.impute`` alone is timed at 10 %, 50 % and 90 % of the
equal-terms blocks removed.

One warm-up explanation per model loads it; its seconds per evaluation decide whether the superpixel methods
run at their default budgets or at 200 (when the tumour model's defaults would take too long). Torch runs on 2
threads. Writes ``bench/equal_terms_cost.md`` row by row, with the machine's load at the start and the end.

Run from the repository root (~5–15 min on 2 cores):

    timeout 1200 .venv/bin/python -m bench.equal_terms_cost
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import explainers.imputation as imputation
from explainers.faithfulness import EQUAL_GRID, block_features, equal_terms, faithfulness
from explainers.images import load_image
from explainers.methods import get_method
from explainers.request import explain
from models import load_classifier

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "equal_terms_cost.md"
CASES = (
    ("brain_tumor_vgg16", "assets/samples/mri/Te-gl_0010.jpg"),
    ("efficientnet_lite0", "assets/samples/photos/chelsea.png"),
)
METHODS = ("partition", "permutation", "kernel", "deep", "gradient")
SUPERPIXEL = ("partition", "permutation", "kernel")
LOWER_BUDGET = 200  # the superpixel methods' budget when the defaults would take too long
MODEL_SECONDS = 360.0  # the most one model's explanations and scores should take, projected after the warm-up
STEPS, SEED = 10, 0  # what faithfulness() passes to equal_terms()
FRACTIONS = (0.1, 0.5, 0.9)
THREADS = 2
_IMPUTE = imputation.impute  # the real one (main() times it inside equal_terms)


@dataclass
class Meter:
    """Rows through ``classifier.predict`` and the seconds spent there; seconds and calls of ``impute``."""

    rows: int = 0
    predict_s: float = 0.0
    impute_s: float = 0.0
    impute_calls: int = 0

    def reset(self) -> None:
        self.rows, self.predict_s, self.impute_s, self.impute_calls = 0, 0.0, 0.0, 0


@dataclass
class Row:
    model: str
    method: str
    budget: int
    explain_s: float = float("nan")
    explain_evals: int = 0
    masker_s: float = float("nan")
    masker_evals: int = 0
    equal_s: float = float("nan")
    equal_evals: int = 0
    equal_impute_s: float = float("nan")
    equal_model_s: float = float("nan")
    consistent: bool = True  # equal_terms() alone gave the curves faithfulness() reports
    skipped: str = ""


@dataclass
class Report:
    start_load: str
    budgets: dict[str, str] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    imputation: list[tuple[str, str, int, int, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    end_load: str = ""


def load() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def instrument(classifier: Any, meter: Meter) -> None:
    """Counts and times ``classifier.predict`` and ``explainers.imputation.impute`` (equal_terms imports it
    from the module at each call, so replacing the module's attribute reaches it)."""
    predict: Callable[..., np.ndarray] = classifier.predict

    def counted_predict(images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        start = time.perf_counter()
        result = predict(images, batch_size)
        meter.predict_s += time.perf_counter() - start
        meter.rows += 1 if np.ndim(images) == 3 else len(images)
        return result

    setattr(classifier, "predict", counted_predict)  # noqa: B010 (mypy refuses assigning to a method)


def timed_impute(meter: Meter) -> Callable[..., np.ndarray]:
    def impute(image: np.ndarray, removed: np.ndarray, seed: int = 0, noise: float = imputation.NOISE) -> np.ndarray:
        start = time.perf_counter()
        result = _IMPUTE(image, removed, seed=seed, noise=noise)
        meter.impute_s += time.perf_counter() - start
        meter.impute_calls += 1
        return result

    return impute


def measure(classifier: Any, image: Any, model: str, method: str, budget: int | None, meter: Meter) -> Row:
    spec = get_method(method)
    row = Row(model, method, spec.default_budget if budget is None else budget)
    meter.reset()
    start = time.perf_counter()
    try:
        explanation = explain(classifier, image, method, top_k=1, max_evals=budget, seed=SEED)
    except Exception as error:  # noqa: BLE001 (a method that cannot run is recorded, not fatal)
        row.skipped = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        return row
    row.explain_s = time.perf_counter() - start
    row.explain_evals = int(explanation.n_evals)
    class_id = int(explanation.classes[0])
    index = int(np.flatnonzero(explanation.classes == class_id)[0])

    meter.reset()
    start = time.perf_counter()
    fractions, morf, lerf = equal_terms(classifier, explanation, index, class_id, STEPS, SEED)
    row.equal_s = time.perf_counter() - start
    row.equal_evals, row.equal_impute_s, row.equal_model_s = meter.rows, meter.impute_s, meter.predict_s

    meter.reset()
    start = time.perf_counter()
    scores = faithfulness(classifier, explanation, steps=STEPS, seed=SEED)
    whole_s = time.perf_counter() - start
    row.masker_s = whole_s - row.equal_s
    row.masker_evals = meter.rows - row.equal_evals
    row.consistent = (
        scores.equal_fractions == fractions
        and np.allclose(scores.equal_morf, morf, atol=1e-6)
        and np.allclose(scores.equal_lerf, lerf, atol=1e-6)
    )
    return row


def imputation_alone(model: str, prepared: np.ndarray) -> list[tuple[str, str, int, int, float]]:
    """``impute`` on the model's prepared image at each share of the equal-terms blocks removed (random blocks,
    seed 0); the median of 3 calls."""
    height, width = prepared.shape[:2]
    features = block_features(height, width, max(1, min(height, width) // EQUAL_GRID))
    count = int(features.max()) + 1
    order = np.random.default_rng(SEED).permutation(count)
    rank = np.empty(count, dtype=np.int64)
    rank[order] = np.arange(count)
    results = []
    for fraction in FRACTIONS:
        removed = rank[features] < round(fraction * count)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            _IMPUTE(prepared.astype(np.float32), removed, seed=SEED)
            times.append(time.perf_counter() - start)
        results.append((model, f"{height}×{width}", round(100 * fraction), int(removed.sum()), float(np.median(times))))
    return results


def fmt(value: float, digits: int = 2) -> str:
    return "–" if np.isnan(value) else f"{value:.{digits}f}"


def write(report: Report) -> None:
    lines = [
        "# Faithfulness on equal terms: what it costs per panel",
        "",
        "Written by `timeout 1200 .venv/bin/python -m bench.equal_terms_cost` (see its docstring) on "
        f"{time.strftime('%Y-%m-%d %H:%M')}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} on {torch.get_num_threads()} threads. One run per row (no repeats): other "
        "processes on the same cores move single numbers by tens of per cent.",
        "",
        f"Load at the start: `{report.start_load}`",
        "",
    ]
    for model, budgets in report.budgets.items():
        lines.append(f"- {model}: {budgets}")
    lines += [
        "",
        "Top-k 1, seed 0. *explain* is `explain(...)`; *equal terms* is `equal_terms(...)` called alone with the "
        "arguments `faithfulness` gives it; *per-masker* is `faithfulness(...)` as a whole (what the worker runs "
        "per class) minus that. Evaluations: the explanation's `n_evals`; for the scores, rows through "
        "`classifier.predict`. *imputation* / *model* split the equal-terms seconds into `impute` calls and "
        "`predict` calls (the rest is ranking and stacking).",
        "",
        "| model | method | budget | explain s | explain evals | per-masker s | per-masker evals | equal-terms s "
        "| of which imputation s | of which model s | equal-terms evals | equal-terms ÷ explain |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report.rows:
        if row.skipped:
            lines.append(f"| {row.model} | {row.method} | {row.budget} | skipped: {row.skipped} |" + " |" * 8)
            continue
        flag = "" if row.consistent else " (curves differ from faithfulness()'s!)"
        lines.append(
            f"| {row.model} | {row.method} | {row.budget} | {fmt(row.explain_s)} | {row.explain_evals} "
            f"| {fmt(row.masker_s)} | {row.masker_evals} | {fmt(row.equal_s)}{flag} | {fmt(row.equal_impute_s)} "
            f"| {fmt(row.equal_model_s)} | {row.equal_evals} | {fmt(row.equal_s / row.explain_s)} |"
        )
    if report.imputation:
        lines += [
            "",
            "Imputation alone (`explainers.imputation.impute` on the model's prepared image, random equal-terms "
            "blocks, median of 3 calls):",
            "",
            "| model | image | blocks removed % | pixels removed | seconds |",
            "|---|---|---|---|---|",
        ]
        for model, size, percent, pixels, seconds in report.imputation:
            lines.append(f"| {model} | {size} | {percent} | {pixels} | {seconds:.3f} |")
    summary = summarize(report)
    if summary:
        lines += ["", "**Summary.** " + summary]
    lines += [f"- {note}" for note in report.notes]
    if report.end_load:
        lines += ["", f"Load at the end: `{report.end_load}`"]
    OUT.write_text("\n".join(lines) + "\n")


def summarize(report: Report) -> str:
    parts = []
    for model in report.budgets:
        done = [r for r in report.rows if r.model == model and not r.skipped]
        if not done:
            continue
        explain_s = sum(r.explain_s for r in done)
        equal_s = sum(r.equal_s for r in done)
        masker_s = sum(r.masker_s for r in done)
        impute_s = sum(r.equal_impute_s for r in done)
        model_s = sum(r.equal_model_s for r in done)
        skipped = [r.method for r in report.rows if r.model == model and r.skipped]
        parts.append(
            f"{model}: the equal-terms scores took {equal_s:.1f} s over {len(done)} methods"
            f"{' (' + ', '.join(skipped) + ' skipped)' if skipped else ''}, {100 * equal_s / explain_s:.0f} % of "
            f"the explanations' {explain_s:.1f} s (the per-masker scores: {masker_s:.1f} s, "
            f"{100 * masker_s / explain_s:.0f} %); of the equal-terms seconds, {100 * impute_s / equal_s:.0f} % was "
            f"imputation and {100 * model_s / equal_s:.0f} % the model."
        )
    return " ".join(parts)


def main() -> None:
    torch.set_num_threads(THREADS)
    report = Report(start_load=load())
    meter = Meter()
    imputation.impute = timed_impute(meter)
    for model, path in CASES:
        classifier = load_classifier(model)
        instrument(classifier, meter)
        image = load_image(ROOT / path)
        # Warm-up: one small explanation loads the model and its runtime; its seconds per evaluation project the
        # run at default budgets.
        meter.reset()
        start = time.perf_counter()
        explain(classifier, image, "partition", top_k=1, max_evals=40, seed=SEED)
        per_eval = (time.perf_counter() - start) / max(meter.rows, 1)
        projected = per_eval * (
            sum(get_method(m).default_budget for m in SUPERPIXEL) + len(METHODS) * 8 * (STEPS + 1) + 3 * 64
        )
        budget: int | None = None
        if projected > MODEL_SECONDS:
            budget = LOWER_BUDGET
        report.budgets[model] = (
            f"warm-up {per_eval:.3f} s per evaluation (runtime {getattr(classifier, 'runtime', '?')}, batch "
            f"{getattr(classifier, 'batch_size', '?')}); projected {projected:.0f} s at default budgets, so the "
            + (
                f"superpixel methods run at {LOWER_BUDGET} evaluations (not their defaults)"
                if budget is not None
                else "superpixel methods run at their default budgets"
            )
            + " — "
            + ", ".join(
                f"{m} {budget if budget is not None and m in SUPERPIXEL else get_method(m).default_budget} "
                f"{get_method(m).budget_meaning}"
                for m in METHODS
            )
        )
        write(report)
        for method in METHODS:
            row = measure(classifier, image, model, method, budget if method in SUPERPIXEL else None, meter)
            report.rows.append(row)
            print(row, flush=True)
            write(report)
        report.imputation += imputation_alone(model, classifier.prepare(image.pixels))
        write(report)
    imputation.impute = _IMPUTE
    report.end_load = load()
    write(report)
    print(OUT.read_text())


if __name__ == "__main__":
    main()
