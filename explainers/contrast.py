"""Contrastive maps: why class A rather than class B.

The map of the game v(S) = log p_A(S) − log p_B(S) (the log of the odds of A against B, the softmax's
z_A − z_B): its values add up to log p_A − log p_B of the whole image, less the same with every superpixel
hidden. Red regions push the model towards A and away from B.

A superpixel method's explanation keeps its evaluations (each coalition it asked for and the probabilities of
the most probable classes it gave: Explanation.evaluated*), so the contrast costs no model call: the method's
own ``solve`` is run again, with the same seed, on a game that replays those evaluations and has one more output
column, the contrast. Its other columns are the ones the explanation was computed from, so a method that decides
what to ask next from its outputs (budget "auto" stops on the top class's error) asks for the same coalitions.
A method whose choice of coalitions follows every output it explains (Owen's refinement) cannot be replayed; it
is refused in one sentence, as are the pixel methods (their contrast needs a run of its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from explainers.explanation import Explanation, pixel_map
from explainers.methods import SuperpixelMethod, get_method
from explainers.outputs import in_space

REPLAYABLE = ("kernel", "permutation", "exact")
_TINY = 1e-38  # as explainers.outputs: the smallest probability a log is taken of


class ContrastError(ValueError):
    """A contrast that cannot be drawn from an explanation; the message is one sentence."""


@dataclass(frozen=True)
class Contrast:
    """The map of log p(a) − log p(b): ``values`` (H × W) and ``segment_values`` (S) add up, with
    ``base_value`` (the log-ratio with every superpixel hidden), to ``total`` (the whole image's) within
    ``additivity_error``."""

    a: int
    b: int
    values: np.ndarray
    segment_values: np.ndarray
    base_value: float
    total: float
    additivity_error: float


def log_ratio(probs: np.ndarray, a: int, b: int) -> np.ndarray:
    """log p_a − log p_b of each row (or of one probability vector), float64."""
    p = np.asarray(probs, dtype=np.float64)
    return np.log(np.maximum(p[..., a], _TINY)) - np.log(np.maximum(p[..., b], _TINY))


class _ReplayGame:
    """The superpixel game of an explanation, answered from its stored evaluations: the explanation's own
    columns (the stored classes, in its output space) and the contrast's last. Counts evaluations as the
    original game did (the full and the empty coalition already asked)."""

    def __init__(self, explanation: Explanation, a: int, b: int):
        assert explanation.evaluated is not None and explanation.evaluated_probs is not None
        assert explanation.segments is not None and explanation.evaluated_classes is not None
        stored = [int(c) for c in explanation.evaluated_classes]
        probs = explanation.evaluated_probs.astype(np.float64)
        outputs = in_space(probs, explanation.output)
        contrast = log_ratio(probs, stored.index(a), stored.index(b))
        self.table = np.column_stack([outputs, contrast])
        self.rows = {bytes(row): i for i, row in enumerate(np.asarray(explanation.evaluated, np.uint8))}
        self.segments = explanation.segments
        self.pixels = explanation.image
        self.players = int(explanation.segments.max()) + 1
        self.progress = None
        self.total = explanation.n_evals
        self.asked: set[bytes] = set()
        for coalition in (np.ones(self.players, bool), np.zeros(self.players, bool)):
            self.asked.add(np.packbits(coalition).tobytes())

    @property
    def evaluations(self) -> int:
        return len(self.asked)

    def __call__(self, coalitions: np.ndarray) -> np.ndarray:
        keys = [np.packbits(row).tobytes() for row in np.asarray(coalitions) > 0.5]
        missing = [key for key in keys if key not in self.rows]
        if missing:
            raise ContrastError("this explanation's evaluations do not cover what the contrast needs")
        self.asked.update(keys)
        return self.table[[self.rows[key] for key in keys]]


def contrast_of(explanation: Explanation, a: int, b: int) -> Contrast:
    """The contrastive map of classes ``a`` against ``b`` from ``explanation``'s stored evaluations (no model
    call); ContrastError (one sentence) where it cannot be drawn."""
    method = explanation.method
    if a == b:
        raise ContrastError("A class contrasted with itself has no map; choose two different classes.")
    if explanation.evaluated is None or explanation.evaluated_classes is None or method not in REPLAYABLE:
        raise ContrastError(
            f"Contrastive maps are drawn from a superpixel method's evaluations ({', '.join(REPLAYABLE)}); "
            f"this {method} explanation has none to draw from."
        )
    stored = [int(c) for c in explanation.evaluated_classes]
    if a not in stored or b not in stored:
        raise ContrastError(f"Contrasts are kept for the {len(stored)} most probable classes; choose two of them.")
    solver = get_method(method)
    if not isinstance(solver, SuperpixelMethod) or explanation.segments is None:
        raise ContrastError(f"The {method} method has no superpixel game to replay.")
    game = _ReplayGame(explanation, a, b)
    params: dict[str, Any] = dict(explanation.params)
    own = {p.name: params[p.name] for p in solver.own_params if p.name in params}
    explained = np.array([stored.index(int(c)) for c in explanation.classes], dtype=np.int64)
    # The contrast's column is adjusted too where the estimator adjusts the explained classes (after them, so
    # the first explained class still drives budget "auto").
    solution = solver.solve(
        game,  # type: ignore[arg-type]  # a replay of a SuperpixelGame's evaluations, duck-typed
        int(params["max_evals"]),
        explanation.seed,
        np.append(explained, game.table.shape[1] - 1),
        **own,
    )
    segment_values = np.asarray(solution.values, dtype=np.float64)[:, -1]
    empty = game.rows[np.packbits(np.zeros(game.players, bool)).tobytes()]
    base, total = float(game.table[empty, -1]), float(log_ratio(explanation.probs, a, b))
    return Contrast(
        a=a,
        b=b,
        values=pixel_map(segment_values[None].astype(np.float32), explanation.segments)[0],
        segment_values=segment_values,
        base_value=base,
        total=total,
        additivity_error=abs(float(segment_values.sum()) + base - total),
    )


def class_index(class_names: tuple[str, ...] | list[str], text: str) -> int:
    """A class by its name (case-insensitive) or its number; ContrastError (one sentence) otherwise."""
    names = [name.lower() for name in class_names]
    if text.strip().lower() in names:
        return names.index(text.strip().lower())
    if text.strip().isdigit() and int(text) < len(class_names):
        return int(text)
    raise ContrastError(f"There is no class {text[:60]!r}; give a class name or a number below {len(class_names)}.")


def contrast_record(explanation: Explanation, class_names: tuple[str, ...] | list[str], against: str) -> dict:
    """The command line's ``contrast``: the verdict (the first explained class) against class ``against``."""
    a, b = int(explanation.classes[0]), class_index(class_names, against)
    contrast = contrast_of(explanation, a, b)
    return {
        "class": a,
        "label": class_names[a],
        "against": b,
        "against_label": class_names[b],
        "output": "log p(class) - log p(against)",
        "segment_values": [float(v) for v in contrast.segment_values],
        "base_value": contrast.base_value,
        "total": contrast.total,
        "additivity_error": contrast.additivity_error,
    }
