"""What goes back to the PACS for one scan (explainers.dicom_results): the Compare grid as a Secondary Capture
with its text burned in, the PDF report as an Encapsulated PDF and the findings as a Structured Report, made from
the same contents as the report (service.report), so the three agree; then stored with STOW-RS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from explainers.dicom_results import (
    NOTICE,
    Findings,
    MethodResult,
    encapsulated_pdf,
    secondary_capture,
    source_dataset,
    structured_report,
)
from explainers.explanation import Explanation
from explainers.images import InputImage
from models import Classifier
from service.report import report_contents
from viz.render import grid_png, with_banner
from viz.report import ReportContents, report_pdf

SCORES = {
    "deletion area": "deletion_auc",
    "insertion area": "insertion_auc",
    "equal terms, most relevant first": "equal_morf_auc",
    "equal terms, least relevant first": "equal_lerf_auc",
}


def findings_of(contents: ReportContents) -> Findings:
    names, probs = contents.class_names, contents.probs
    ranked = sorted(range(len(probs)), key=lambda c: -float(probs[c]))
    verdict = ranked[0]
    methods = [
        MethodResult(
            title=method.title,
            settings="; ".join(f"{key}: {value}" for key, value in method.details.items()),
            scores={label: float(getattr(method.scores[0], field)) for label, field in SCORES.items()},
            sanity=method.trust,
        )
        for method in contents.methods
    ]
    return Findings(
        model=contents.model_title,
        weights_digest=contents.weights_digest,
        verdict=names[verdict],
        probability=float(probs[verdict]),
        top=[(names[c], float(probs[c])) for c in ranked[:5]],
        methods=methods,
        unit=contents.unit,
        in_domain=contents.warning is None,
    )


def results_datasets(
    cache: Any,
    classifier: Classifier,
    image: InputImage,
    explanations: Mapping[str, Explanation],
    instance: Any,
    top_k: int = 3,
    hide_background: bool = False,
) -> list[Any]:
    """The three objects for ``instance`` (explainers.pacs.Instance, the scan's place on the PACS)."""
    contents = report_contents(cache, classifier, image, explanations, top_k, hide_background=hide_background)
    source = source_dataset(instance)
    grid = grid_png(
        contents.image,
        [(method.title, list(method.maps)) for method in contents.methods],
        [contents.class_names[c] for c in contents.classes],
        [contents.limit] * len(contents.classes),
        panel=224,
        colorbar=True,
        unit=contents.unit,
    )
    verdict = contents.class_names[int(contents.probs.argmax())]
    lines = [
        NOTICE,
        f"{contents.model_title}: {verdict} ({float(contents.probs.max()):.1%})"
        + ("" if contents.warning is None else " - NOT ITS DOMAIN, the verdict may mean nothing"),
        "Methods: " + ", ".join(method.title for method in contents.methods) + f"; values in {contents.unit}",
        "Red raised the class, blue lowered it; one scale for every panel.",
    ]
    title = f"Explanations ({', '.join(method.title for method in contents.methods)})"
    return [
        secondary_capture(source, with_banner(grid, lines), title),
        encapsulated_pdf(source, report_pdf(contents), "Explanation report (research use, not a diagnosis)"),
        structured_report(source, findings_of(contents)),
    ]
