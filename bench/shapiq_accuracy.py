"""shapiq's Shapley value approximators on the stored exact games of ``bench/exact_tables.py``.

The other side of ``bench/kernel_accuracy.py``: the same five 12–16-superpixel games (every coalition's output,
``bench/data/*.npz``), the same budgets and seeds and the same error (per class ‖φ̂ − φ‖ / ‖φ‖ against the exact
values), for shapiq 1.8's approximators. shapiq needs Python ≥ 3.12 and the app's .venv is 3.11, so this runs
in ``.venv-shapiq`` (``bash bench/shapiq_env.sh``) and imports nothing of ours: the reader below is plain numpy,
and ``bench/kernel_accuracy.py`` imports it (shapiq itself is imported only inside :func:`main`'s helpers).

Every (game, budget, seed, class, approximator) is one row of ``bench/shapiq_accuracy[_quick].csv``, written as
it goes (a rerun skips the rows already there); ``python -m bench.kernel_accuracy --combine`` turns the rows
into the comparison table.

Run: bash bench/shapiq_env.sh && OMP_NUM_THREADS=1 .venv-shapiq/bin/python bench/shapiq_accuracy.py [--quick]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
import warnings
from collections.abc import Callable
from math import factorial
from pathlib import Path

# xgboost, lightgbm and scikit-learn's OpenMP oversubscribe a shared CPU badly; set before numpy loads.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
BUDGETS = (128, 256, 512, 1024, 2048)
SEEDS = 5
QUICK_GAMES = ("efficientnet_lite0__chelsea__15", "brain_tumor_vgg16__Te-gl_0010__14")
QUICK_BUDGETS = (128, 512, 2048)
QUICK_SEEDS = 2
FIELDS = ("game", "players", "budget", "seed", "class", "approximator", "error", "asked", "seconds")


def stored_games(names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """The stored exact tables by name (file stem): 2^S × K, row r ↔ the coalition of the bits of r."""
    paths = sorted(DATA.glob("*.npz"))
    tables = {path.stem: np.load(path)["table"].astype(np.float64) for path in paths}
    return {name: tables[name] for name in names} if names else tables


def players_of(table: np.ndarray) -> int:
    return int(round(np.log2(len(table))))


def exact_shapley(table: np.ndarray) -> np.ndarray:
    """S × K exact Shapley values of a stored table (the formula of explainers.methods.exact, in numpy)."""
    players = players_of(table)
    rows = np.arange(2**players)
    sizes = np.array([bin(r).count("1") for r in rows])
    weights = np.array([factorial(s) * factorial(players - s - 1) / factorial(players) for s in range(players)])
    values = np.zeros((players, table.shape[1]))
    for player in range(players):
        without = rows[(rows >> player) & 1 == 0]
        values[player] = weights[sizes[without]] @ (table[without | (1 << player)] - table[without])
    return values


def relative_error(estimate: np.ndarray, reference: np.ndarray) -> float:
    """‖estimate − reference‖ / ‖reference‖ (the definition of bench/kernel_accuracy.py)."""
    return float(np.linalg.norm(estimate - reference) / np.linalg.norm(reference))


class ColumnGame:
    """One class of a stored table as a game on bool coalition matrices; counts the distinct coalitions asked."""

    def __init__(self, column: np.ndarray, players: int) -> None:
        self.column, self.bits = column, 1 << np.arange(players)
        self.asked: set[int] = set()

    def __call__(self, coalitions: np.ndarray) -> np.ndarray:
        rows = np.atleast_2d(np.asarray(coalitions) > 0.5).astype(np.int64) @ self.bits
        self.asked.update(rows.tolist())
        return self.column[rows]


def approximators(players: int, seed: int) -> dict[str, Callable[[], object]]:
    """shapiq 1.8's SV approximators by the name the rows give them (each built on call)."""
    import shapiq  # shapiq lives in .venv-shapiq (bench/shapiq_env.sh)
    from sklearn.ensemble import HistGradientBoostingRegressor

    approximator = shapiq.approximator
    made: dict[str, Callable[[], object]] = {
        "RegressionMSR": lambda: approximator.RegressionMSR(n=players, index="SV", random_state=seed),
        "RegressionMSR-hgb": lambda: approximator.RegressionMSR(
            n=players, index="SV", proxy_model=HistGradientBoostingRegressor(random_state=seed), random_state=seed
        ),
        "KernelSHAP": lambda: approximator.KernelSHAP(n=players, random_state=seed),
        "KernelSHAP-paired": lambda: approximator.KernelSHAP(n=players, pairing_trick=True, random_state=seed),
        "LeverageSHAP": lambda: approximator.LeverageSHAP(n=players, random_state=seed),
        "PermutationSamplingSV": lambda: approximator.PermutationSamplingSV(n=players, random_state=seed),
        "SVARM": lambda: approximator.SVARM(n=players, random_state=seed),
        "StratifiedSamplingSV": lambda: approximator.StratifiedSamplingSV(n=players, random_state=seed),
    }
    if hasattr(approximator, "OddSHAP"):
        made["OddSHAP"] = lambda: approximator.OddSHAP(n=players, random_state=seed)
    return made


def register_hist_gradient_boosting() -> None:
    """shapiq 1.8 converts HistGradientBoostingRegressor trees (shapiq.tree) but its proxy route table does not
    list the class: route it like the other tree proxies (exact interventional TreeSHAP-IQ readout)."""
    from shapiq.approximator.proxy import _routes  # shapiq lives in .venv-shapiq (bench/shapiq_env.sh)

    name = "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor"
    _routes._extract_proxy_interactions.register(name)(_routes._extract_tree)


def estimate(make: Callable[[], object], game: ColumnGame, players: int, budget: int) -> np.ndarray:
    values = make().approximate(budget=budget, game=game)  # type: ignore[attr-defined]
    return np.array([values[(player,)] for player in range(players)])


def done_rows(path: Path) -> set[tuple[str, ...]]:
    if not path.is_file():
        return set()
    with path.open() as handle:
        return {(r["game"], r["budget"], r["seed"], r["class"], r["approximator"]) for r in csv.DictReader(handle)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="2 games, 2 seeds, budgets 128 512 2048")
    parser.add_argument("--budgets", type=int, nargs="*")
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--games", nargs="*", help="stored game names (bench/data/*.npz stems)")
    parser.add_argument("--approximators", nargs="*", help="names as the rows give them (default: all)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    budgets = args.budgets or (QUICK_BUDGETS if args.quick else BUDGETS)
    seeds = args.seeds or (QUICK_SEEDS if args.quick else SEEDS)
    names = tuple(args.games) if args.games else (QUICK_GAMES if args.quick else None)
    out = args.out or ROOT / "bench" / ("shapiq_accuracy_quick.csv" if args.quick else "shapiq_accuracy.csv")
    import shapiq  # shapiq lives in .venv-shapiq (bench/shapiq_env.sh)

    print(f"shapiq {shapiq.__version__}, Python {sys.version.split()[0]}, writing {out}", flush=True)
    register_hist_gradient_boosting()
    warnings.filterwarnings("ignore")
    done = done_rows(out)
    new_file = not out.is_file()
    started = time.perf_counter()
    with out.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        if new_file:
            writer.writeheader()
        for name, table in stored_games(names).items():
            players = players_of(table)
            reference = exact_shapley(table)
            for budget in budgets:
                totals: dict[str, list[float]] = {}
                for seed in range(seeds):
                    for label, make in approximators(players, seed).items():
                        if args.approximators and label not in args.approximators:
                            continue
                        for column in range(table.shape[1]):
                            key = (name, str(budget), str(seed), str(column), label)
                            if key in done:
                                continue
                            game = ColumnGame(table[:, column], players)
                            began = time.perf_counter()
                            values = estimate(make, game, players, budget)
                            error = relative_error(values, reference[:, column])
                            totals.setdefault(label, []).append(error)
                            row = (name, players, budget, seed, column, label, f"{error:.6f}", len(game.asked))
                            writer.writerow(
                                dict(zip(FIELDS, (*row, f"{time.perf_counter() - began:.3f}"), strict=True))
                            )
                        handle.flush()
                summary = {label: round(float(np.mean(errors)), 4) for label, errors in totals.items()}
                print(f"{name} {budget} ({time.perf_counter() - started:.0f} s): {summary}", flush=True)
    print(f"wrote {out} in {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
