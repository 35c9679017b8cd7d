"""Plotly figures of explanations. They return figures; showing them is the page's job."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

# Red raises the class's probability, blue lowers it (the convention of shap's image plots).
DIVERGING = "RdBu_r"


def symmetric_limit(maps: np.ndarray | list[np.ndarray], percentile: float = 99.5,
                    across: str = "max") -> float:
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


def _grayscale(image: np.ndarray) -> np.ndarray:
    """The image as a dimmed grey backdrop, so the colours on top read as attribution only."""
    gray = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    dimmed = (96 + gray * 0.5).clip(0, 255).astype(np.uint8)
    return np.repeat(dimmed[..., None], 3, axis=2)


def overlay_figure(image: np.ndarray, values: np.ndarray, *, limit: float, opacity: float = 0.7,
                   title: str = "", height: int = 320, segments: np.ndarray | None = None,
                   outlines: np.ndarray | None = None, show_colorbar: bool = True) -> go.Figure:
    """The attribution map over a grey copy of the image, diverging colours centred on 0.

    Hovering shows the pixel position and its value (and its superpixel when ``segments`` is given).
    """
    figure = go.Figure()
    figure.add_trace(go.Image(z=_grayscale(image), hoverinfo="skip"))
    customdata = None
    hovertemplate = "x %{x}, y %{y}<br>SHAP value %{z:.3g}<extra></extra>"
    if segments is not None:
        customdata = segments
        hovertemplate = "x %{x}, y %{y}<br>superpixel %{customdata}<br>SHAP value %{z:.3g}<extra></extra>"
    figure.add_trace(go.Heatmap(
        z=values, zmin=-limit, zmax=limit, zmid=0, colorscale=DIVERGING, opacity=opacity,
        customdata=customdata, hovertemplate=hovertemplate, showscale=show_colorbar,
        colorbar={"title": {"text": "SHAP", "side": "right"}, "thickness": 12, "len": 0.9,
                  "exponentformat": "e", "nticks": 5},
    ))
    if outlines is not None:
        figure.add_trace(go.Heatmap(z=np.where(outlines, 1.0, np.nan), colorscale=[[0, "#222"], [1, "#222"]],
                                    showscale=False, hoverinfo="skip", opacity=0.8))
    figure.update_layout(
        title={"text": title, "x": 0.02, "font": {"size": 14}}, height=height,
        margin={"l": 0, "r": 0, "t": 36 if title else 4, "b": 0},
    )
    figure.update_xaxes(visible=False, showgrid=False)
    figure.update_yaxes(visible=False, showgrid=False, scaleanchor="x")
    return figure


def image_figure(image: np.ndarray, *, title: str = "", height: int = 320) -> go.Figure:
    """The image as the model sees it, at its input resolution."""
    figure = go.Figure(go.Image(z=image, hovertemplate="x %{x}, y %{y}<br>RGB %{z}<extra></extra>"))
    figure.update_layout(title={"text": title, "x": 0.02, "font": {"size": 14}}, height=height,
                         margin={"l": 0, "r": 0, "t": 36 if title else 4, "b": 0})
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, scaleanchor="x")
    return figure


def probability_figure(names: list[str], probs: list[float], height: int = 220) -> go.Figure:
    """Horizontal bars of the top-k class probabilities, most probable on top."""
    figure = go.Figure(go.Bar(x=probs[::-1], y=names[::-1], orientation="h", text=[f"{p:.1%}" for p in probs[::-1]],
                              textposition="auto", marker_color="#4c78a8",
                              hovertemplate="%{y}: %{x:.4f}<extra></extra>"))
    figure.update_layout(height=height, margin={"l": 0, "r": 0, "t": 4, "b": 0},
                         xaxis={"range": [0, 1], "tickformat": ".0%"})
    return figure
