"""A report a clinician keeps, as a PDF (fpdf2): the verdict (muted under the warning when the input is out of
the model's domain), how far to trust each map in plain words (the randomisation check; how much of the verdict
the map's top regions hold), the maps two to a row at print resolution on one scale with its whole, labelled
colour bar, the contrastive map where there is one, and in an appendix the numbers and settings (areas under the
curves, additivity errors, every parameter) and the model card. "For research use only; not a diagnosis".
Nothing identifying a patient: the scan is named by its digest. Tables are never split from their header, and
a block that does not fit starts the next page, so no page is left mostly empty by a forced break.

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

from viz.card import RESEARCH_NOTICE as NOTICE
from viz.card import verdict_text
from viz.panels import percent
from viz.report_appendix import appendix
from viz.report_figures import colour_bar_png, map_png, picture_png
from viz.report_layout import fit, latin1, section


@dataclass(frozen=True)
class ReportMethod:
    """One method's part of the report."""

    title: str
    maps: Sequence[np.ndarray]  # one per explained class, in the report's class order
    scores: Sequence[Any]  # explainers.faithfulness.Faithfulness per class
    details: dict[str, Any]  # budget, evaluations, seconds, parameters, additivity error
    trust: str | None = None  # the randomisation check in words ("passes …" / "fails …"), where measured
    passes: bool | None = None
    recommended: bool = False


@dataclass(frozen=True)
class ReportContrast:
    """A contrastive map: why the verdict rather than another class, by one method (log p(a) − log p(b))."""

    title: str  # the method's
    values: np.ndarray  # in ``unit``, per region
    total: float  # the whole image's log-ratio


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
    contrast_against: int | None = None  # the class the verdict is contrasted with
    contrasts: Sequence[ReportContrast] = ()
    contrast_note: str | None = None  # why there is no contrastive map, where there is none


MAP_MM = 75.0  # a map's width: two to a row (the text is 170 mm wide); MAP_PIXELS over it: 217 dpi
GAP_MM = 10.0
REMOVED = 0.2  # the plain-words score: what removing this share of the image (the map's top blocks) does


def report_pdf(contents: ReportContents) -> bytes:
    """The PDF's bytes: it only draws ``contents`` (no model runs here), section after section."""
    from fpdf import FPDF

    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_margins(20, 15, 20)
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(latin1(f"Explanation report: {contents.image_name}"))
    pdf.set_creator("SHAP Image Studio")
    pdf.add_page()
    for draw in (_heading, _verdict, _trust, _maps, _contrast, appendix):
        draw(pdf, contents)
    fit(pdf, 14)
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 9)
    pdf.set_text_color(170, 20, 20)
    closing = NOTICE + " The maps show what moved this model's output, not where a finding is."
    pdf.multi_cell(0, 5, latin1(closing), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _heading(pdf: Any, contents: ReportContents) -> None:
    """The title, the standing notice, what was explained with which model, and the domain warning if any."""
    when = contents.when or _dt.datetime.now(_dt.UTC)
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 9, latin1("Explanation report"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 11)
    pdf.set_text_color(170, 20, 20)
    pdf.cell(0, 7, NOTICE, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.set_font("Helvetica", "", 9)
    line = f"{contents.image_name} · {when:%Y-%m-%d %H:%M} UTC · {contents.model_title}"
    pdf.multi_cell(0, 5, latin1(line), new_x="LMARGIN", new_y="NEXT")
    if contents.warning:
        pdf.ln(1)
        pdf.set_font("Helvetica", "B", 10)
        pdf.set_text_color(170, 90, 0)
        pdf.multi_cell(0, 5, latin1(f"Warning: {contents.warning}"), new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
    pdf.ln(2)


def _verdict(pdf: Any, contents: ReportContents) -> None:
    """The image as shown beside the verdict and the top-5 probabilities."""
    image, class_names, probs = contents.image, contents.class_names, contents.probs
    side = 60.0
    height = side * image.shape[0] / image.shape[1]
    fit(pdf, height + 4)
    top = pdf.get_y()
    pdf.image(io.BytesIO(picture_png(image)), x=pdf.l_margin, y=top, w=side, h=height)
    left = pdf.l_margin + side + 6
    pdf.set_xy(left, top)
    verdict = int(np.argmax(probs))
    if contents.warning:  # out of the model's domain: the warning above, the verdict muted
        pdf.set_font("Helvetica", "", 10)
        pdf.set_text_color(120, 120, 120)
        line = verdict_text(contents.model_title, class_names[verdict], percent(probs[verdict]), False, False)
        pdf.multi_cell(pdf.w - pdf.r_margin - left, 5, latin1(line + "."), new_x="LEFT", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
    else:
        pdf.set_font("Helvetica", "B", 13)
        line = f"The model says: {class_names[verdict]} ({percent(probs[verdict])})"
        pdf.cell(0, 8, latin1(line), new_x="LEFT", new_y="NEXT")
    pdf.ln(1)
    pdf.set_font("Helvetica", "", 10)
    for c in np.argsort(-probs, kind="stable")[:5]:
        pdf.set_x(left)
        pdf.cell(40, 6, latin1(class_names[int(c)]))
        pdf.set_fill_color(76, 120, 168)
        pdf.cell(max(0.5, 50 * float(probs[c])), 4.5, "", fill=True)
        pdf.cell(0, 6, latin1(f"  {percent(probs[c])}"), new_x="LEFT", new_y="NEXT")
    pdf.set_y(max(pdf.get_y(), top + height) + 4)


def removal_words(score: Any, class_name: str) -> str:
    """The equal-terms score in plain words: what removing the fifth of the image the map ranks highest (and the
    fifth it ranks lowest) does to the class's probability."""
    fractions = np.asarray(score.equal_fractions, dtype=float)
    at = int(np.argmin(np.abs(fractions - REMOVED)))
    before, top, bottom = score.equal_morf[0], score.equal_morf[at], score.equal_lerf[at]
    share = 0.0 if before <= 0 else max(0.0, (before - top) / before)
    return (
        f"its top regions explain {share:.0%} of the verdict: removing the fifth of the image it ranks highest "
        f"takes {class_name} from {percent(before)} to {percent(top)}, removing the fifth it ranks lowest "
        f"leaves {percent(bottom)}"
    )


def times(log_ratio: float) -> str:
    """How many times as likely, in words a reader takes in at once."""
    ratio = float(np.exp(min(log_ratio, 700.0)))
    if ratio >= 1000:
        return "more than a thousand times"
    return f"{ratio:.1f} times" if ratio < 10 else f"{ratio:.0f} times"


def _ordered(contents: ReportContents) -> list[ReportMethod]:
    return sorted(contents.methods, key=lambda method: not method.recommended)


def _trust(pdf: Any, contents: ReportContents) -> None:
    """How far to trust each map, in plain words: the recommended method first."""
    section(pdf, "How far to trust these maps")
    verdict = contents.class_names[contents.classes[0]]
    for method in _ordered(contents):
        parts = [removal_words(method.scores[0], verdict)]
        if method.trust:
            parts.insert(0, method.trust)
        name = method.title + (" (recommended for this model)" if method.recommended else "")
        fit(pdf, 16)
        pdf.set_font("Helvetica", "B", 10)
        pdf.set_text_color(*((170, 20, 20) if method.passes is False else (0, 0, 0)))
        pdf.multi_cell(0, 5, latin1(name), new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
        pdf.set_font("Helvetica", "", 10)
        pdf.multi_cell(0, 5, latin1("It " + "; ".join(parts) + "."), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1.5)
    pdf.set_font("Helvetica", "", 8)
    legend = (
        "Regions are removed in small square blocks (a 14 x 14 grid), filled in from their surroundings the same "
        "way for every method, so the methods are compared on equal terms. A map that barely changes when the "
        "model's top layer is replaced by noise explains the image, not the model: it fails the randomisation "
        "check."
    )
    pdf.multi_cell(0, 4, latin1(legend), new_x="LMARGIN", new_y="NEXT")


def _pairs(pdf: Any, tiles: list[tuple[str, bytes, bool]], after: float, aspect: float) -> None:
    """Maps two to a row, each titled above (a failing method's title in red); ``after`` mm (the colour bar)
    stay on the page of the last row. ``aspect``: the maps' height over their width."""
    height = MAP_MM * aspect + 7
    rows = [tiles[i : i + 2] for i in range(0, len(tiles), 2)]
    for index, row in enumerate(rows):
        fit(pdf, height + (after if index == len(rows) - 1 else 0))
        top = pdf.get_y()
        for column, (title, picture, failing) in enumerate(row):
            x = pdf.l_margin + column * (MAP_MM + GAP_MM)
            pdf.set_xy(x, top)
            pdf.set_font("Helvetica", "B", 9)
            pdf.set_text_color(*((170, 20, 20) if failing else (0, 0, 0)))
            pdf.cell(MAP_MM, 6, latin1(title))
            pdf.set_text_color(0, 0, 0)
            pdf.image(io.BytesIO(picture), x=x, y=top + 6, w=MAP_MM)
        pdf.set_y(top + height)


def _bar(pdf: Any, limit: float, unit: str, low: str, high: str) -> None:
    """The whole colour bar over the text width: its ends, zero, the unit and what each end means."""
    width = pdf.w - pdf.l_margin - pdf.r_margin
    bar = colour_bar_png(limit, unit, low, high)
    pdf.image(io.BytesIO(bar), x=pdf.l_margin, w=width)
    pdf.ln(1)


BAR_MM = 17.0


def _maps(pdf: Any, contents: ReportContents) -> None:
    """Per explained class, the methods' maps two to a row on one scale, and the whole colour bar under them."""
    for row, class_id in enumerate(contents.classes):
        name = contents.class_names[class_id]
        probability = percent(contents.probs[class_id])
        title = f"Why the model says {name} ({probability})" if row == 0 else f"What speaks for {name} ({probability})"
        section(pdf, title, keep=MAP_MM + 7)
        tiles = [
            (
                method.title
                + (" (recommended)" if method.recommended else "")
                + (" - fails the randomisation check" if method.passes is False else ""),
                map_png(contents.image, method.maps[row], contents.limit),
                method.passes is False,
            )
            for method in _ordered(contents)
        ]
        _pairs(pdf, tiles, BAR_MM + 10, contents.image.shape[0] / contents.image.shape[1])
        _bar(pdf, contents.limit, contents.unit, f"lowers {name}", f"raises {name}")
        pdf.set_font("Helvetica", "", 8)
        caption = (
            f"Red regions raised {name}, blue ones lowered it; every map on this one scale "
            f"(±{contents.limit:.3g} {contents.unit})."
        )
        pdf.multi_cell(0, 4, latin1(caption + (contents.note or "")), new_x="LMARGIN", new_y="NEXT")


def _contrast(pdf: Any, contents: ReportContents) -> None:
    """Why the verdict rather than the class it is contrasted with: log p(verdict) − log p(other), per region."""
    if contents.contrast_against is None:
        return
    verdict, other = contents.class_names[contents.classes[0]], contents.class_names[contents.contrast_against]
    section(pdf, f"Why {verdict} rather than {other}", keep=MAP_MM + 7 if contents.contrasts else 10)
    if not contents.contrasts:
        pdf.multi_cell(0, 5, latin1(contents.contrast_note or "No contrastive map."), new_x="LMARGIN", new_y="NEXT")
        return
    finite = [np.abs(c.values[np.isfinite(c.values)]) for c in contents.contrasts]
    limit = max(float(np.max(values)) if values.size else 0.0 for values in finite) or 1.0
    tiles = [(c.title, map_png(contents.image, c.values, limit), False) for c in contents.contrasts]
    _pairs(pdf, tiles, BAR_MM + 10, contents.image.shape[0] / contents.image.shape[1])
    _bar(pdf, limit, "log-ratio per region", f"favours {other}", f"favours {verdict}")
    pdf.set_font("Helvetica", "", 8)
    text = (
        f"Red regions made {verdict} more likely than {other}, blue ones {other} more likely than {verdict} "
        f"(±{limit:.3g} log-ratio per region); over the whole image the model finds {verdict} "
        f"{times(contents.contrasts[0].total)} as likely as {other}. Drawn from the explanation's own model "
        "evaluations, with no new model call."
    )
    pdf.multi_cell(0, 4, latin1(text), new_x="LMARGIN", new_y="NEXT")
