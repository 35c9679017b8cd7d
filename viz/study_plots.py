"""Plotly figures of a study's results (the plain data of ``studies.summarise``). They return
figures; showing them is the page's job."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from studies import condition_label

# One colour per condition, in the study's order (plotly's default qualitative palette).
PALETTE = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880")


def _colour(conditions: Sequence[str], condition: str) -> str:
    return PALETTE[list(conditions).index(condition) % len(PALETTE)] if condition in conditions else "#888"


def _error_bars(rows: Sequence[Mapping[str, Any]], centre: str) -> dict[str, Any]:
    """Asymmetric error bars from ci_low/ci_high (none where the interval is unknown)."""
    return {
        "type": "data",
        "symmetric": False,
        "array": [0 if row["ci_high"] is None or row[centre] is None else row["ci_high"] - row[centre] for row in rows],
        "arrayminus": [
            0 if row["ci_low"] is None or row[centre] is None else row[centre] - row["ci_low"] for row in rows
        ],
    }


def _layout(figure: go.Figure, title: str, height: int) -> go.Figure:
    figure.update_layout(
        title={"text": title, "x": 0.02, "font": {"size": 14}},
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"title": {"text": "condition"}},
    )
    return figure


def questions_figure(results: Mapping[str, Any], height: int = 360) -> go.Figure:
    """Per numeric question (x), one bar per condition: the mean with its 95% interval."""
    conditions = results["conditions"]
    figure = go.Figure()
    for condition in conditions:
        rows = [row for row in results["questions"] if row["condition"] == condition]
        if not rows:
            continue
        figure.add_trace(
            go.Bar(
                name=condition_label(condition),
                x=[row["question"] for row in rows],
                y=[row["mean"] for row in rows],
                error_y=_error_bars(rows, "mean"),
                marker_color=_colour(conditions, condition),
                customdata=[[row["participants"], row["answers"], row["prompt"]] for row in rows],
                hovertemplate="%{customdata[2]}<br>mean %{y:.2f}<br>%{customdata[0]} participants, "
                "%{customdata[1]} answers<extra>" + condition_label(condition) + "</extra>",
            )
        )
    figure.update_layout(barmode="group", yaxis_title="mean answer (95% CI over participants)")
    return _layout(figure, "Answers per condition", height)


def accuracy_figure(results: Mapping[str, Any], height: int = 320) -> go.Figure:
    """Forward-simulation accuracy per condition with 95% Wilson intervals."""
    conditions = results["conditions"]
    rows = [row for row in results["accuracy"] if row["answers"]]
    figure = go.Figure(
        go.Bar(
            x=[condition_label(row["condition"]) for row in rows],
            y=[row["accuracy"] for row in rows],
            error_y=_error_bars(rows, "accuracy"),
            marker_color=[_colour(conditions, row["condition"]) for row in rows],
            text=[f"{row['correct']}/{row['answers']}" for row in rows],
            textposition="inside",
            hovertemplate="%{x}: %{y:.0%} correct<extra>%{text}</extra>",
        )
    )
    figure.update_layout(
        yaxis={"title": "predicted the model's answer", "range": [0, 1], "tickformat": ".0%"}, showlegend=False
    )
    return _layout(figure, "Forward simulation: accuracy per condition", height)


def time_figure(results: Mapping[str, Any], height: int = 320) -> go.Figure:
    """Seconds per trial by condition: the mean with its 95% interval, and the median as a marker."""
    conditions = results["conditions"]
    rows = [row for row in results["time"] if row["trials"]]
    labels = [condition_label(row["condition"]) for row in rows]
    figure = go.Figure()
    figure.add_trace(
        go.Bar(
            name="mean",
            x=labels,
            y=[row["mean"] for row in rows],
            error_y=_error_bars(rows, "mean"),
            marker_color=[_colour(conditions, row["condition"]) for row in rows],
            hovertemplate="%{x}: mean %{y:.1f} s<extra></extra>",
        )
    )
    figure.add_trace(
        go.Scatter(
            name="median",
            x=labels,
            y=[row["median"] for row in rows],
            mode="markers",
            marker={"symbol": "diamond", "size": 10, "color": "#222"},
            hovertemplate="%{x}: median %{y:.1f} s<extra></extra>",
        )
    )
    figure.update_layout(yaxis_title="seconds per trial")
    return _layout(figure, "Time per trial", height)


def completion_figure(results: Mapping[str, Any], height: int = 280) -> go.Figure:
    """How many participants got how far (trials answered)."""
    rows = results["participants"]["rows"]
    total = max((row["total"] for row in rows), default=0)
    counts = [sum(1 for row in rows if row["done"] == done) for done in range(total + 1)]
    figure = go.Figure(
        go.Bar(
            x=list(range(total + 1)),
            y=counts,
            marker_color="#4c78a8",
            hovertemplate="%{y} participants answered %{x} trials<extra></extra>",
        )
    )
    figure.update_layout(xaxis={"title": "trials answered", "dtick": 1}, yaxis_title="participants", showlegend=False)
    started, finished = results["participants"]["started"], results["participants"]["finished"]
    return _layout(figure, f"Participants: {started} started, {finished} finished", height)
