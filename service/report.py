"""The PDF report's contents, for the Compare page's download and ``python -m explainers report``: the verdict,
the maps on Compare's grid (pixel methods over superpixels, one scale fitted to the verdict's row), the scores,
the parameters, the model card and the out-of-domain warning. Here the model may run (a verdict or a score not
cached yet); viz.report only draws what this gathers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
from viz.report import ReportContents, ReportMethod, report_pdf


def report_contents(
    cache: Any,
    classifier: Classifier,
    image: InputImage,
    explanations: Mapping[str, Explanation],
    top_k: int = 3,
    accuracy: Accuracy | None = None,
    hide_background: bool = False,
) -> ReportContents:
    """The report of ``image`` from its ``explanations`` (method name → Explanation, at least one): the verdict
    and the scores come from the cache, else the model. ``accuracy``: measured by the caller on the labelled
    samples. ``hide_background``: the maps leave out what lies outside the head (an MRI's), and the report says
    how much of each method's attribution lay there."""
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
    methods = []
    for column, (name, explanation) in enumerate(grid.explanations.items()):
        details = {
            "model evaluations": explanation.n_evals,
            "seed": explanation.seed,
            "seconds": round(explanation.seconds, 1),
            "additivity error": f"{explanation.additivity_error:.1e}",
            "values add up to": explanation.output,
            **explanation.params,
        }
        shown = [shown_map(row[column], grid.segments[name], grid.output, grid.mask) for row in grid.maps]
        methods.append(ReportMethod(short_title(name), shown, [scores[name, c] for c in grid.classes], details))
    return ReportContents(
        image=prepared,
        image_name=image.display_name,
        model_title=spec.title,
        model_summary=f"{spec.num_classes} classes: " + classes_in_words(spec),
        weights_digest=classifier.weights_digest,
        class_names=spec.class_titles,
        probs=cached_prediction(cache, explainable(classifier), image),
        classes=grid.classes,
        methods=methods,
        limit=grid.limits[0][0],
        unit=map_unit(grid.output, True),
        card=card_rows(spec, accuracy, classifier.weights_digest, trust_of(spec.name), method_titles()),
        warning=domain_warning(image, spec.policy.kind),
        note=hidden_note(hidden_shares(grid)),
    )


def report_file(
    cache: Any,
    classifier: Classifier,
    image: InputImage,
    explanations: Mapping[str, Explanation],
    top_k: int = 3,
    accuracy: Accuracy | None = None,
    hide_background: bool = False,
) -> bytes:
    """The report's PDF (see :func:`report_contents`)."""
    return report_pdf(report_contents(cache, classifier, image, explanations, top_k, accuracy, hide_background))
