"""The dashboard's figures send compressed pictures, not pixel arrays: one PNG per overlay (the grey image and
the colour-mapped map composited here) plus a coarse hover layer, and a compressed input image."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter
from skimage.segmentation import find_boundaries, slic

from viz.plots import composite, hover_grid, image_figure, overlay_figure, symmetric_limit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cat() -> np.ndarray:
    return np.asarray(Image.open(ROOT / "assets" / "samples" / "photos" / "chelsea.png").convert("RGB")
                      .resize((224, 224), Image.Resampling.BILINEAR))


@pytest.fixture(scope="module")
def superpixel_map(cat):
    """A superpixel method's map: each superpixel's value spread over its pixels (as Explanation does), one
    strongly positive superpixel and one strongly negative, the rest small."""
    segments = slic(cat, n_segments=50, compactness=30, sigma=3, start_label=0)
    count = int(segments.max()) + 1
    rng = np.random.default_rng(0)
    shapley = rng.normal(0, 0.01, count)
    positive, negative = int(segments[112, 112]), int(segments[30, 30])
    shapley[positive], shapley[negative] = 0.3, -0.25
    area = np.bincount(segments.ravel(), minlength=count)
    return (shapley / area)[segments].astype(np.float32), segments, positive, negative


def source_of(figure) -> str:
    images = [trace for trace in figure.data if trace.type == "image"]
    assert len(images) == 1 and images[0].z is None, "the picture is one image trace without a pixel array"
    return images[0].source


def decoded(source: str) -> Image.Image:
    header, payload = source.split(",", 1)
    assert header.startswith("data:image/") and header.endswith(";base64")
    return Image.open(io.BytesIO(base64.b64decode(payload)))


def heatmap_of(figure):
    [heatmap] = [trace for trace in figure.data if trace.type == "heatmap"]
    return heatmap


def test_an_overlay_is_one_small_png_of_the_right_size(cat, superpixel_map) -> None:
    values, segments, _, _ = superpixel_map
    figure = overlay_figure(cat, values, limit=symmetric_limit([values]), segments=segments,
                            outlines=find_boundaries(segments, mode="inner"), title="Egyptian cat")
    spec = figure.to_json()
    assert len(spec) < 60_000, f"{len(spec)} bytes"
    source = source_of(figure)
    assert source.startswith("data:image/png;base64,")
    picture = decoded(source)
    assert picture.format == "PNG" and picture.size == (224, 224)
    # No trace carries a full-resolution array any more: the hover layer is 28×28.
    assert np.asarray(heatmap_of(figure).z).shape == (28, 28)
    assert len(json.loads(spec)["data"]) == 2


def test_positive_regions_are_red_and_negative_ones_blue(cat, superpixel_map) -> None:
    values, segments, positive, negative = superpixel_map
    limit = symmetric_limit([values])
    pixels = np.asarray(decoded(source_of(overlay_figure(cat, values, limit=limit, segments=segments)))
                        .convert("RGB")).astype(int)
    red, blue = pixels[segments == positive].mean(axis=0), pixels[segments == negative].mean(axis=0)
    assert red[0] > red[2] + 40 and red[0] > red[1] + 60, red  # towards RdBu_r's dark red end (103, 0, 31)
    assert blue[2] > blue[0] + 50 and blue[2] > blue[1] + 20, blue  # towards its dark blue end (5, 48, 97)
    # The palette PNG keeps the composite's colours within a few levels.
    assert np.abs(pixels - composite(cat, values, limit).astype(int)).max() <= 8


def test_opacity_and_outlines_are_drawn_into_the_picture(cat, superpixel_map) -> None:
    values, segments, _, _ = superpixel_map
    outlines = find_boundaries(segments, mode="inner")
    limit = symmetric_limit([values])
    bare = composite(cat, values, limit, opacity=0.0).astype(int)
    assert (bare[..., 0] == bare[..., 2]).all(), "opacity 0 leaves the grey image"
    outlined = composite(cat, values, limit, outlines=outlines).astype(int)
    assert outlined[outlines].mean() < 0.6 * composite(cat, values, limit).astype(int)[outlines].mean()
    full = composite(cat, values, limit, opacity=1.0)
    assert (full[segments == int(segments[112, 112])] == [103, 0, 31]).all()  # saturated: the scale's end


def test_the_superpixel_hover_layer_tells_each_regions_total_and_mean(cat, superpixel_map) -> None:
    values, segments, positive, _ = superpixel_map
    heatmap = heatmap_of(overlay_figure(cat, values, limit=symmetric_limit([values]), segments=segments))
    z, customdata = np.asarray(heatmap.z), np.asarray(heatmap.customdata)
    assert customdata.shape == (28, 28, 2) and "superpixel" in heatmap.hovertemplate
    totals = np.bincount(segments.ravel(), weights=values.ravel().astype(np.float64))
    area = np.bincount(segments.ravel())
    centres = np.arange(28) * 8 + 4
    under = segments[np.ix_(centres, centres)]
    assert (customdata[..., 0] == under).all()
    np.testing.assert_allclose(customdata[..., 1], totals[under], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(z, totals[under] / area[under], rtol=1e-5, atol=1e-12)
    assert customdata[14, 14, 1] == pytest.approx(0.3, rel=1e-4)  # the positive superpixel's SHAP value
    assert under[14, 14] == positive


def test_without_superpixels_the_hover_layer_holds_block_means() -> None:
    rng = np.random.default_rng(1)
    values = gaussian_filter(rng.normal(size=(224, 224)), 2).astype(np.float32)
    heatmap = heatmap_of(overlay_figure(np.zeros((224, 224, 3), np.uint8), values, limit=0.1))
    np.testing.assert_allclose(np.asarray(heatmap.z), values.reshape(28, 8, 28, 8).mean(axis=(1, 3)), rtol=1e-5,
                               atol=1e-7)
    assert heatmap.customdata is None and "8×8" in heatmap.hovertemplate
    assert list(heatmap.x[:2]) == [-0.5, 7.5] and heatmap.x[-1] == 223.5
    # A 240-pixel map: 9-pixel blocks, the last row and column 6 pixels wide, NaN left out of the means.
    odd = rng.normal(size=(240, 240))
    odd[0, 0] = np.nan
    x, y, z, _, block = hover_grid(odd)
    assert block == 9 and z.shape == (27, 27) and x[-1] == y[-1] == 239.5 and x[-2] == 233.5
    assert z[-1, -1] == pytest.approx(odd[234:, 234:].mean(), rel=1e-5)
    assert z[0, 0] == pytest.approx(np.nanmean(odd[:9, :9]), rel=1e-5)


def test_the_colour_bar_comes_from_the_invisible_hover_layer(cat, superpixel_map) -> None:
    values, segments, _, _ = superpixel_map
    shown = heatmap_of(overlay_figure(cat, values, limit=0.02, segments=segments))
    assert shown.showscale and shown.opacity == 0 and (shown.zmin, shown.zmax) == (-0.02, 0.02)
    assert shown.colorscale[0][1] == "rgb(5,48,97)" and shown.colorscale[-1][1] == "rgb(103,0,31)"  # RdBu_r
    assert not heatmap_of(overlay_figure(cat, values, limit=0.02, show_colorbar=False)).showscale


def test_axes_are_those_of_an_image(cat, superpixel_map) -> None:
    values = superpixel_map[0]
    figure = overlay_figure(cat, values, limit=0.01, height=260, title="kernel")
    assert figure.layout.height == 260 and figure.layout.margin.t == 36
    assert figure.layout.yaxis.scaleanchor == "x" and figure.layout.yaxis.visible is False
    assert figure.layout.xaxis.visible is False
    assert image_figure(cat).layout.height == 320 and image_figure(cat).layout.margin.t == 4


def test_a_map_with_nan_shows_the_grey_image_there(cat) -> None:
    values = np.full((224, 224), np.nan, dtype=np.float32)
    values[100:, :] = 0.5
    picture = np.asarray(decoded(source_of(overlay_figure(cat, values, limit=1.0))).convert("RGB")).astype(int)
    assert np.abs(picture[:100, ..., 0] - picture[:100, ..., 2]).max() <= 4
    assert picture[150:, :, 0].mean() > picture[150:, :, 2].mean() + 40


def test_the_input_image_is_sent_compressed(cat) -> None:
    figure = image_figure(cat, title="chelsea as the model sees it")
    assert len(figure.to_json()) < 40_000
    picture = decoded(source_of(figure))
    assert picture.size == (224, 224)
    error = np.abs(np.asarray(picture.convert("RGB")).astype(int) - cat.astype(int))
    assert error.mean() < 4 and "≈" in figure.data[0].hovertemplate  # a photo goes as a JPEG
    scan = np.repeat(cat[..., :1], 3, axis=2)[:, :, :]
    scan[:, :, :] = (scan // 16) * 16  # a flat-toned grey scan: lossless, one channel
    picture = decoded(source_of(image_figure(scan)))
    assert picture.format == "PNG" and picture.mode == "L"
    assert (np.asarray(picture) == scan[..., 0]).all()


def test_a_digit_keeps_every_pixel_and_every_value_on_hover() -> None:
    rng = np.random.default_rng(2)
    digit = rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)
    values = rng.normal(size=(28, 28)).astype(np.float32)
    figure = overlay_figure(digit, values, limit=2.0)
    picture = np.asarray(decoded(source_of(figure)).convert("RGB"))
    assert (picture == composite(digit, values, 2.0)).all()
    heatmap = heatmap_of(figure)
    np.testing.assert_allclose(np.asarray(heatmap.z), values, rtol=1e-6)
    assert "block" not in heatmap.hovertemplate
    assert (np.asarray(decoded(source_of(image_figure(digit))).convert("RGB")) == digit).all()
