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
TIP = re.compile(r'<i data-tip="([^"]*)"></i>')
AREA = re.compile(r">i:nth-child\((\d+)\)\{grid-area:(\d+)/(\d+)/(\d+)/(\d+)\}")
TEMPLATE = re.compile(r"\.sx-g-[0-9a-f]+\{grid-template:([^/}]+)/([^}]+)\}")


@pytest.fixture(scope="module")
def cat_map():
    cat = np.asarray(
        Image.open(ROOT / "assets" / "samples" / "photos" / "chelsea.png")
        .convert("RGB")
        .resize((224, 224), Image.Resampling.BILINEAR)
    )
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


def boxes(panel: str) -> list[tuple[str, int, int, int, int]]:
    """(text, row, column, row end, column end) of each hover box: its text in the panel, its place in the
    geometry's style (the n-th box takes the n-th rule)."""
    areas = {int(index): tuple(map(int, area)) for index, *area in AREA.findall(panel)}
    tips = TIP.findall(panel)
    assert sorted(areas) == list(range(1, len(tips) + 1))
    return [(tip, *areas[index]) for index, tip in enumerate(tips, start=1)]


def covered(panel: str) -> np.ndarray:
    """How many hover boxes cover each pixel of the map (the grid's tracks are in pixels)."""
    [(rows, columns)] = TEMPLATE.findall(panel)
    y, x = np.cumsum([0, *tracks(rows)]), np.cumsum([0, *tracks(columns)])
    grid = np.zeros((y[-1], x[-1]), dtype=np.int32)
    for _, row, column, row_end, column_end in boxes(panel):
        grid[y[row - 1] : y[row_end - 1], x[column - 1] : x[column_end - 1]] += 1
    return grid


def test_an_overlay_is_one_picture_with_a_hover_layer_over_all_of_it(cat_map) -> None:
    cat, values, segments, shapley = cat_map
    panel = overlay_panel(cat, values, limit=0.01, title="Egyptian cat · p = 0.6", segments=segments)
    assert picture_of(panel).size == (224, 224)
    grid = covered(panel)
    assert grid.shape == (224, 224) and (grid == 1).all()  # every pixel of the map has exactly one box over it
    tips = {tip for tip, *_ in boxes(panel)}
    label = int(segments[112, 112])
    assert f"superpixel {label}: +30.0 pp" in tips  # its value, the sum over its pixels, in percentage points
    assert len(panel) < 60_000, len(panel)
    assert "Egyptian cat · p = 0.6" in panel and "sx-bar" in panel


def test_the_hover_grid_follows_a_map_whose_size_is_no_multiple_of_its_cells() -> None:
    values = np.random.default_rng(2).normal(0, 1, (240, 240))
    panel = overlay_panel(np.zeros((240, 240, 3), np.uint8), values, limit=1.0)
    grid = covered(panel)
    assert grid.shape == (240, 240) and (grid == 1).all()


def test_a_pixel_map_hovers_by_block(cat_map) -> None:
    cat, values, _, _ = cat_map
    from explainers.outputs import shown

    noisy = values + np.random.default_rng(1).normal(0, 1e-5, values.shape)
    found = boxes(overlay_panel(cat, noisy, limit=0.01))
    assert len(found) == 16 * 16 and all(tip.endswith("pp in this block") for tip, *_ in found)
    # A block's total: the sum of its pixels' values, in percentage points.
    block = 224 // 16
    total = float(noisy[:block, :block].astype(np.float64).sum())
    assert found[0][0] == f"x 0–{block - 1}, y 0–{block - 1}: {shown(total, 'probability')} in this block"


def test_what_a_panel_says_is_escaped(cat_map) -> None:
    cat, values, segments, _ = cat_map
    hostile = '<img src=x onerror="alert(1)">'
    for panel in (
        overlay_panel(cat, values, limit=0.01, title=hostile),
        image_panel(cat, title=hostile),
        probability_bars([hostile], [0.5]),
    ):
        assert hostile not in panel and "&lt;img src=x" in panel


def test_regions_are_coloured_by_their_totals_in_the_units_of_the_output(cat_map) -> None:
    from viz.panels import map_unit, shown_limit, shown_map

    cat, values, segments, shapley = cat_map
    shown = shown_map(values, segments, "probability")
    for label in (0, 5, int(segments[112, 112])):  # every pixel of a region shows the region's total, in pp
        assert np.allclose(shown[segments == label], 100 * shapley[label], rtol=1e-4)
    assert np.allclose(shown_map(values, segments, "log-odds"), shown / 100)
    assert np.isclose(shown_limit([(values, segments)]), np.percentile(np.abs(shown), 99.5))
    assert map_unit("probability", True) == "pp per region" and map_unit("log-odds", False) == "log-odds per 100 px"
    panel = overlay_panel(cat, values, limit=30.0, segments=segments, output="log-odds")
    assert "log-odds per region" in panel and f"superpixel {int(segments[112, 112])}: +0.30 log-odds" in panel


def test_the_hidden_background_note_names_the_range_over_methods() -> None:
    from viz.panels import hidden_note

    assert hidden_note({}) == ""
    assert (
        hidden_note({"Kernel SHAP": 0.04})
        == " The background outside the head is hidden; it holds 4% of the attribution."
    )
    said = hidden_note({"Kernel SHAP": 0.22, "Partition SHAP": 0.54, "Permutation SHAP": 0.14})
    assert "from 14% (Permutation SHAP) to 54% (Partition SHAP)" in said and "worth a look" in said


def test_the_colour_bar_runs_blue_to_red_between_the_limits() -> None:
    bar = colour_bar(0.25, unit="SHAP value")
    assert "-0.25" in bar and "+0.25" in bar and "rgb(5,48,97)" in bar and "rgb(103,0,31)" in bar


def test_probability_bars_are_as_long_as_the_probabilities() -> None:
    bars = probability_bars(["tabby", "tiger cat"], [0.632, 0.2])
    assert re.findall(r"sx-fill\" style=\"width:([\d.]+)%", bars) == ["63.2", "20.0"] and "63.2%" in bars


def test_a_page_sends_its_image_once_and_every_overlay_draws_it_as_a_grey_backdrop(cat_map) -> None:
    cat, values, segments, _ = cat_map
    sent: set[str] = set()
    page = image_panel(cat, title="chelsea", sent=sent) + "".join(
        overlay_panel(cat, values * scale, limit=0.01, segments=segments, sent=sent) for scale in (1, 2, 3)
    )
    [(name, uri)] = set(re.findall(r"\.(sx-p-[0-9a-f]+)\{background-image:url\((data:image/[^)]+)\)\}", page))
    assert page.count(uri) == 1 and page.count(f'sx-grey {name}"') == 3
    assert page.count("<style>\n.sx-panel") == 1 and len(TEMPLATE.findall(page)) == 1  # style sheet, geometry: once
    alone = len(image_panel(cat)) + sum(
        len(overlay_panel(cat, values * scale, limit=0.01, segments=segments)) for scale in (1, 2, 3)
    )
    assert len(page) < 0.5 * alone, (len(page), alone)  # under half of what self-contained panels would send
    # The heatmap layer: the map's colours alone, its brightest superpixel dark red.
    heat = np.asarray(picture_of(overlay_panel(cat, values, limit=30.0, segments=segments)).convert("RGB")).astype(int)
    assert heat[112, 112, 0] > 90 and heat[112, 112, 2] < 60
    # The CSS filter (grayscale, contrast .4, brightness 1.252) makes the dimmed grey of the grid PNG.
    from viz.plots import _grayscale

    luminance = cat.astype(np.float64) @ [0.2126, 0.7152, 0.0722] / 255
    css = np.clip(1.252 * (0.5 + 0.4 * (luminance - 0.5)), 0, 1) * 255
    assert np.abs(css - _grayscale(cat)[..., 0]).max() < 6


def test_pixels_without_a_value_are_transparent_in_the_heatmap(cat_map) -> None:
    cat, values, _, _ = cat_map
    holes = values.copy()
    holes[:20] = np.nan
    picture = picture_of(overlay_panel(cat, holes, limit=0.01)).convert("RGBA")
    alpha = np.asarray(picture)[..., 3]
    assert (alpha[:20] == 0).all() and (alpha[20:] == 255).all()


def test_outlines_are_their_own_transparent_layer(cat_map) -> None:
    from skimage.segmentation import find_boundaries

    cat, values, segments, _ = cat_map
    edges = find_boundaries(segments)
    panel = overlay_panel(cat, values, limit=0.01, segments=segments, outlines=edges)
    [source] = re.findall(r'<img class="sx-edge" src="data:image/png;base64,([^"]+)"', panel)
    alpha = np.asarray(Image.open(io.BytesIO(base64.b64decode(source))).convert("RGBA"))[..., 3]
    assert ((alpha > 0) == edges).all()
