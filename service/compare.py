"""Compare's work: the requests for a model and image, the grid's shared basis and colour limits, the faithfulness
scores, the ranking and the agreement, and the sentences that state them. The Compare page, ui/state (what the
Scans page counts as cached), the PDF report and the command line all go through here, so they ask for the same
explanations and draw them on the same scale."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from explainers.classifier import Classifier as Explainable
from explainers.explanation import Explanation
from explainers.faithfulness import Faithfulness, agreement, cached_faithfulness, over_segments
from explainers.images import InputImage
from explainers.masks import outside_share
from explainers.methods import ParameterError, get_method
from explainers.request import ExplanationRequest, build_request
from models import Classifier, ModelSpec
from models.trust import trust_of
from viz.panels import hidden_note, map_unit, shown_limit

# SLIC superpixels of the image when no superpixel method brings its own: the pixel methods' basis, the agreement
# and the per-superpixel download.
SLIC_SEGMENTS = 50

Settings = Mapping[str, tuple[int | None, Mapping[str, Any]]]  # method name → (budget, parameters), in order
Scores = dict[tuple[str, int], Faithfulness]  # (method name, class id) → its deletion and insertion curves


def explainable(classifier: Classifier) -> Explainable:
    """``classifier`` as explainers type it. It fulfils their protocol at run time; mypy does not accept its
    read-only properties for the protocol's plain attributes (explainers/classifier.py)."""
    return cast(Explainable, classifier)


def short_title(name: str) -> str:
    """A method's title without its details: "Kernel SHAP", not "kernel"."""
    return get_method(name).title.split(" (")[0]


@dataclass(frozen=True)
class CompareRequests:
    requests: dict[str, ExplanationRequest]  # method name → its request, in the chosen order
    refused: dict[str, str]  # method name → one sentence (ParameterError's): why it cannot run so


def compare_requests(
    classifier: Classifier, image: InputImage | str, settings: Settings, *, top_k: int, seed: int, output: str | None
) -> CompareRequests:
    """The requests for ``image`` (or its digest), one per method of ``settings``; a method that cannot run
    with its settings on this model is refused with its sentence instead. ``output`` None: the model's own."""
    requests, refused = {}, {}
    for name, (budget, params) in settings.items():
        try:
            requests[name] = build_request(
                explainable(classifier),
                image,
                name,
                params=dict(params),
                budget=budget,
                seed=seed,
                top_k=top_k,
                output=output,
            )
        except ParameterError as error:
            refused[name] = str(error)
    return CompareRequests(requests, refused)


def settings_caption(settings: Settings) -> str:
    """What each method runs with, in words."""
    return (
        "Each method runs with "
        + "; ".join(
            f"{short_title(name)} {budget} {get_method(name).budget_meaning}" for name, (budget, _) in settings.items()
        )
        + " (change them under “Budget and settings per method”)."
    )


@dataclass(frozen=True)
class Grid:
    """One image's ready explanations on one grid: rows are the first one's top-k classes, columns the methods."""

    spec: ModelSpec
    prepared: np.ndarray  # the image as the model sees it
    explanations: dict[str, Explanation]  # method name → explanation, in the chosen order
    classes: list[int]
    raw: list[list[np.ndarray]]  # rows × methods: each method's map of the row's class, as computed
    maps: list[list[np.ndarray]]  # the same on the grid's basis (pixel methods summed over it, when there is one)
    segments: dict[str, np.ndarray | None]  # method name → the regions its panels are coloured by
    basis: np.ndarray | None  # the superpixels the pixel methods were summed over, if they were
    limits: list[list[float]]  # rows × methods: each panel's colour limit, in the shown unit
    output: str  # "probability" or "log-odds"
    mask: np.ndarray | None  # the head, when an MRI's background is hidden
    per_row: bool

    @property
    def first(self) -> Explanation:
        return next(iter(self.explanations.values()))

    @property
    def one_basis(self) -> bool:
        """Whether every panel is coloured by regions (else pixel methods' units differ: one scale each)."""
        return all(segments is not None for segments in self.segments.values())

    def panels(self, row: int) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """(values, segments) of every panel of ``row``."""
        return [(values, self.segments[name]) for name, values in zip(self.explanations, self.maps[row], strict=True)]


def compare_grid(
    spec: ModelSpec,
    prepared: np.ndarray,
    explanations: Mapping[str, Explanation],
    top_k: int,
    *,
    output: str,
    superpixels: Callable[[], np.ndarray],
    over_superpixels: bool = True,
    per_row: bool = False,
    mask: np.ndarray | None = None,
) -> Grid:
    """The grid of ``explanations`` (at least one). ``superpixels``: the image's SLIC_SEGMENTS superpixels (made
    only when needed; the page caches them). ``over_superpixels``: the pixel methods are summed over the first
    superpixel method's superpixels (else those), so every panel is on one basis and one scale. The colour limit
    keeps every panel of the verdict's row unsaturated, one for the grid or one per row (``per_row``); other
    rows may saturate. Panels in mixed units (pixel methods per pixel) get a limit each."""
    explanations = dict(explanations)
    first = next(iter(explanations.values()))
    classes = [int(c) for c in first.classes[:top_k]]
    raw = [[e.values[list(e.classes).index(c)] for e in explanations.values()] for c in classes]
    basis = None
    if over_superpixels and any(e.segments is None for e in explanations.values()):
        basis = next((e.segments for e in explanations.values() if e.segments is not None), None)
        if basis is None:
            basis = superpixels()
    segments = {name: basis if e.segments is None else e.segments for name, e in explanations.items()}
    maps = [
        [
            over_segments(values, basis) if basis is not None and e.segments is None else values
            for e, values in zip(explanations.values(), row, strict=True)
        ]
        for row in raw
    ]
    panels = [[(values, segments[name]) for name, values in zip(explanations, row, strict=True)] for row in maps]
    columns = len(explanations)
    if not all(s is not None for s in segments.values()):
        limits = [[shown_limit([cell], output, mask=mask) for cell in row] for row in panels]
    elif per_row:
        limits = [[shown_limit(row, output, mask=mask)] * columns for row in panels]
    else:
        limits = [[shown_limit(panels[0], output, mask=mask)] * columns] * len(panels)
    return Grid(spec, prepared, explanations, classes, raw, maps, segments, basis, limits, output, mask, per_row)


def row_title(grid: Grid, row: int) -> str:
    class_id = grid.classes[row]
    return f"{grid.spec.class_title(class_id)} · p = {grid.first.probs[class_id]:.3f}"


def hidden_shares(grid: Grid) -> dict[str, float]:
    """Method title → the share of its attribution (the verdict's row) outside the head; empty when nothing is
    hidden."""
    if grid.mask is None:
        return {}
    return {
        short_title(name): outside_share(values, grid.mask)
        for name, values in zip(grid.explanations, grid.maps[0], strict=True)
    }


def grid_caption(grid: Grid) -> str:
    """The sentence under the grid: the colours, the scale, the basis, and what a hidden background holds."""
    unit = map_unit(grid.output, True)
    if not grid.one_basis:
        scale = "one per panel (pixel methods per pixel, superpixel methods per region: their units differ)"
    elif grid.per_row:
        scale = ", ".join(
            f"{grid.spec.class_title(c)} ±{row[0]:.2g} {unit}" for c, row in zip(grid.classes, grid.limits, strict=True)
        )
    else:
        scale = f"±{grid.limits[0][0]:.2g} {unit} for the whole grid"
    basis = (
        f" Pixel methods are summed over the same {int(grid.basis.max()) + 1} superpixels."
        if grid.basis is not None
        else ""
    )
    quantity = "probability" if grid.output == "probability" else "log-odds"
    return (
        f"Red raises the class's {quantity}, blue lowers it; each region is coloured by its value; colour scale "
        f"{scale}, fitted so that no panel of the verdict's row saturates (other rows may). Hover for each "
        f"superpixel's value.{basis}" + hidden_note(hidden_shares(grid))
    )


def grid_scores(cache: Any, classifier: Classifier, grid: Grid) -> Scores:
    """The deletion and insertion curves of every panel (cached beside the explanations; a miss runs the
    model)."""
    return {
        (name, c): cached_faithfulness(cache, explainable(classifier), explanation, c)
        for name, explanation in grid.explanations.items()
        for c in grid.classes
    }


def score_caption(score: Faithfulness, explanation: Explanation) -> str:
    """The line under a panel, with the method's randomisation check on this model where it was measured
    (models.trust)."""
    trust = trust_of(explanation.model)
    measured = None if trust is None else trust.methods.get(explanation.method)
    check = "" if measured is None else ("" if measured.passes else "⚠ ") + measured.sentence() + " · "
    return check + (
        f"deletion {score.deletion_auc:.2f} (random {score.random_deletion_auc:.2f}) · insertion "
        f"{score.insertion_auc:.2f} (random {score.random_insertion_auc:.2f}) · on equal terms: most relevant "
        f"first {score.equal_morf_auc:.2f}, least {score.equal_lerf_auc:.2f} · additivity "
        f"{explanation.additivity_error:.0e}"
    )


def ranking(grid: Grid, scores: Scores) -> list[dict[str, Any]]:
    """One row per method, the scores averaged over the grid's classes, the most faithful on equal terms first
    (the widest gap between removing the least and the most relevant blocks by linear imputation)."""

    def mean(name: str, field: str) -> float:
        return round(float(np.mean([getattr(scores[name, c], field) for c in grid.classes])), 3)

    rows = [
        {
            "method": short_title(name),
            "deletion AUC ↓": mean(name, "deletion_auc"),
            "insertion AUC ↑": mean(name, "insertion_auc"),
            "random deletion": mean(name, "random_deletion_auc"),
            "random insertion": mean(name, "random_insertion_auc"),
            "equal terms: most relevant first ↓": mean(name, "equal_morf_auc"),
            "equal terms: least relevant first ↑": mean(name, "equal_lerf_auc"),
            "equal terms: gap ↑": mean(name, "equal_gap"),
            "additivity error": f"{explanation.additivity_error:.1e}",
            "seconds": round(explanation.seconds, 1),
        }
        for name, explanation in grid.explanations.items()
    ]
    return sorted(rows, key=lambda row: -row["equal terms: gap ↑"])


def verdict_curves(grid: Grid, scores: Scores) -> dict[str, Faithfulness]:
    """Method name → the curves of the verdict's class (the first row)."""
    return {name: scores[name, grid.classes[0]] for name in grid.explanations}


def method_agreement(grid: Grid, superpixels: np.ndarray) -> tuple[np.ndarray, str]:
    """(the methods' Spearman correlation per superpixel for the verdict's class, the sentence saying so)."""
    matrix = agreement(grid.explanations, grid.classes[0], superpixels)
    return matrix, (
        f"Spearman rank correlation of per-superpixel attributions for "
        f"{grid.spec.class_title(grid.classes[0])} ({int(superpixels.max()) + 1} SLIC superpixels)."
    )
