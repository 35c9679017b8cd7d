"""Bytes a fully cached page sends for its panels, built the way the Explain page (input image, probabilities,
an overlay per top-3 class) and the Compare grid (3 rows × 5 methods, an image per row) build them: the HTML
panels the pages draw now (viz.panels, ``st.html``), beside the two Plotly ways before them (a compressed
picture per figure, measured as Streamlit serialises it: ``plotly.io.to_json`` with Streamlit's template; and
the first way, a 224×224 float heatmap over a raw grey pixel array, copied below as the reference), and the
seconds to build the page's panels, first and on a rerun.

Run: .venv/bin/python -m bench.page_bytes [--model M] [--sample S] [--cache-dir DIR]

Progress goes to stderr, the Markdown report to stdout (``> bench/page_bytes.md`` keeps it).

The explanations are computed at each method's default budget (~3 min for the five on two cores) in a fresh
cache folder, or read from ``--cache-dir`` (e.g. the app's own cache) when answered there before.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from PIL import Image

from explainers.cache import ExplanationCache
from explainers.images import load_image
from explainers.request import build_request, run_cached
from explainers.superpixels import slic_segments
from models import get_spec, load_classifier
from models.samples import default_sample, get_sample
from service.compare import SLIC_SEGMENTS
from service.compare import compare_grid as service_grid
from viz.panels import colour_bar, image_panel, overlay_panel, probability_bars, shown_limit
from viz.plots import OVERLAY_COLOURS, composite, data_uri, hover_grid, image_uri, remembered, symmetric_limit

COMPARE_METHODS = ["partition", "permutation", "kernel", "deep", "gradient"]  # the Compare page's default
EXPLAIN_METHOD = "partition"  # the Explain page's first method
TOP_K = 3
OPACITY = 0.7


def json_bytes(figure: go.Figure) -> int:
    """The bytes of the figure's spec as st.plotly_chart sends it."""
    return len(pio.to_json(figure, validate=False).encode())


# The reference: viz/plots.py before pictures were compressed (commit 7bbc86a), copied so both ways are
# measured on the same explanations.
def old_overlay_figure(
    image, values, *, limit, opacity=0.7, title="", height=320, segments=None, outlines=None, show_colorbar=True
) -> go.Figure:
    gray = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    figure = go.Figure(
        go.Image(z=np.repeat((96 + gray * 0.5).clip(0, 255).astype(np.uint8)[..., None], 3, axis=2), hoverinfo="skip")
    )
    hovertemplate = "x %{x}, y %{y}<br>SHAP value %{z:.3g}<extra></extra>"
    if segments is not None:
        hovertemplate = "x %{x}, y %{y}<br>superpixel %{customdata}<br>SHAP value %{z:.3g}<extra></extra>"
    figure.add_trace(
        go.Heatmap(
            z=values,
            zmin=-limit,
            zmax=limit,
            zmid=0,
            colorscale="RdBu_r",
            opacity=opacity,
            customdata=segments,
            hovertemplate=hovertemplate,
            showscale=show_colorbar,
            colorbar={
                "title": {"text": "SHAP", "side": "right"},
                "thickness": 12,
                "len": 0.9,
                "exponentformat": "e",
                "nticks": 5,
            },
        )
    )
    if outlines is not None:
        figure.add_trace(
            go.Heatmap(
                z=np.where(outlines, 1.0, np.nan),
                colorscale=[[0, "#222"], [1, "#222"]],
                showscale=False,
                hoverinfo="skip",
                opacity=0.8,
            )
        )
    figure.update_layout(
        title={"text": title, "x": 0.02, "font": {"size": 14}},
        height=height,
        margin={"l": 0, "r": 0, "t": 36 if title else 4, "b": 0},
    )
    figure.update_xaxes(visible=False, showgrid=False)
    figure.update_yaxes(visible=False, showgrid=False, scaleanchor="x")
    return figure


def old_image_figure(image, *, title="", height=320) -> go.Figure:
    figure = go.Figure(go.Image(z=image, hovertemplate="x %{x}, y %{y}<br>RGB %{z}<extra></extra>"))
    figure.update_layout(
        title={"text": title, "x": 0.02, "font": {"size": 14}},
        height=height,
        margin={"l": 0, "r": 0, "t": 36 if title else 4, "b": 0},
    )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, scaleanchor="x")
    return figure


# The second way: Plotly figures carrying compressed pictures (viz/plots.py until the pages drew HTML panels and
# these were left to the tests alone), copied so that all three ways are measured on the same explanations.
COLORBAR = {"title": {"text": "SHAP", "side": "right"}, "thickness": 12, "len": 0.9, "exponentformat": "e", "nticks": 5}


def overlay_uri(picture: np.ndarray) -> str:
    """A palette PNG; small pictures (digits) keep every colour."""
    pil = Image.fromarray(picture)
    if picture.shape[0] * picture.shape[1] > 64 * 64:
        pil = pil.quantize(OVERLAY_COLOURS, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE)
    return data_uri(pil, "PNG", compress_level=6)


def _image_axes(figure: go.Figure, title: str, height: int) -> go.Figure:
    figure.update_layout(
        title={"text": title, "x": 0.02, "font": {"size": 14}},
        height=height,
        margin={"l": 0, "r": 0, "t": 36 if title else 4, "b": 0},
    )
    figure.update_xaxes(visible=False, showgrid=False)
    figure.update_yaxes(visible=False, showgrid=False, scaleanchor="x")
    return figure


def overlay_figure(
    image: np.ndarray,
    values: np.ndarray,
    *,
    limit: float,
    opacity: float = 0.7,
    title: str = "",
    height: int = 320,
    segments: np.ndarray | None = None,
    outlines: np.ndarray | None = None,
    show_colorbar: bool = True,
) -> go.Figure:
    """The attribution map over a grey copy of the image, diverging colours centred on 0, as one PNG.

    Hovering shows the value of the 8×8 block under the pointer (its mean per pixel), or with ``segments``
    the superpixel's id, its SHAP value (the sum over its pixels) and its mean per pixel.
    """
    image, values = np.asarray(image), np.asarray(values)
    outlines = None if outlines is None else np.asarray(outlines, dtype=bool)
    source = remembered(
        lambda: overlay_uri(composite(image, values, limit, opacity, outlines)),
        "overlay",
        image,
        values,
        float(limit),
        float(opacity),
        outlines,
    )
    figure = go.Figure(go.Image(source=source, hoverinfo="skip"))
    x_edges, y_edges, z, customdata, block = hover_grid(values, segments)
    if customdata is not None:
        hovertemplate = (
            "superpixel %{customdata[0]:.0f} · SHAP value %{customdata[1]:.3g}<br>"
            "(its pixels' sum; per pixel %{z:.3g})<extra></extra>"
        )
    elif block > 1:
        hovertemplate = (
            f"x %{{x:.0f}}, y %{{y:.0f}}<br>SHAP value %{{z:.3g}}<br>(per pixel, mean of {block}×{block})"
            "<extra></extra>"
        )
    else:
        hovertemplate = "x %{x:.0f}, y %{y:.0f}<br>SHAP value %{z:.3g}<extra></extra>"
    # Drawn with opacity 0: the cells stay invisible while hover and the colour bar (which ignores the trace's
    # opacity) work as before.
    figure.add_trace(
        go.Heatmap(
            z=z,
            x=x_edges,
            y=y_edges,
            zmin=-limit,
            zmax=limit,
            zmid=0,
            colorscale="RdBu_r",
            opacity=0,
            customdata=customdata,
            hovertemplate=hovertemplate,
            showscale=show_colorbar,
            colorbar=COLORBAR,
        )
    )
    return _image_axes(figure, title, height)


def image_figure(image: np.ndarray, *, title: str = "", height: int = 320) -> go.Figure:
    """The image as the model sees it, at its input resolution (hover: the pixel and its colour as drawn)."""
    image = np.asarray(image)
    source, lossless = remembered(lambda: image_uri(image), "image", image)
    colour = "RGB %{z[0]}, %{z[1]}, %{z[2]}" if lossless else "RGB ≈ %{z[0]}, %{z[1]}, %{z[2]} (as compressed)"
    figure = go.Figure(go.Image(source=source, hovertemplate=f"x %{{x}}, y %{{y}}<br>{colour}<extra></extra>"))
    return _image_axes(figure, title, height)


def probability_figure(names: list[str], probs: list[float], height: int = 220) -> go.Figure:
    """Horizontal bars of the top-k class probabilities, most probable on top."""
    figure = go.Figure(
        go.Bar(
            x=probs[::-1],
            y=names[::-1],
            orientation="h",
            text=[f"{p:.1%}" for p in probs[::-1]],
            textposition="auto",
            marker_color="#4c78a8",
            hovertemplate="%{y}: %{x:.4f}<extra></extra>",
        )
    )
    figure.update_layout(
        height=height, margin={"l": 0, "r": 0, "t": 4, "b": 0}, xaxis={"range": [0, 1], "tickformat": ".0%"}
    )
    return figure


def explain_page(prepared, label, names, probs, explanation, overlay, image) -> list[tuple[str, go.Figure]]:
    """The figures of app_pages/explain.py (superpixel outlines off, their default)."""
    shown = list(np.argsort(-probs, kind="stable")[:TOP_K])
    figures = [
        ("input image", image(prepared, title=f"{label} as the model sees it")),
        ("probabilities", probability_figure([names[c] for c in shown], [float(probs[c]) for c in shown])),
    ]
    limit = symmetric_limit(list(explanation.values))
    for index, class_id in enumerate(explanation.classes):
        figures.append(
            (
                f"overlay: {explanation.class_names[index]}",
                overlay(
                    prepared,
                    explanation.values[index],
                    limit=limit,
                    opacity=OPACITY,
                    title=f"{explanation.class_names[index]} · p = {explanation.probs[class_id]:.3f}",
                    segments=explanation.segments,
                ),
            )
        )
    return figures


def compare_grid(prepared, names, ready, overlay, image) -> list[tuple[str, go.Figure]]:
    """The figures of app_pages/compare.py's grid (one colour scale for the whole grid, its default)."""
    first = next(iter(ready.values()))
    classes = first.classes[:TOP_K]
    rows = [[ready[name].values[list(ready[name].classes).index(c)] for name in ready] for c in classes]
    limits = [symmetric_limit(sum(rows, []), across="median")] * len(rows)
    figures = []
    for row, class_id in enumerate(classes):
        label = f"{names[class_id]} · p = {first.probs[class_id]:.3f}"
        figures.append((f"row {row + 1} image", image(prepared, title=label, height=260)))
        for column, (name, explanation) in enumerate(ready.items()):
            figures.append(
                (
                    f"row {row + 1} {name}",
                    overlay(
                        prepared,
                        rows[row][column],
                        limit=limits[row],
                        opacity=OPACITY,
                        height=260,
                        title=name if row == 0 else "",
                        segments=explanation.segments,
                        show_colorbar=False,
                    ),
                )
            )
    return figures


def html_explain_page(prepared, label, names, probs, explanation) -> list[tuple[str, str]]:
    """The HTML panels app_pages/explain.py draws now (viz.panels)."""
    shown = list(np.argsort(-probs, kind="stable")[:TOP_K])
    sent: set[str] = set()
    panels = [
        ("input image", image_panel(prepared, title=f"{label} as the model sees it", sent=sent)),
        ("probabilities", probability_bars([names[c] for c in shown], [float(probs[c]) for c in shown])),
    ]
    limit = shown_limit([(values, explanation.segments) for values in explanation.values], explanation.output)
    for index, class_id in enumerate(explanation.classes):
        panels.append(
            (
                f"overlay: {explanation.class_names[index]}",
                overlay_panel(
                    prepared,
                    explanation.values[index],
                    limit=limit,
                    opacity=OPACITY,
                    title=f"{explanation.class_names[index]} · p = {explanation.probs[class_id]:.3f}",
                    segments=explanation.segments,
                    output=explanation.output,
                    sent=sent,
                ),
            )
        )
    return panels


def html_compare_grid(spec, prepared, ready) -> list[tuple[str, str]]:
    """The HTML panels of app_pages/compare.py's grid, and its colour bar, on the service's grid (its defaults:
    pixel methods summed over the first superpixel method's superpixels, one scale)."""
    first = next(iter(ready.values()))
    grid = service_grid(
        spec, prepared, ready, TOP_K, output=first.output, superpixels=lambda: slic_segments(prepared, SLIC_SEGMENTS)
    )
    panels, sent = [], set[str]()
    for row, class_id in enumerate(grid.classes):
        panels.append(
            (
                f"row {row + 1} image",
                image_panel(
                    prepared, title=f"{spec.class_names[class_id]} · p = {first.probs[class_id]:.3f}", sent=sent
                ),
            )
        )
        for column, name in enumerate(ready):
            panels.append(
                (
                    f"row {row + 1} {name}",
                    overlay_panel(
                        prepared,
                        grid.maps[row][column],
                        limit=grid.limits[row][column],
                        opacity=OPACITY,
                        title=name if row == 0 else "\u00a0",
                        segments=grid.segments[name],
                        colorbar=False,
                        output=first.output,
                        sent=sent,
                    ),
                )
            )
    return panels + [("colour bar", colour_bar(grid.limits[0][0]))]


def measure(build) -> tuple[list[tuple[str, int]], float]:
    """(name, bytes) per figure or panel and the seconds to build and serialise them all."""
    started = time.perf_counter()
    figures = build()
    specs = [
        (name, len(figure.encode()) if isinstance(figure, str) else json_bytes(figure)) for name, figure in figures
    ]
    return specs, time.perf_counter() - started


def report(title: str, build_html, build_plotly, build_old) -> None:
    now, first_seconds = measure(build_html)
    _, rerun_seconds = measure(build_html)  # a rerun of the page: the pictures are remembered
    pictures_sizes, _ = measure(build_plotly)
    old_sizes, old_seconds = measure(build_old)
    pictures, old = dict(pictures_sizes), dict(old_sizes)
    print(
        f"\n## {title}\n\n| panel | bytes (HTML panels) | Plotly with pictures | Plotly with float heatmaps |"
        "\n|---|---|---|---|"
    )
    for name, size in now:
        print(f"| {name} | {size:,} | {pictures.get(name, 0):,} | {old.get(name, 0):,} |")
    totals = [sum(size for _, size in now), sum(pictures.values()), sum(old.values())]
    print("| **page** | " + " | ".join(f"**{total:,}** ({total / 1024:.0f} KiB)" for total in totals) + " |")
    print(
        f"\nBuilt in {first_seconds:.2f} s (first), {rerun_seconds:.2f} s (rerun); the float heatmaps "
        f"{old_seconds:.2f} s. The HTML panels need no plotting script in the browser."
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--sample", default=None, help="e.g. photos/chelsea (default: the model's own)")
    parser.add_argument("--cache-dir", default=None, help="reuse a cache folder (default: a fresh one)")
    args = parser.parse_args()
    from streamlit.elements.lib.streamlit_plotly_theme import configure_streamlit_plotly_theme

    configure_streamlit_plotly_theme()  # the template every st.plotly_chart figure carries

    spec = get_spec(args.model)
    sample = get_sample(args.sample) if args.sample else default_sample(spec)
    classifier = load_classifier(args.model)
    source = load_image(sample.path, sample=True)
    prepared = classifier.prepare(source.pixels)
    probs = classifier.predict(prepared)[0]
    cache = ExplanationCache(args.cache_dir or tempfile.mkdtemp(prefix="page-bytes-bench-"))
    ready = {}
    for method in dict.fromkeys([EXPLAIN_METHOD, *COMPARE_METHODS]):
        started = time.perf_counter()
        request = build_request(classifier, source, method, top_k=TOP_K)
        ready[method], cached = run_cached(cache, request, source, classifier)
        print(
            f"{method}: {'from the cache' if cached else f'computed in {time.perf_counter() - started:.0f} s'}",
            file=sys.stderr,
            flush=True,
        )
    names = classifier.class_names
    print(f"\n# Chart bytes of cached pages: {args.model} on {sample.name}, {prepared.shape[1]}×{prepared.shape[0]}")
    report(
        f"Explain page ({EXPLAIN_METHOD}, top-{TOP_K})",
        lambda: html_explain_page(prepared, sample.name, names, probs, ready[EXPLAIN_METHOD]),
        lambda: explain_page(prepared, sample.name, names, probs, ready[EXPLAIN_METHOD], overlay_figure, image_figure),
        lambda: explain_page(
            prepared, sample.name, names, probs, ready[EXPLAIN_METHOD], old_overlay_figure, old_image_figure
        ),
    )
    grid = {name: ready[name] for name in COMPARE_METHODS}
    report(
        f"Compare grid ({TOP_K} rows × {len(grid)} methods)",
        lambda: html_compare_grid(spec, prepared, grid),
        lambda: compare_grid(prepared, names, grid, overlay_figure, image_figure),
        lambda: compare_grid(prepared, names, grid, old_overlay_figure, old_image_figure),
    )


if __name__ == "__main__":
    main()
