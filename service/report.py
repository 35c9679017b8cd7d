"""The PDF report's contents, for the Compare page's download and ``python -m explainers report``: the verdict,
the maps on Compare's grid (pixel methods over superpixels, one scale fitted to the verdict's row), the scores,
the parameters, the model card and the out-of-domain warning. Here the model may run (a verdict or a score not
cached yet); viz.report only draws what this gathers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from explainers.contrast import REPLAYABLE, ContrastError, contrast_of
from explainers.domain import domain_warning
from explainers.explanation import Explanation
from explainers.images import InputImage
from explainers.masks import head_mask
from explainers.methods import method_titles
from explainers.predictions import Accuracy, cached_prediction
from explainers.superpixels import slic_segments
from models import Classifier
from models.trust import trust_of
from service.compare import SLIC_SEGMENTS, compare_grid, explainable, grid_scores, hidden_shares, short_title
from viz.card import card_rows, classes_in_words
from viz.panels import hidden_note, map_unit, shown_map
from viz.report import ReportContents, ReportContrast, ReportMethod, report_pdf

PASSES = "passes the randomisation check"
FAILS = "fails the randomisation check: its map barely changes when the model's top layer is replaced by noise"


def report_contents(
    cache: Any,
    classifier: Classifier,
    image: InputImage,
    explanations: Mapping[str, Explanation],
    top_k: int = 3,
    accuracy: Accuracy | None = None,
    hide_background: bool = False,
    contrast_against: int | None = None,
) -> ReportContents:
    """The report of ``image`` from its ``explanations`` (method name → Explanation, at least one): the verdict
    and the scores come from the cache, else the model. ``accuracy``: measured by the caller on the labelled
    samples. ``hide_background``: the maps leave out what lies outside the head (an MRI's), and the report says
    how much of each method's attribution lay there. ``contrast_against``: the class the verdict is contrasted
    with (by default the runner-up), drawn from each superpixel method's own evaluations."""
    if not explanations:
        raise ValueError("a report needs at least one explanation")
    spec = classifier.spec
    prepared = classifier.prepare(image.pixels)
    first = next(iter(explanations.values()))
    grid = compare_grid(
        spec,
        prepared,
        explanations,
        top_k,
        output=first.output,
        superpixels=lambda: slic_segments(prepared, SLIC_SEGMENTS),
        mask=head_mask(prepared) if hide_background else None,
    )
    scores = grid_scores(cache, classifier, grid)
    trust = trust_of(spec.name)
    titles = method_titles()
    methods = []
    for column, (name, explanation) in enumerate(grid.explanations.items()):
        details = {
            "model evaluations": explanation.n_evals,
            "seed": explanation.seed,
            "seconds": round(explanation.seconds, 1),
            "additivity error": f"{explanation.additivity_error:.1e}",
            **({"randomisation check": trust.methods[name].sentence()} if trust and name in trust.methods else {}),
            "values add up to": explanation.output,
            **explanation.params,
        }
        shown = [shown_map(row[column], grid.segments[name], grid.output, grid.mask) for row in grid.maps]
        measured = trust.methods.get(name) if trust is not None else None
        methods.append(
            ReportMethod(
                short_title(name),
                shown,
                [scores[name, c] for c in grid.classes],
                details,
                trust=None if measured is None else PASSES if measured.passes else FAILS,
                passes=measured.passes if measured is not None else None,
                recommended=trust is not None and trust.recommended == name,
            )
        )
    probs = cached_prediction(cache, explainable(classifier), image)
    against, contrasts, why_none = _contrasts(grid, probs, contrast_against)
    return ReportContents(
        image=prepared,
        image_name=image.display_name,
        model_title=spec.title,
        model_summary=f"{spec.num_classes} classes: " + classes_in_words(spec),
        weights_digest=classifier.weights_digest,
        class_names=spec.class_titles,
        probs=probs,
        classes=grid.classes,
        methods=methods,
        limit=grid.limits[0][0],
        unit=map_unit(grid.output, True),
        card=card_rows(spec, accuracy, classifier.weights_digest, trust, titles),
        warning=domain_warning(image, spec.policy.kind),
        note=hidden_note(hidden_shares(grid)),
        contrast_against=against,
        contrasts=contrasts,
        contrast_note=why_none,
    )


def _contrasts(grid: Any, probs: Any, against: int | None) -> tuple[int | None, list[ReportContrast], str | None]:
    """The verdict against ``against`` (default: the runner-up), by every superpixel method that can replay its
    evaluations; with none, the sentence why."""
    ranked = [int(c) for c in sorted(range(len(probs)), key=lambda c: -float(probs[c]))]
    if len(ranked) < 2:
        return None, [], None
    verdict, other = ranked[0], ranked[1] if against is None else int(against)
    contrasts, reasons = [], []
    for name, explanation in grid.explanations.items():
        if name not in REPLAYABLE:
            continue
        try:
            contrast = contrast_of(explanation, verdict, other)
        except ContrastError as error:
            reasons.append(str(error))
            continue
        values = shown_map(contrast.values, explanation.segments, "log-odds", grid.mask)
        contrasts.append(ReportContrast(short_title(name), values, contrast.total))
    why = None
    if not contrasts:
        why = (
            reasons[0]
            if reasons
            else (
                "Contrastive maps are drawn from the evaluations of Kernel SHAP, Permutation or exact Shapley values; "
                "add one of them to compare the verdict with another class."
            )
        )
    return other, contrasts, why


def report_file(
    cache: Any,
    classifier: Classifier,
    image: InputImage,
    explanations: Mapping[str, Explanation],
    top_k: int = 3,
    accuracy: Accuracy | None = None,
    hide_background: bool = False,
    contrast_against: int | None = None,
) -> bytes:
    """The report's PDF (see :func:`report_contents`)."""
    return report_pdf(
        report_contents(cache, classifier, image, explanations, top_k, accuracy, hide_background, contrast_against)
    )
