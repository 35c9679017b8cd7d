"""A report to keep, as a PDF (fpdf2): the image as shown, the verdict and top-k, the methods' maps on one scale
with a colour bar, faithfulness scores, every parameter, the model's summary and weights digest, the date, and
"For research use only; not a diagnosis". Nothing identifying a patient: the scan is named by its digest.

Pure presentation: service.report gathers the explanations, the verdict and the scores (and runs the model where
they are missing) into a :class:`ReportContents`; :func:`report_pdf` only draws it.
"""

from __future__ import annotations

import datetime as _dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from viz.card import RESEARCH_NOTICE as NOTICE
from viz.card import verdict_text
from viz.panels import percent
from viz.render import grid_png

# fpdf2's core fonts are Latin-1: the few other characters we write are spelt out.
_LATIN1 = {
    "·": "-",
    "–": "-",
    "—": "-",
    "×": "x",
    "≈": "~",
    "↓": "(lower is better)",
    "↑": "(higher is better)",
    "ρ": "rho",
    "±": "+/-",
    "“": '"',
    "”": '"',
    "’": "'",
    "…": "...",
}


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


@dataclass(frozen=True)
class ReportContents:
    """Everything the report shows, gathered by service.report (the maps already on one basis and scale)."""

    image: np.ndarray  # the image as the model sees it
    image_name: str  # never an upload's file name
    model_title: str
    model_summary: str
    weights_digest: str
    class_names: Sequence[str]  # every class, in words
    probs: np.ndarray  # the verdict: every class's probability
    classes: Sequence[int]  # the explained classes: the maps' rows
    methods: Sequence[ReportMethod]
    limit: float  # the one colour scale, ±limit in ``unit``
    unit: str = "SHAP value"  # what the maps' values are (each region's total, e.g. "pp per region")
    card: Sequence[tuple[str, str]] = ()  # the model card's rows
    warning: str | None = None  # the out-of-domain sentence, if any
    note: str | None = None  # a sentence under the maps (what a hidden background held)
    when: _dt.datetime | None = None  # None: now


def report_pdf(contents: ReportContents) -> bytes:
    """The PDF's bytes: it only draws ``contents`` (no model runs here), section after section."""
    from fpdf import FPDF

    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(_text(f"Explanation report: {contents.image_name}"))
    pdf.set_creator("SHAP Image Studio")
    pdf.add_page()
    for section in (_heading, _verdict, _maps, _faithfulness, _parameters, _model_card):
        section(pdf, contents)
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 9)
    pdf.set_text_color(170, 20, 20)
    closing = NOTICE + " The maps show what moved this model's output, not where a finding is."
    pdf.multi_cell(0, 5, _text(closing), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _heading(pdf: Any, contents: ReportContents) -> None:
    """The title, the standing notice, what was explained with which model, and the domain warning if any."""
    when = contents.when or _dt.datetime.now(_dt.UTC)
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 9, _text("SHAP Image Studio: explanation report"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 11)
    pdf.set_text_color(170, 20, 20)
    pdf.cell(0, 7, NOTICE, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.set_font("Helvetica", "", 9)
    line = (
        f"{contents.image_name} · {when:%Y-%m-%d %H:%M} UTC · model {contents.model_title} (weights "
        f"{contents.weights_digest}) · {contents.model_summary}"
    )
    pdf.multi_cell(0, 5, _text(line), new_x="LMARGIN", new_y="NEXT")
    if contents.warning:
        pdf.set_font("Helvetica", "B", 9)
        pdf.set_text_color(170, 90, 0)
        pdf.multi_cell(0, 5, _text(f"Warning: {contents.warning}"), new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
    pdf.ln(2)


def _verdict(pdf: Any, contents: ReportContents) -> None:
    """The image as shown beside the verdict and the top-5 probabilities."""
    image, class_names, probs = contents.image, contents.class_names, contents.probs
    top = pdf.get_y()
    pdf.image(_png(image), x=pdf.l_margin, y=top, w=55, h=55 * image.shape[0] / image.shape[1])
    pdf.set_xy(pdf.l_margin + 60, top)
    verdict = int(np.argmax(probs))
    if contents.warning:  # out of the model's domain: the warning above, the verdict muted
        pdf.set_font("Helvetica", "", 10)
        pdf.set_text_color(120, 120, 120)
        line = verdict_text(contents.model_title, class_names[verdict], percent(probs[verdict]), False, False)
        pdf.multi_cell(95, 5, _text(line + "."), new_x="LEFT", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
    else:
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(
            0, 7, _text(f"Verdict: {class_names[verdict]} ({percent(probs[verdict])})"), new_x="LEFT", new_y="NEXT"
        )
    pdf.set_font("Helvetica", "", 10)
    for c in np.argsort(-probs, kind="stable")[:5]:
        pdf.set_x(pdf.l_margin + 60)
        pdf.cell(45, 6, _text(class_names[int(c)]))
        pdf.set_fill_color(76, 120, 168)
        pdf.cell(max(0.5, 60 * float(probs[c])), 4.5, "", fill=True)
        pdf.cell(0, 6, _text(f"  {percent(probs[c])}"), new_x="LEFT", new_y="NEXT")
    pdf.set_y(max(pdf.get_y(), top + 55 * image.shape[0] / image.shape[1]) + 4)


def _maps(pdf: Any, contents: ReportContents) -> None:
    """The maps: rows are the explained classes, columns the methods, one colour scale and its bar."""
    limit, unit = contents.limit, contents.unit
    grid = grid_png(
        contents.image,
        [(method.title, list(method.maps)) for method in contents.methods],
        [contents.class_names[c] for c in contents.classes],
        [limit] * len(contents.classes),
        panel=160,
        colorbar=True,
        unit=unit,
    )
    width = pdf.w - pdf.l_margin - pdf.r_margin
    picture = Image.open(io.BytesIO(grid))
    if pdf.get_y() + width * picture.height / picture.width > pdf.h - pdf.b_margin:
        pdf.add_page()
    pdf.image(io.BytesIO(grid), x=pdf.l_margin, w=width)
    pdf.set_font("Helvetica", "", 8)
    caption = (
        f"Red raises the class, blue lowers it; each region is coloured by its total, one "
        f"scale for every panel (±{limit:.3g} {unit}).{contents.note or ''}"
    )
    pdf.multi_cell(0, 4, _text(caption), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)


def _faithfulness(pdf: Any, contents: ReportContents) -> None:
    """Deletion and insertion AUC beside a random order, per method, averaged over the classes."""
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, "Faithfulness (mean over the explained classes)", new_x="LMARGIN", new_y="NEXT")
    header = ["method", "deletion AUC", "random", "insertion AUC", "random", "equal: MoRF", "equal: LeRF", "additivity"]
    widths = [34, 24, 15, 24, 15, 24, 24, 22]
    pdf.set_font("Helvetica", "B", 9)
    for label, w in zip(header, widths, strict=True):
        pdf.cell(w, 6, label, border=1)
    pdf.ln()
    pdf.set_font("Helvetica", "", 9)
    for method in contents.methods:
        means = {
            field: float(np.mean([getattr(score, field) for score in method.scores]))
            for field in (
                "deletion_auc",
                "random_deletion_auc",
                "insertion_auc",
                "random_insertion_auc",
                "equal_morf_auc",
                "equal_lerf_auc",
            )
        }
        cells = [
            method.title,
            *(f"{mean:.3f}" for mean in means.values()),
            f"{float(method.details.get('additivity error', float('nan'))):.1e}",
        ]
        for value, w in zip(cells, widths, strict=True):
            pdf.cell(w, 6, _text(value), border=1)
        pdf.ln()
    pdf.set_font("Helvetica", "", 8)
    legend = (
        "Deletion: the probability as the most important superpixels are removed first "
        "(lower is better); insertion: as they are added first (higher is better); each under the method's "
        "own masker. Equal terms: the same 16-pixel blocks for every method, filled in from their neighbours "
        "(noisy linear imputation), the most relevant first (MoRF, lower is better) or the least relevant "
        "first (LeRF, higher is better)."
    )
    pdf.multi_cell(0, 4, _text(legend), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)


def _parameters(pdf: Any, contents: ReportContents) -> None:
    """Every method's settings, as it recorded them."""
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, "Parameters", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 8)
    for method in contents.methods:
        settings = "; ".join(f"{key}: {value}" for key, value in method.details.items())
        pdf.multi_cell(0, 4, _text(f"{method.title}: {settings}"), new_x="LMARGIN", new_y="NEXT")


def _model_card(pdf: Any, contents: ReportContents) -> None:
    """The model's card, where the report carries one."""
    if not contents.card:
        return
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, "Model card", new_x="LMARGIN", new_y="NEXT")
    for heading, text in contents.card:
        pdf.set_font("Helvetica", "B", 8)
        pdf.cell(28, 4, _text(heading))
        pdf.set_font("Helvetica", "", 8)
        pdf.multi_cell(0, 4, _text(text), new_x="LMARGIN", new_y="NEXT")


def _png(image: np.ndarray) -> io.BytesIO:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    buffer.seek(0)
    return buffer
