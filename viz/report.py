"""A report to keep, as a PDF (fpdf2): the image as shown, the verdict and top-k, the methods' maps on one scale
with a colour bar, faithfulness scores, every parameter, the model's summary and weights digest, the date, and
"For research use only; not a diagnosis". Nothing identifying a patient: the scan is named by its digest.

Pure presentation: the page and the command line gather the explanations and scores and call
:func:`report_pdf`.
"""

from __future__ import annotations

import datetime as _dt
import io
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from PIL import Image

from viz.card import RESEARCH_NOTICE as NOTICE
from viz.panels import percent
from viz.render import grid_png
# fpdf2's core fonts are Latin-1: the few other characters we write are spelt out.
_LATIN1 = {"·": "-", "–": "-", "—": "-", "×": "x", "≈": "~", "↓": "(lower is better)", "↑": "(higher is better)",
           "ρ": "rho", "±": "+/-", "“": '"', "”": '"', "’": "'", "…": "..."}


def _text(value: Any) -> str:
    text = str(value)
    for character, replacement in _LATIN1.items():
        text = text.replace(character, replacement)
    return text.encode("latin-1", "replace").decode("latin-1")


@dataclass(frozen=True)
class ReportMethod:
    """One method's part of the report."""

    title: str
    maps: Sequence[np.ndarray]  # one per explained class, in the report's class order
    scores: Sequence[Any]  # explainers.faithfulness.Faithfulness per class
    details: dict[str, Any]  # budget, evaluations, seconds, parameters, additivity error


def report_pdf(*, image: np.ndarray, image_name: str, model_title: str, model_summary: str, weights_digest: str,
               class_names: Sequence[str], probs: np.ndarray, classes: Sequence[int], methods: Sequence[ReportMethod],
               limit: float, when: _dt.datetime | None = None, card: Sequence[tuple[str, str]] = (),
               warning: str | None = None, unit: str = "SHAP value", note: str | None = None) -> bytes:
    """The PDF's bytes. ``card``: the model card's rows; ``warning``: the out-of-domain sentence, if any;
    ``unit``: what the maps' values are (each region's total, e.g. "pp per region"); ``note``: a sentence under
    the maps (what a hidden background held)."""
    from fpdf import FPDF

    when = when or _dt.datetime.now(_dt.timezone.utc)
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(_text(f"Explanation report: {image_name}"))
    pdf.set_creator("SHAP Image Studio")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 9, _text("SHAP Image Studio: explanation report"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 11)
    pdf.set_text_color(170, 20, 20)
    pdf.cell(0, 7, NOTICE, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(0, 5, _text(f"{image_name} · {when:%Y-%m-%d %H:%M} UTC · model {model_title} (weights "
                               f"{weights_digest}) · {model_summary}"), new_x="LMARGIN", new_y="NEXT")
    if warning:
        pdf.set_font("Helvetica", "B", 9)
        pdf.set_text_color(170, 90, 0)
        pdf.multi_cell(0, 5, _text(f"Warning: {warning}"), new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
    pdf.ln(2)

    # The image as shown beside the verdict and the top-k probabilities.
    top = pdf.get_y()
    pdf.image(_png(image), x=pdf.l_margin, y=top, w=55, h=55 * image.shape[0] / image.shape[1])
    pdf.set_xy(pdf.l_margin + 60, top)
    verdict = int(np.argmax(probs))
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 7, _text(f"Verdict: {class_names[verdict]} ({percent(probs[verdict])})"), new_x="LEFT", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    for c in np.argsort(-probs, kind="stable")[:5]:
        pdf.set_x(pdf.l_margin + 60)
        pdf.cell(45, 6, _text(class_names[int(c)]))
        pdf.set_fill_color(76, 120, 168)
        pdf.cell(max(0.5, 60 * float(probs[c])), 4.5, "", fill=True)
        pdf.cell(0, 6, _text(f"  {percent(probs[c])}"), new_x="LEFT", new_y="NEXT")
    pdf.set_y(max(pdf.get_y(), top + 55 * image.shape[0] / image.shape[1]) + 4)

    # The maps: rows are the explained classes, columns the methods, one colour scale and its bar.
    grid = grid_png(image, [(method.title, list(method.maps)) for method in methods],
                    [class_names[c] for c in classes], [limit] * len(classes), panel=160, colorbar=True,
                    unit=unit)
    width = pdf.w - pdf.l_margin - pdf.r_margin
    picture = Image.open(io.BytesIO(grid))
    height = width * picture.height / picture.width
    if pdf.get_y() + height > pdf.h - pdf.b_margin:
        pdf.add_page()
    pdf.image(io.BytesIO(grid), x=pdf.l_margin, w=width)
    pdf.set_font("Helvetica", "", 8)
    pdf.multi_cell(0, 4, _text(f"Red raises the class, blue lowers it; each region is coloured by its total, one "
                               f"scale for every panel (±{limit:.3g} {unit}).{note or ''}"),
                   new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)

    # Faithfulness: deletion and insertion AUC beside a random order, per method, averaged over the classes.
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, "Faithfulness (mean over the explained classes)", new_x="LMARGIN", new_y="NEXT")
    header = ["method", "deletion AUC", "random", "insertion AUC", "random", "additivity error"]
    widths = [40, 28, 22, 28, 22, 35]
    pdf.set_font("Helvetica", "B", 9)
    for label, w in zip(header, widths):
        pdf.cell(w, 6, label, border=1)
    pdf.ln()
    pdf.set_font("Helvetica", "", 9)
    for method in methods:
        mean = lambda field: float(np.mean([getattr(score, field) for score in method.scores]))  # noqa: E731
        cells = [method.title, f"{mean('deletion_auc'):.3f}", f"{mean('random_deletion_auc'):.3f}",
                 f"{mean('insertion_auc'):.3f}", f"{mean('random_insertion_auc'):.3f}",
                 f"{float(method.details.get('additivity error', float('nan'))):.1e}"]
        for value, w in zip(cells, widths):
            pdf.cell(w, 6, _text(value), border=1)
        pdf.ln()
    pdf.set_font("Helvetica", "", 8)
    pdf.multi_cell(0, 4, _text("Deletion: the probability as the most important superpixels are removed first "
                               "(lower is better); insertion: as they are added first (higher is better)."),
                   new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)

    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, "Parameters", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 8)
    for method in methods:
        settings = "; ".join(f"{key}: {value}" for key, value in method.details.items())
        pdf.multi_cell(0, 4, _text(f"{method.title}: {settings}"), new_x="LMARGIN", new_y="NEXT")
    if card:
        pdf.ln(2)
        pdf.set_font("Helvetica", "B", 11)
        pdf.cell(0, 7, "Model card", new_x="LMARGIN", new_y="NEXT")
        for heading, text in card:
            pdf.set_font("Helvetica", "B", 8)
            pdf.cell(28, 4, _text(heading))
            pdf.set_font("Helvetica", "", 8)
            pdf.multi_cell(0, 4, _text(text), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 9)
    pdf.set_text_color(170, 20, 20)
    pdf.multi_cell(0, 5, _text(NOTICE + " The maps show what moved this model's output, not where a finding is."),
                   new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _png(image: np.ndarray) -> io.BytesIO:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    buffer.seek(0)
    return buffer


def build_report(cache: Any, classifier: Any, image: Any, explanations: dict[str, Any], top_k: int = 3,
                 accuracy: Any | None = None, hide_background: bool = False) -> bytes:
    """The report of ``image`` from its ``explanations`` (method name → Explanation, computed or cached): the
    pixel methods summed over the superpixel methods' superpixels, one colour scale fitted so that no panel of
    the verdict's row saturates, and the faithfulness scores (cached beside the explanations); the model card
    with ``accuracy`` (explainers.predictions.Accuracy, measured by the caller) and the out-of-domain warning.
    ``hide_background``: the maps leave out what lies outside the head (an MRI's), and the report says how much of
    each method's attribution lay there."""
    from explainers.faithfulness import cached_faithfulness, over_segments
    from explainers.methods import get_method
    from explainers.predictions import cached_prediction
    from explainers.superpixels import slic_segments
    from explainers.domain import domain_warning
    from explainers.masks import head_mask, outside_share
    from viz.card import card_rows, classes_in_words
    from viz.panels import hidden_note, map_unit, shown_limit, shown_map

    if not explanations:
        raise ValueError("a report needs at least one explanation")
    prepared = classifier.prepare(image.pixels)
    probs = cached_prediction(cache, classifier, image)
    first = next(iter(explanations.values()))
    classes = [int(c) for c in first.classes[:top_k]]
    basis = next((e.segments for e in explanations.values() if e.segments is not None), None)
    if basis is None and any(e.segments is None for e in explanations.values()):
        basis = slic_segments(prepared, 50)
    methods, maps_and_segments = [], []
    output = first.output
    spec = classifier.spec
    mask = head_mask(prepared) if hide_background else None
    for name, explanation in explanations.items():
        order = list(explanation.classes)
        maps = [explanation.values[order.index(c)] for c in classes]
        segments = explanation.segments if explanation.segments is not None else basis
        if explanation.segments is None and basis is not None:
            maps = [over_segments(values, basis) for values in maps]
        maps_and_segments.append([(values, segments) for values in maps])
        scores = [cached_faithfulness(cache, classifier, explanation, c) for c in classes]
        details = {"model evaluations": explanation.n_evals, "seed": explanation.seed,
                   "seconds": round(explanation.seconds, 1), "additivity error": f"{explanation.additivity_error:.1e}",
                   "values add up to": explanation.output, **explanation.params}
        shown = [shown_map(values, segments, output, mask) for values, segments in maps_and_segments[-1]]
        methods.append(ReportMethod(get_method(name).title.split(" (")[0], shown, scores, details))
    # One scale: no panel of the verdict's row saturates.
    limit = shown_limit([cells[0] for cells in maps_and_segments], output, mask=mask)
    hidden = hidden_note({method.title: outside_share(cells[0][0], mask)
                          for method, cells in zip(methods, maps_and_segments)} if mask is not None else {})
    summary = f"{spec.num_classes} classes: " + classes_in_words(spec)
    return report_pdf(image=prepared, image_name=image.display_name, model_title=spec.title, model_summary=summary,
                      weights_digest=classifier.weights_digest, class_names=spec.class_titles, probs=probs,
                      classes=classes, methods=methods, limit=limit, unit=map_unit(output, True),
                      card=card_rows(spec, accuracy, classifier.weights_digest),
                      warning=domain_warning(image, spec.input_kind), note=hidden)
