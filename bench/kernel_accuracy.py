"""Kernel SHAP accuracy per evaluation: each estimator against exact Shapley values on real superpixel games.

1. The exact games of ``bench/exact_tables.py`` (EfficientNet-Lite0 and the tumour VGG16, 12 to 16
   superpixels; stored tables, checked against the CPU model first). Every estimator reads the same table,
   so the comparison costs no model evaluations; the budget counts the distinct coalitions an estimator
   asks for, the empty and full ones included.
2. digits_cnn at 50 superpixels, where 2^50 coalitions cannot be enumerated: the reference is the mean of two
   independent ``stratified`` runs of 100 000 evaluations each (their disagreement is printed as the
   reference's own error).

Every stored class is explained (the adjusted estimator adjusts all of them). A cell's error is the mean over
the classes of the relative L2 error ‖φ̂ − φ‖ / ‖φ‖, the median over seeds; beside it, the share of exact values
inside the default estimator's nominal 90 % intervals (explainers.errors). Writes ``bench/kernel_accuracy.md``.

Run: .venv/bin/python -m bench.kernel_accuracy [--seeds 5] [--budgets 128 256 512 1024 2048]
     [--surrogate FOLDS ROUNDS LEAVES RATE]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from bench.exact_tables import CASES, load_game
from explainers.errors import Z90
from explainers.images import load_image
from explainers.methods import kernel
from explainers.methods.kernel import ESTIMATORS, kernel_estimate
from explainers.superpixels import build_game
from models import Classifier, load_classifier

ROOT = Path(__file__).resolve().parents[1]
DIGIT = "assets/samples/digits/digit_7.png"
DEFAULT = "adjusted"  # the kernel method's default estimator
DIGIT_CLASSES = 3  # the digit's top classes explained (the reference costs 200 000 evaluations either way)


class TableGame:
    """v(z) read from an exact table (columns: the stored classes); remembers which coalitions were asked."""

    def __init__(self, table: np.ndarray, players: int):
        self.table, self.players = table, players
        self.bits = 1 << np.arange(players)
        self.asked: set[int] = set()

    def __call__(self, coalitions: np.ndarray) -> np.ndarray:
        rows = (np.asarray(coalitions) > 0.5).astype(np.int64) @ self.bits
        self.asked.update(rows.tolist())
        return self.table[rows]


class CountingGame:
    """A live game that counts the distinct coalitions asked of it by one estimator run."""

    def __init__(self, game: Callable[[np.ndarray], np.ndarray]) -> None:
        self.game = game
        self.asked: set[bytes] = set()

    def __call__(self, coalitions: np.ndarray) -> np.ndarray:
        coalitions = np.asarray(coalitions) > 0.5
        self.asked.update(np.packbits(row).tobytes() for row in coalitions)
        return self.game(coalitions)


def relative_error(estimate: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(estimate - reference) / np.linalg.norm(reference))


def errors_for(
    make_game, players: int, reference: np.ndarray, columns: np.ndarray, budget: int, seeds: int, estimators
) -> dict[str, float]:
    """Each estimator's error (the mean over ``columns`` of the relative error against ``reference``, S × K,
    median over seeds), and under "coverage" the default estimator's 90 % interval coverage."""
    result = {}
    for estimator in estimators:
        errors, hits = [], []
        for seed in range(seeds):
            game = make_game()
            values, standard = kernel_estimate(game, players, budget, seed, estimator, adjust=columns)
            if len(game.asked) > budget:
                raise AssertionError(f"{estimator} asked {len(game.asked)} coalitions on a budget of {budget}")
            errors.append(np.mean([relative_error(values[:, c], reference[:, i]) for i, c in enumerate(columns)]))
            if estimator == DEFAULT:
                assert standard is not None  # kernel_estimate returns standard errors unless errors=False
                hits += [np.abs(values[:, c] - reference[:, i]) <= Z90 * standard[:, c] for i, c in enumerate(columns)]
        result[estimator] = float(np.median(errors))
        if estimator == DEFAULT:
            result["coverage"] = float(np.mean(np.concatenate(hits)))
    return result


def table_rows(label: str, budgets, results: dict[int, dict[str, float]], estimators) -> list[str]:
    lines = [
        f"\n### {label}\n",
        "| budget | "
        + " | ".join(estimators)
        + " | "
        + " | ".join(f"{e} ÷ shap" for e in estimators if e != "shap")
        + f" | {DEFAULT} 90 % coverage |",
        "|---" * (2 * len(estimators) + 1) + "|",
    ]
    for budget in budgets:
        if budget not in results:
            continue
        row = results[budget]
        lines.append(
            f"| {budget} | "
            + " | ".join(f"{row[e]:.4f}" for e in estimators)
            + " | "
            + " | ".join(f"{row[e] / row['shap']:.2f}" for e in estimators if e != "shap")
            + f" | {row['coverage']:.0%} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budgets", type=int, nargs="*", default=[128, 256, 512, 1024, 2048])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--digits-reference", type=int, default=100_000)
    parser.add_argument("--out", default=str(ROOT / "bench" / "kernel_accuracy.md"))
    parser.add_argument(
        "--surrogate",
        type=float,
        nargs=4,
        metavar=("FOLDS", "ROUNDS", "LEAVES", "RATE"),
        help="the adjusted estimator's tree surrogate (default: the method's; scikit-learn's own "
        "defaults are 5 150 31 0.1)",
    )
    args = parser.parse_args()
    if args.surrogate:
        kernel.SURROGATE_FOLDS, kernel.SURROGATE_ITERATIONS, kernel.SURROGATE_LEAVES = map(int, args.surrogate[:3])
        kernel.SURROGATE_RATE = args.surrogate[3]
    estimators = ["shap", "paired", "stratified", "adjusted"]
    assert set(estimators) == set(ESTIMATORS)
    started = time.perf_counter()
    lines = [
        f"## Kernel SHAP accuracy per evaluation\n\nRelative L2 error against exact Shapley values, the mean "
        f"over every stored class (all of them explained), median of {args.seeds} seeds "
        "(`python -m bench.kernel_accuracy`). shap is KernelExplainer with `l1_reg=False`. Lower is better; "
        "the target is adjusted ÷ shap ≤ 0.5. The last column is the share of exact values inside the "
        "adjusted estimator's nominal 90 % intervals (its error bars)."
    ]
    classifiers: dict[str, Classifier] = {}
    for model, image_path, segments in CASES:
        classifier = classifiers.setdefault(model, load_classifier(model))
        exact = load_game(classifier, model, image_path, segments)
        reference = exact.shapley()
        results = {}
        for budget in args.budgets:
            if budget >= 2**exact.players:
                continue
            # partial binds this case's table now (a closure would read ``exact`` whenever it is called)
            results[budget] = errors_for(
                partial(TableGame, exact.table, exact.players),
                exact.players,
                reference,
                np.arange(exact.table.shape[1]),
                budget,
                args.seeds,
                estimators,
            )
            print(exact.name, budget, {k: round(v, 4) for k, v in results[budget].items()}, flush=True)
        label = (
            f"{model}, {Path(image_path).name}, {exact.players} superpixels, classes "
            f"{', '.join(classifier.class_names[int(c)] for c in exact.classes)} "
            f"(exact table checked against the CPU model to {exact.max_check_error:.0e})"
        )
        lines += table_rows(label, args.budgets, results, estimators)

    digits = load_classifier("digits_cnn")
    image = digits.prepare(load_image(ROOT / DIGIT).pixels)
    game = build_game(
        digits, image, segments=50, compactness=10.0, sigma=1.0, fill="auto", fill_constant=0.0, total=0, progress=None
    )
    players = game.players
    columns = np.argsort(-game(np.ones((1, players), bool))[0])[:DIGIT_CLASSES]
    runs = [
        kernel_estimate(game, players, args.digits_reference, 1000 + i, "stratified", errors=False)[0][:, columns]
        for i in range(2)
    ]
    reference = np.mean(runs, axis=0)
    noise = float(np.mean([relative_error(runs[0][:, i], runs[1][:, i]) for i in range(len(columns))])) / 2
    print(f"digits reference: {game.evaluations} evaluations, half-disagreement {noise:.4f}", flush=True)
    results = {}
    for budget in args.budgets:
        results[budget] = errors_for(
            lambda: CountingGame(game), players, reference, columns, budget, args.seeds, estimators
        )
        print("digits", budget, {k: round(v, 4) for k, v in results[budget].items()}, flush=True)
    lines += table_rows(
        f"digits_cnn, {Path(DIGIT).name}, {players} superpixels, classes "
        f"{', '.join(digits.class_names[int(c)] for c in columns)}; "
        f"reference: 2 × {args.digits_reference:,} evaluations "
        f"(their disagreement ÷ 2: {noise:.4f})",
        args.budgets,
        results,
        estimators,
    )
    lines.append(f"\nRun time {time.perf_counter() - started:.0f} s.")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
