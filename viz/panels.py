"""Panels as HTML for ``st.html``: an overlay, the input image and the probability bars, drawn by the browser at
once, without a plotting library. (Plotly's script took 3 s of a 4.6 s cached Explain visit in headless Chromium
here before the first chart showed; ``python -m bench.browser_pages`` measures it.)

The page sends each image once: the first panel of it defines a CSS class whose background is the picture
(``st.html`` is not iframed, so one page's panels share their styles), and every overlay of that image draws it
again as its backdrop, grey and dimmed by a CSS filter, under the map's own colours (viz.plots.heatmap_uri: a
palette PNG, a few KB where the values are constant per superpixel) at the chosen opacity, and the outlines. Over
that a hover layer: a CSS grid of viz.plots.hover_grid's cells, one transparent box per rectangle of cells of one
superpixel (or per cell for pixel methods), each showing its text on hover by CSS alone (``st.html`` runs no
script), whose places are one style per segmentation, sent once too; a colour bar in CSS under it. Everything
a panel says is escaped.
"""

from __future__ import annotations

import hashlib
import html

import numpy as np

from explainers.errors import ERROR_CELLS, block_regions, uncertain_sign
from explainers.outputs import shown
from viz.plots import (
    HOVER_CELLS,
    OUTLINE_OPACITY,
    heatmap_uri,
    hover_grid,
    image_uri,
    outline_uri,
    remembered,
    symmetric_limit,
)
from viz.render import colourise

# A pixel method's map is shown per this many pixels (a 10 × 10 patch), so its numbers read like a region's.
PATCH_PIXELS = 100
# The hover layer of pixel methods: fewer, larger cells than superpixels need (each is a box in the page).
PIXEL_HOVER_CELLS = ERROR_CELLS  # a pixel method's error bars are per hover block
# Below this size a picture is drawn with sharp pixels (digits), above it smoothed.
SHARP_BELOW = 128
CSS = """<style>
.sx-panel{margin:0 0 .6rem 0;font-size:.8rem;max-width:480px}
.sx-panel figcaption{font-weight:600;margin:0 0 .3rem 0;line-height:1.3}
.sx-map{position:relative;line-height:0}
.sx-map img{width:100%;height:auto;display:block;position:relative}
.sx-pic{width:100%;background-size:100% 100%}
.sx-map .sx-grey{position:absolute;inset:0;filter:grayscale(1) contrast(.4) brightness(1.252)}
.sx-map img.sx-edge{position:absolute;inset:0}
.sx-sharp img,.sx-sharp .sx-pic{image-rendering:pixelated}
.sx-hover{position:absolute;inset:0;display:grid}
.sx-hover i{position:relative}
.sx-hover i:hover{outline:1px solid rgba(0,0,0,.7)}
.sx-hover i:hover::after{content:attr(data-tip);position:absolute;left:0;top:100%;z-index:20;white-space:pre;
 background:rgba(25,25,25,.92);color:#fff;padding:3px 7px;border-radius:3px;font-size:12px;line-height:1.35;
 pointer-events:none}
.sx-bar{display:flex;flex-wrap:wrap;align-items:center;gap:.4rem;margin-top:.3rem;font-variant-numeric:tabular-nums}
.sx-grad{flex:1 1 3rem;min-width:3rem;height:8px;border-radius:2px}
.sx-matrix{border-collapse:collapse;font-size:.85rem;font-variant-numeric:tabular-nums}
.sx-matrix th,.sx-matrix td{padding:4px 10px;text-align:center}
.sx-matrix th{font-weight:600}
.sx-probs{display:grid;grid-template-columns:max-content 1fr max-content;gap:.3rem .6rem;align-items:center;
 font-size:.9rem;max-width:640px}
.sx-track{height:14px;background:rgba(128,128,128,.18);border-radius:2px}
.sx-fill{display:block;height:100%;background:#4c78a8;border-radius:2px}
</style>"""


def _number(value: float) -> str:
    return f"{value:+.3g}" if value else "0"


def percent(p: float) -> str:
    """A probability as a person reads it: "99.7%", but ">99.9%" for a saturated one (never "100.0%", which
    float32 rounding shows for 0.99998) and "<0.1%" for a tiny one."""
    p = float(p)
    if p >= 0.9995:
        return ">99.9%"
    if 0 < p < 0.0005:
        return "<0.1%"
    return f"{p:.1%}"


def _scale(output: str) -> float:
    """From the output's own units to the shown ones: percentage points of a probability, log-odds as they are."""
    return 100.0 if output == "probability" else 1.0


def shown_map(
    values: np.ndarray, segments: np.ndarray | None, output: str = "probability", mask: np.ndarray | None = None
) -> np.ndarray:
    """What a panel colours, in the shown unit: with ``segments``, each pixel its region's total (a superpixel's
    value); without, the value per PATCH_PIXELS pixels (a pixel method's density). Outside ``mask`` (the head of
    an MRI, when the background is hidden) nothing: NaN, drawn transparent."""
    values = np.asarray(values, dtype=np.float64)
    if segments is None:
        coloured = values * PATCH_PIXELS * _scale(output)
    else:
        labels = np.asarray(segments).astype(np.int64)
        totals = np.bincount(labels.ravel(), weights=np.nan_to_num(values).ravel(), minlength=int(labels.max()) + 1)
        coloured = np.where(np.isfinite(values), (totals * _scale(output))[labels], np.nan)
    return coloured if mask is None else np.where(mask, coloured, np.nan)


def hidden_note(shares: dict[str, float]) -> str:
    """A caption's sentence on what a hidden background holds: the share of each method's attribution that lies
    outside the head (``shares``: method title → share; empty: nothing hidden)."""
    if not shares:
        return ""
    ordered = sorted(shares.items(), key=lambda item: item[1])
    if len(ordered) == 1:
        held = f"{ordered[0][1]:.0%} of the attribution"
    else:
        held = (
            f"from {ordered[0][1]:.0%} ({ordered[0][0]}) to {ordered[-1][1]:.0%} ({ordered[-1][0]}) of a "
            "method's attribution"
        )
    worth = " (worth a look: switch it off)" if ordered[-1][1] >= 0.1 else ""
    return f" The background outside the head is hidden; it holds {held}{worth}."


def map_unit(output: str, per_region: bool) -> str:
    """The unit of a panel's colour bar."""
    words = "pp" if output == "probability" else "log-odds"
    return f"{words} per region" if per_region else f"{words} per {PATCH_PIXELS} px"


def shown_limit(
    maps: list[tuple[np.ndarray, np.ndarray | None]],
    output: str = "probability",
    across: str = "max",
    mask: np.ndarray | None = None,
) -> float:
    """One colour limit, in the shown unit, for panels of (values, segments): by default the largest panel's, so
    that none of them saturates (inside ``mask`` when the background is hidden)."""
    shown = [shown_map(values, segments, output, mask) for values, segments in maps]
    return symmetric_limit([m[np.isfinite(m)] for m in shown], across=across)


def colour_bar(limit: float, unit: str = "pp per region") -> str:
    """The diverging scale from −limit (blue) to +limit (red) in CSS, with its ends and the unit (styled by the
    page's panels)."""
    stops = colourise(np.linspace(-limit, limit, 11), limit)
    gradient = ",".join(f"rgb({r},{g},{b})" for r, g, b in stops)
    return (
        f'<div class="sx-bar"><span>{_number(-limit)}</span>'
        f'<span class="sx-grad" style="background:linear-gradient(to right,{gradient})"></span>'
        f"<span>{_number(limit)}</span><span>{html.escape(unit)}</span></div>"
    )


def _boxes(labels: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(row, column, rows, columns) boxes covering a grid, each of one label: runs along the rows, merged with
    the identical run of the rows below."""
    open_boxes: dict[tuple[int, int, int], list[int]] = {}  # (column, columns, label) -> [row, rows]
    boxes = []
    for row, line in enumerate(labels):
        runs, start = set(), 0
        for column in range(1, len(line) + 1):
            if column == len(line) or line[column] != line[start]:
                runs.add((start, column - start, int(line[start])))
                start = column
        for run in list(open_boxes):
            if run not in runs:
                first, rows = open_boxes.pop(run)
                boxes.append((first, run[0], rows, run[1]))
        for run in runs:
            if run in open_boxes:
                open_boxes[run][1] += 1
            else:
                open_boxes[run] = [row, 1]
    boxes += [(first, run[0], rows, run[1]) for run, (first, rows) in open_boxes.items()]
    return sorted(boxes)


def _plus_minus(value: float, error: float | None, output: str) -> str:
    """ "+3.1 pp", or with a known standard error "+3.1 ± 0.4 pp", and "(sign uncertain)" when the 90 % interval
    holds zero."""
    if error is None or not np.isfinite(error):
        return shown(value, output)
    number, _, unit = shown(value, output).partition(" ")
    spread = shown(error, output, signed=False).partition(" ")[0]
    text = f"{number} ± {spread} {unit}".rstrip()
    return text + (" (sign uncertain)" if uncertain_sign(np.asarray(value), np.asarray(error)) else "")


def _hover_layer(
    values: np.ndarray, segments: np.ndarray | None, output: str, errors: np.ndarray | None = None
) -> tuple[str, str, str]:
    """(geometry class, geometry style, layer): where the boxes are is a style named by a digest of it, which all
    panels of one segmentation share; each panel's layer is only its boxes' texts, in the same order: a
    superpixel's total, or a block's, in percentage points (or log-odds), with its standard error when
    ``errors`` holds one per superpixel (or per block, numbered as explainers.errors.block_regions)."""
    x_edges, y_edges, z, customdata, block = hover_grid(
        values, segments, cells=PIXEL_HOVER_CELLS if segments is None else HOVER_CELLS
    )
    error_of = (lambda region: None) if errors is None else (lambda region: float(errors[region]))
    if customdata is not None:
        labels = customdata[..., 0].astype(np.int64)
        texts = {
            int(label): f"superpixel {int(label)}: {_plus_minus(float(total), error_of(int(label)), output)}"
            for label, total in zip(customdata[..., 0].ravel(), customdata[..., 1].ravel(), strict=True)
        }
        tip = lambda row, column: texts[int(labels[row, column])]  # noqa: E731 - one line, like its sibling
    else:
        labels = np.arange(z.size).reshape(z.shape)  # every cell its own box
        block_totals = np.nan_to_num(z) * np.outer(np.diff(y_edges), np.diff(x_edges))
        tip = lambda row, column: (  # noqa: E731 - the tooltip as one expression, beside the other branch's
            f"x {x_edges[column] + 0.5:.0f}–{x_edges[column + 1] - 0.5:.0f}, "
            f"y {y_edges[row] + 0.5:.0f}–{y_edges[row + 1] - 0.5:.0f}: "
            f"{_plus_minus(float(block_totals[row, column]), error_of(int(labels[row, column])), output)}"
            " in this block"
        )
    # A grid of the hover cells' own sizes (the last row and column may be narrower); one box per run of cells.
    template = f"{_tracks(np.diff(y_edges))}/{_tracks(np.diff(x_edges))}"
    boxes = _boxes(labels)
    areas = "".join(
        f"i:nth-child({index}){{grid-area:{row + 1}/{column + 1}/{row + rows + 1}/{column + columns + 1}}}"
        for index, (row, column, rows, columns) in enumerate(boxes, start=1)
    )
    name = "sx-g-" + hashlib.blake2b(f"{template}|{areas}".encode(), digest_size=8).hexdigest()
    style = (
        f"<style>.{name}{{grid-template:{template}}}"
        + areas.replace("i:nth-child", f".{name}>i:nth-child")
        + "</style>"
    )
    layer = "".join(f'<i data-tip="{html.escape(tip(row, column))}"></i>' for row, column, _, _ in boxes)
    return name, style, f'<div class="sx-hover {name}">{layer}</div>'


def _tracks(sizes: np.ndarray) -> str:
    """CSS grid tracks in proportion to ``sizes``: "repeat(27,8fr) 6fr"."""
    tracks, widths = [], [int(round(size)) for size in sizes]
    start = 0
    for index in range(1, len(widths) + 1):
        if index == len(widths) or widths[index] != widths[start]:
            count = index - start
            tracks.append(f"repeat({count},{widths[start]}fr)" if count > 1 else f"{widths[start]}fr")
            start = index
    return " ".join(tracks)


def picture_class(image: np.ndarray) -> str:
    """The CSS class whose background is ``image`` (named by a digest of its pixels)."""
    image = np.ascontiguousarray(image)
    digest = hashlib.blake2b(f"{image.dtype.str}{image.shape}".encode() + image.data, digest_size=8)
    return f"sx-p-{digest.hexdigest()}"


def _once(sent: set[str] | None, name: str, make) -> str:
    """``make()`` unless this page sent ``name`` already (``sent``: what the page's panels sent in this run;
    None: a panel on its own, which carries everything it needs)."""
    if sent is not None:
        if name in sent:
            return ""
        sent.add(name)
    return make()


def _picture_style(image: np.ndarray) -> str:
    uri, _ = remembered(lambda: image_uri(image), "image", image)
    return f"<style>.{picture_class(image)}{{background-image:url({uri})}}</style>"


def _figure(title: str, size: tuple[int, int], inner: str, below: str = "") -> str:
    height, width = size
    sharp = " sx-sharp" if max(height, width) < SHARP_BELOW else ""
    caption = f"<figcaption>{html.escape(title)}</figcaption>" if title else ""
    return f'<figure class="sx-panel">{caption}<div class="sx-map{sharp}">{inner}</div>{below}</figure>'


def overlay_panel(
    image: np.ndarray,
    values: np.ndarray,
    *,
    limit: float,
    opacity: float = 0.7,
    title: str = "",
    segments: np.ndarray | None = None,
    outlines: np.ndarray | None = None,
    colorbar: bool = True,
    output: str = "probability",
    unit: str | None = None,
    mask: np.ndarray | None = None,
    errors: tuple[np.ndarray, np.ndarray] | None = None,
    sent: set[str] | None = None,
) -> str:
    """The attribution map (``values`` per pixel, as an Explanation holds them) over a grey copy of the image:
    red raises the class, blue lowers it. With ``segments`` each region is coloured by its total, else the map
    per PATCH_PIXELS pixels (:func:`shown_map`), against ``limit`` in that unit (:func:`shown_limit`), in
    percentage points of the probability or in log-odds (``output``); hovering shows a superpixel's total, or a
    block's; outside ``mask`` (hidden background) transparent. ``sent``: the page's set of what its panels
    already sent in this run (the picture, the hover geometry, the style sheet), shared by every panel of the
    page. ``errors``: (standard error per region, H × W
    region labels), as Explanation.error_map gives them: shown on hover ("+3.1 ± 0.4 pp"), and regions whose
    sign is uncertain (zero inside the 90 % interval) are dotted."""
    image, values = np.asarray(image), np.asarray(values)
    height, width = values.shape
    coloured = shown_map(values, segments, output, mask)
    heatmap = remembered(lambda: heatmap_uri(coloured, limit), "heatmap", coloured, float(limit))
    alt = html.escape(title or "attribution map")
    picture = picture_class(image)
    inner = (
        f'<div class="sx-pic sx-grey {picture}"></div>'
        f'<img src="{heatmap}" width="{width}" height="{height}" alt="{alt}" '
        f'style="opacity:{float(np.clip(opacity, 0, 1)):.2f}">'
    )
    if outlines is not None:
        edges = np.asarray(outlines, dtype=bool)
        uri = remembered(lambda: outline_uri(edges), "outlines", edges)
        inner += (
            f'<img class="sx-edge" src="{uri}" width="{width}" height="{height}" alt="" '
            f'style="opacity:{OUTLINE_OPACITY}">'
        )
    region_errors = _matching_errors(values, segments, errors)
    if region_errors is not None and errors is not None:  # region_errors come from errors
        dots = remembered(lambda: outline_uri(uncertain_dots(values, *errors)), "dots", values, *errors)
        inner += (
            f'<img class="sx-edge" src="{dots}" width="{width}" height="{height}" '
            'alt="dotted: sign uncertain" '
            'title="dotted: the sign is uncertain (0 is inside the 90 % interval)">'
        )
    geometry, geometry_style, layer = remembered(
        lambda: _hover_layer(values, segments, output, region_errors), "hover", values, segments, output, region_errors
    )
    styles = (
        _once(sent, "css", lambda: CSS)
        + _once(sent, picture, lambda: _picture_style(image))
        + _once(sent, geometry, lambda: geometry_style)
    )
    bar = colour_bar(limit, unit or map_unit(output, segments is not None)) if colorbar else ""
    return styles + _figure(title, values.shape, inner + layer, bar)


def _matching_errors(
    values: np.ndarray, segments: np.ndarray | None, errors: tuple[np.ndarray, np.ndarray] | None
) -> np.ndarray | None:
    """The errors per hover box's region: per superpixel when the panel shows ``segments`` and the errors are
    theirs, per block when a pixel map's errors are per block of the hover grid; else None (not shown)."""
    if errors is None:
        return None
    region_errors, regions = errors
    if segments is not None:
        return region_errors if np.array_equal(regions, segments) else None
    return region_errors if np.array_equal(regions, block_regions(values.shape, PIXEL_HOVER_CELLS)) else None


def uncertain_dots(values: np.ndarray, region_errors: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """H × W: a sparse dot pattern over the regions whose sign is uncertain (the mark drawn over them)."""
    labels = np.asarray(regions).astype(np.int64)
    totals = np.bincount(
        labels.ravel(), weights=np.nan_to_num(np.asarray(values, np.float64)).ravel(), minlength=len(region_errors)
    )
    doubtful = uncertain_sign(totals, region_errors)[labels]
    rows, columns = np.indices(labels.shape)
    step = max(3, max(labels.shape) // 56)
    return doubtful & (rows % step == 0) & (columns % step == (rows // step % 2) * (step // 2))


def image_panel(image: np.ndarray, *, title: str = "", sent: set[str] | None = None) -> str:
    """The image as the model sees it, at the panels' size; it sends the picture that this image's overlays
    draw as their backdrop (``sent`` as for overlay_panel)."""
    image = np.asarray(image)
    height, width = image.shape[:2]
    picture = picture_class(image)
    inner = (
        f'<div class="sx-pic {picture}" role="img" aria-label="{html.escape(title or "image")}" '
        f'style="aspect-ratio:{width}/{height}"></div>'
    )
    styles = _once(sent, "css", lambda: CSS) + _once(sent, picture, lambda: _picture_style(image))
    return styles + _figure(title, image.shape[:2], inner)


def agreement_table(names: list[str], matrix: np.ndarray) -> str:
    """A square matrix of correlations (−1 blue … +1 red) as a table with its values."""
    colours = colourise(np.nan_to_num(np.asarray(matrix, dtype=np.float64)), 1.0)
    head = "".join(f"<th>{html.escape(name)}</th>" for name in names)
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th>"
        + "".join(
            f'<td style="background:rgb({r},{g},{b});color:{"#fff" if abs(value) > 0.6 else "#111"}" '
            f'title="{html.escape(name)} vs {html.escape(other)}: ρ = {value:.2f}">{value:.2f}</td>'
            for other, value, (r, g, b) in zip(names, row, colour_row, strict=True)
        )
        + "</tr>"
        for name, row, colour_row in zip(names, np.asarray(matrix, dtype=np.float64), colours, strict=True)
    )
    return f'{CSS}<table class="sx-matrix"><thead><tr><th></th>{head}</tr></thead><tbody>{rows}</tbody></table>'


def probability_bars(names: list[str], probs: list[float]) -> str:
    """The top-k class probabilities as bars, most probable first."""
    rows = "".join(
        f'<span>{html.escape(name)}</span><span class="sx-track"><span class="sx-fill" '
        f'style="width:{100 * min(max(p, 0.0), 1.0):.1f}%"></span></span><span>{percent(p)}</span>'
        for name, p in zip(names, probs, strict=True)
    )
    return f'{CSS}<div class="sx-probs" role="list" aria-label="class probabilities">{rows}</div>'
