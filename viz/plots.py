"""The pictures the HTML panels (viz.panels) are made of, each encoded once and remembered: the input image, a map's
colours as a palette PNG, outlines, and the hover grid; plus the one Plotly chart a page still draws (the deletion
and insertion curves, on request).

A 224×224 panel sent as JSON float heatmaps over a raw pixel array cost 0.5–0.75 MB (1.5 MB with outlines), as
compressed pictures 25–65 KB (``python -m bench.page_bytes``). :func:`composite` is the reference of what the
browser composites from them (tests/test_browser.py compares the two).
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from PIL import Image

from viz.render import colourise

if TYPE_CHECKING:
    import plotly.graph_objects as go

T = TypeVar("T")

# The hover layer's cells along the longer side: 8-pixel blocks on a 224-pixel map, every pixel below 29 px.
HOVER_CELLS = 28
# Superpixel outlines: dark grey at 80 % over the overlay.
OUTLINE_RGB, OUTLINE_OPACITY = np.array([0x22, 0x22, 0x22], dtype=np.float32), 0.8
# An overlay is a 128-colour PNG (colours within a few levels, no blur). The input image is a lossless PNG
# while that stays under LOSSLESS_IMAGE_BYTES (scans, digits), else a full-colour-resolution JPEG.
OVERLAY_COLOURS = 128
LOSSLESS_IMAGE_BYTES = 24_000
JPEG_QUALITY = 90
# The last pictures encoded, by a digest of their inputs: a page's rerun (every widget change) redraws its
# panels without encoding them again (~30 ms each). At most ~60 KB each.
CACHED_PICTURES = 64
_pictures: OrderedDict[bytes, Any] = OrderedDict()
_pictures_lock = threading.Lock()


def symmetric_limit(maps: np.ndarray | list[np.ndarray], percentile: float = 99.5, across: str = "max") -> float:
    """One limit for several panels, so equal colours mean equal values; never zero. Beyond it, colours
    saturate.

    Each panel contributes a high percentile of its |values| rather than its maximum, so a handful of extreme
    pixels cannot wash the rest out. ``across="median"`` takes the typical panel's limit instead of the
    largest: on a grid of methods, one spiky method (gradients) then saturates instead of blanking the others.
    """
    limits = [float(np.percentile(np.abs(np.asarray(m, dtype=np.float64)), percentile)) for m in maps if np.size(m)]
    limits = [limit for limit in limits if limit > 0]
    if not limits:
        return 1e-12
    return float(np.median(limits)) if across == "median" else max(limits)


def _rgb(image: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 from grey, RGB or RGBA, integer or float in [0, 255]."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.dtype != np.uint8:
        image = np.clip(np.nan_to_num(image.astype(np.float32)), 0, 255).round().astype(np.uint8)
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[..., :3]


def _grayscale(image: np.ndarray) -> np.ndarray:
    """The image as a dimmed grey backdrop, so the colours on top read as attribution only."""
    gray = _rgb(image).astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    dimmed = (96 + gray * 0.5).clip(0, 255).astype(np.uint8)
    return np.repeat(dimmed[..., None], 3, axis=2)


def composite(
    image: np.ndarray, values: np.ndarray, limit: float, opacity: float = 0.7, outlines: np.ndarray | None = None
) -> np.ndarray:
    """H×W×3 uint8: the diverging colours of ``values`` (±limit at the ends) at ``opacity`` over the grey
    backdrop, then the outlines; what the heatmap layers drew in the browser before. NaN shows the backdrop."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    colours = colourise(np.where(finite, values, 0.0), limit).astype(np.float32)
    alpha = (float(np.clip(opacity, 0, 1)) * finite)[..., None]
    picture = _grayscale(image).astype(np.float32) * (1 - alpha) + colours * alpha
    if outlines is not None:
        edge = (np.asarray(outlines, dtype=bool) * OUTLINE_OPACITY)[..., None]
        picture = picture * (1 - edge) + OUTLINE_RGB * edge
    return picture.round().clip(0, 255).astype(np.uint8)


def heatmap_uri(values: np.ndarray, limit: float) -> str:
    """The diverging colours of ``values`` alone (±limit at the ends), NaN transparent: the layer the HTML panels
    put over the grey backdrop at the chosen opacity. A palette PNG; small maps (digits) keep every colour."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    colours = colourise(np.where(finite, values, 0.0), limit).astype(np.uint8)
    pil, options = Image.fromarray(colours), {}
    if values.size > 64 * 64 or not finite.all():
        pil = pil.quantize(OVERLAY_COLOURS, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE)
        if not finite.all():  # one more palette entry, transparent, for the pixels without a value
            indices = np.asarray(pil).copy()
            indices[~finite] = OVERLAY_COLOURS
            palette = (pil.getpalette() or [])[: 3 * OVERLAY_COLOURS]  # a quantized picture always has one
            palette += [0, 0, 0] * (OVERLAY_COLOURS - len(palette) // 3 + 1)
            pil = Image.fromarray(indices, "P")
            pil.putpalette(palette)
            options["transparency"] = OVERLAY_COLOURS
    return data_uri(pil, "PNG", compress_level=6, **options)


def outline_uri(outlines: np.ndarray) -> str:
    """The superpixel outlines alone, on a transparent ground: a two-entry palette PNG."""
    pil = Image.fromarray(np.asarray(outlines, dtype=bool).astype(np.uint8), "P")
    pil.putpalette([0, 0, 0, *OUTLINE_RGB.astype(int).tolist()])
    return data_uri(pil, "PNG", compress_level=6, transparency=0)


def data_uri(picture: Image.Image, kind: str, **options) -> str:
    buffer = io.BytesIO()
    picture.save(buffer, format=kind, **options)
    mime = "jpeg" if kind == "JPEG" else kind.lower()
    return f"data:image/{mime};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def remembered(make: Callable[[], T], *parts: object) -> T:
    """``make()``, or what it returned last time for equal ``parts`` (arrays compared by value)."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(f"{part.dtype.str}{part.shape}".encode())
            digest.update(np.ascontiguousarray(part).data)
        else:
            digest.update(repr(part).encode())
    key = digest.digest()
    with _pictures_lock:
        if key in _pictures:
            _pictures.move_to_end(key)
            return _pictures[key]
    made = make()
    with _pictures_lock:
        _pictures[key] = made
        while len(_pictures) > CACHED_PICTURES:
            _pictures.popitem(last=False)
    return made


def image_uri(image: np.ndarray) -> tuple[str, bool]:
    """(data URI, lossless): a PNG (grey scans as one channel) while small enough, else a JPEG without chroma
    subsampling."""
    rgb = _rgb(image)
    gray = bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
    pil = Image.fromarray(rgb[..., 0] if gray else rgb)
    lossless = data_uri(pil, "PNG", compress_level=6)
    if len(lossless) * 3 // 4 <= LOSSLESS_IMAGE_BYTES:
        return lossless, True
    return data_uri(pil, "JPEG", quality=JPEG_QUALITY, subsampling=0), False


def hover_grid(values: np.ndarray, segments: np.ndarray | None = None, cells: int = HOVER_CELLS):
    """The hover layer: (x edges, y edges, z, customdata, block).

    Without ``segments``: z is the mean of each block×block block (the last row and column may be narrower);
    customdata is None. With them: each cell takes the superpixel under its centre, z is that superpixel's
    mean value per pixel (what its colour shows) and customdata[..., 0] its id, [..., 1] its total (the sum
    of its pixels: the superpixel's SHAP value).
    """
    values = np.asarray(values, dtype=np.float64)
    height, width = values.shape
    block = max(1, -(-max(height, width) // cells))
    rows, columns = -(-height // block), -(-width // block)
    x_edges = np.minimum(np.arange(columns + 1) * block, width) - 0.5
    y_edges = np.minimum(np.arange(rows + 1) * block, height) - 0.5
    if segments is None:
        padded = np.full((rows * block, columns * block), np.nan)
        padded[:height, :width] = values
        blocks = padded.reshape(rows, block, columns, block)
        counts = np.isfinite(blocks).sum(axis=(1, 3))
        sums = np.nansum(blocks, axis=(1, 3))
        z = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        return x_edges, y_edges, z.astype(np.float32), None, block
    labels = np.asarray(segments).astype(np.int64)
    count = int(labels.max()) + 1
    totals = np.bincount(labels.ravel(), weights=np.nan_to_num(values).ravel(), minlength=count)
    area = np.bincount(labels.ravel(), minlength=count)
    centre_y = ((y_edges[:-1] + y_edges[1:]) / 2 + 0.5).astype(int).clip(0, height - 1)
    centre_x = ((x_edges[:-1] + x_edges[1:]) / 2 + 0.5).astype(int).clip(0, width - 1)
    under = labels[np.ix_(centre_y, centre_x)]
    z = totals[under] / np.maximum(area[under], 1)
    customdata = np.stack([under, totals[under]], axis=-1).astype(np.float32)
    return x_edges, y_edges, z.astype(np.float32), customdata, block


def curves_figure(curves: Mapping[str, Any]) -> go.Figure:
    """Each method's deletion and insertion curves (``curves``: method name → explainers.faithfulness.Faithfulness
    of one class), beside those of a random order (the first method's)."""
    import plotly.graph_objects as go  # here: the pages that draw no chart do not load plotly

    figure = go.Figure()
    for name, score in curves.items():
        figure.add_trace(go.Scatter(x=score.fractions, y=score.deletion, name=f"{name} deletion"))
        figure.add_trace(
            go.Scatter(x=score.fractions, y=score.insertion, name=f"{name} insertion", line={"dash": "dot"})
        )
    score = next(iter(curves.values()))
    figure.add_trace(
        go.Scatter(x=score.fractions, y=score.random_deletion, name="random deletion", line={"color": "grey"})
    )
    figure.add_trace(
        go.Scatter(
            x=score.fractions, y=score.random_insertion, name="random insertion", line={"color": "grey", "dash": "dot"}
        )
    )
    figure.update_layout(
        xaxis_title="fraction of features removed / inserted", yaxis_title="probability", height=380, margin={"t": 10}
    )
    return figure
