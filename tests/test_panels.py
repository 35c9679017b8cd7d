"""The HTML panels the pages draw: one compressed picture each, a hover layer that covers the map exactly once
and tells each superpixel's SHAP value, a colour bar, and nothing unescaped."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.segmentation import slic

from viz.panels import colour_bar, image_panel, overlay_panel, probability_bars

ROOT = Path(__file__).resolve().parents[1]
BOX = re.compile(r'<i data-tip="([^"]*)" style="grid-area:(\d+)/(\d+)/(\d+)/(\d+)"></i>')
TEMPLATE = re.compile(r'class="sx-hover" style="grid-template:([^/"]+)/([^"]+)"')


@pytest.fixture(scope="module")
def cat_map():
    cat = np.asarray(Image.open(ROOT / "assets" / "samples" / "photos" / "chelsea.png").convert("RGB")
                     .resize((224, 224), Image.Resampling.BILINEAR))
    segments = slic(cat, n_segments=50, compactness=30, sigma=3, start_label=0)
    count = int(segments.max()) + 1
    shapley = np.random.default_rng(0).normal(0, 0.01, count)
    shapley[int(segments[112, 112])] = 0.3
    area = np.bincount(segments.ravel(), minlength=count)
    return cat, (shapley / area)[segments].astype(np.float32), segments, shapley


def picture_of(panel: str) -> Image.Image:
    [source] = re.findall(r'<img src="data:image/\w+;base64,([^"]+)"', panel)
    return Image.open(io.BytesIO(base64.b64decode(source)))


def tracks(template: str) -> list[int]:
    sizes = []
    for part in template.split():
        repeat = re.fullmatch(r"repeat\((\d+),(\d+)fr\)", part)
        sizes += [int(repeat[2])] * int(repeat[1]) if repeat else [int(part.removesuffix("fr"))]
    return sizes


def covered(panel: str) -> np.ndarray:
    """How many hover boxes cover each pixel of the map (the grid's tracks are in pixels)."""
    [(rows, columns)] = TEMPLATE.findall(panel)
    y, x = np.cumsum([0, *tracks(rows)]), np.cumsum([0, *tracks(columns)])
    grid = np.zeros((y[-1], x[-1]), dtype=np.int32)
    for _, row, column, row_end, column_end in BOX.findall(panel):
        grid[y[int(row) - 1]:y[int(row_end) - 1], x[int(column) - 1]:x[int(column_end) - 1]] += 1
    return grid


def test_an_overlay_is_one_picture_with_a_hover_layer_over_all_of_it(cat_map) -> None:
    cat, values, segments, shapley = cat_map
    panel = overlay_panel(cat, values, limit=0.01, title="Egyptian cat · p = 0.6", segments=segments)
    assert picture_of(panel).size == (224, 224)
    grid = covered(panel)
    assert grid.shape == (224, 224) and (grid == 1).all()  # every pixel of the map has exactly one box over it
    tips = {tip for tip, *_ in BOX.findall(panel)}
    label = int(segments[112, 112])
    assert f"superpixel {label}: +0.3" in tips  # its SHAP value: the sum over its pixels
    assert len(panel) < 60_000, len(panel)
    assert "Egyptian cat · p = 0.6" in panel and "sx-bar" in panel


def test_the_hover_grid_follows_a_map_whose_size_is_no_multiple_of_its_cells() -> None:
    values = np.random.default_rng(2).normal(0, 1, (240, 240))
    panel = overlay_panel(np.zeros((240, 240, 3), np.uint8), values, limit=1.0)
    grid = covered(panel)
    assert grid.shape == (240, 240) and (grid == 1).all()


def test_a_pixel_map_hovers_by_block(cat_map) -> None:
    cat, values, _, _ = cat_map
    panel = overlay_panel(cat, values + np.random.default_rng(1).normal(0, 1e-5, values.shape), limit=0.01)
    boxes = BOX.findall(panel)
    assert len(boxes) == 16 * 16 and all("per pixel" in tip for tip, *_ in boxes)


def test_what_a_panel_says_is_escaped(cat_map) -> None:
    cat, values, segments, _ = cat_map
    hostile = '<img src=x onerror="alert(1)">'
    for panel in (overlay_panel(cat, values, limit=0.01, title=hostile), image_panel(cat, title=hostile),
                  probability_bars([hostile], [0.5])):
        assert hostile not in panel and "&lt;img src=x" in panel


def test_the_colour_bar_runs_blue_to_red_between_the_limits() -> None:
    bar = colour_bar(0.25, unit="SHAP value")
    assert "-0.25" in bar and "+0.25" in bar and "rgb(5,48,97)" in bar and "rgb(103,0,31)" in bar


def test_probability_bars_are_as_long_as_the_probabilities() -> None:
    bars = probability_bars(["tabby", "tiger cat"], [0.632, 0.2])
    assert re.findall(r"sx-fill\" style=\"width:([\d.]+)%", bars) == ["63.2", "20.0"] and "63.2%" in bars
