"""The PDF report's appendix: the numbers and settings behind the plain words (areas under the curves, every
method's parameters with its additivity error, the weights) and the model card."""

from __future__ import annotations

from typing import Any

import numpy as np

from viz.report_layout import fit, latin1, section


def appendix(pdf: Any, contents: Any) -> None:
    """The numbers and settings behind the plain words: the areas under the curves, every method's parameters
    (with its additivity error), the weights and the model card."""
    section(pdf, "Appendix: technical details", keep=40)
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(
        0,
        4.5,
        latin1(f"Model: {contents.model_title} (weights {contents.weights_digest}); {contents.model_summary}"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(1)
    _scores_table(pdf, contents)
    _settings(pdf, contents)
    _model_card(pdf, contents)


SCORE_FIELDS = (
    ("deletion", "deletion_auc"),
    ("random", "random_deletion_auc"),
    ("insertion", "insertion_auc"),
    ("random", "random_insertion_auc"),
    ("equal: MoRF", "equal_morf_auc"),
    ("equal: LeRF", "equal_lerf_auc"),
)


def _scores_table(pdf: Any, contents: Any) -> None:
    """Areas under the deletion and insertion curves (own masker, and on equal terms), per method, averaged over
    the explained classes; the whole table on one page with its header."""
    widths = [40] + [21.5] * len(SCORE_FIELDS)
    fit(pdf, 7 + 6 * (len(contents.methods) + 1) + 14)
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(
        0, 7, "Faithfulness: areas under the curves (mean over the explained classes)", new_x="LMARGIN", new_y="NEXT"
    )
    pdf.set_font("Helvetica", "B", 8)
    for label, w in zip(["method", *(label for label, _ in SCORE_FIELDS)], widths, strict=True):
        pdf.cell(w, 6, label, border=1)
    pdf.ln()
    pdf.set_font("Helvetica", "", 8)
    for method in contents.methods:
        means = [float(np.mean([getattr(score, field) for score in method.scores])) for _, field in SCORE_FIELDS]
        for value, w in zip([method.title, *(f"{mean:.3f}" for mean in means)], widths, strict=True):
            pdf.cell(w, 6, latin1(value), border=1)
        pdf.ln()
    pdf.set_font("Helvetica", "", 7.5)
    legend = (
        "Deletion: the class's probability as the most important regions are removed first (lower is better); "
        "insertion: as they are added first (higher is better); each under the method's own masker, beside a "
        "random order. Equal terms: the same 16-pixel blocks for every method, filled in from their neighbours "
        "(noisy linear imputation, ROAD), the most relevant first (MoRF, lower is better) or the least relevant "
        "first (LeRF, higher is better)."
    )
    pdf.multi_cell(0, 3.6, latin1(legend), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)


def _settings(pdf: Any, contents: Any) -> None:
    """Every method's settings, as it recorded them (the additivity error among them)."""
    fit(pdf, 20)
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(0, 7, "Settings of each method", new_x="LMARGIN", new_y="NEXT")
    for method in contents.methods:
        settings = "; ".join(f"{key}: {value}" for key, value in method.details.items())
        fit(pdf, 12)
        pdf.set_font("Helvetica", "B", 8)
        pdf.cell(0, 4, latin1(method.title), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 7.5)
        pdf.multi_cell(0, 3.6, latin1(settings), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)


def _model_card(pdf: Any, contents: Any) -> None:
    """The model's card, where the report carries one."""
    if not contents.card:
        return
    fit(pdf, 20)
    pdf.ln(1)
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(0, 7, "Model card", new_x="LMARGIN", new_y="NEXT")
    for heading, text in contents.card:
        fit(pdf, 8)
        pdf.set_font("Helvetica", "B", 8)
        pdf.cell(30, 4, latin1(heading))
        pdf.set_font("Helvetica", "", 8)
        pdf.multi_cell(0, 4, latin1(text), new_x="LMARGIN", new_y="NEXT")
