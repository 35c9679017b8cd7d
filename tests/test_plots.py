"""The pictures the HTML panels are made of: the map's colours as a small palette PNG, the input image compressed
(losslessly where small), the composite the browser draws from them, and the coarse hover grid."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter
from skimage.segmentation import find_boundaries, slic

from viz.plots import composite, heatmap_uri, hover_grid, image_uri, symmetric_limit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cat() -> np.ndarray:
    return np.asarray(
        Image.open(ROOT / "assets" / "samples" / "photos" / "chelsea.png")
        .convert("RGB")
        .resize((224, 224), Image.Resampling.BILINEAR)
    )


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


def decoded(source: str) -> Image.Image:
    header, payload = source.split(",", 1)
    assert header.startswith("data:image/") and header.endswith(";base64")
    return Image.open(io.BytesIO(base64.b64decode(payload)))


def test_a_maps_colours_are_one_small_png_of_the_right_size(superpixel_map) -> None:
    values, segments, _, _ = superpixel_map
    source = heatmap_uri(values, symmetric_limit([values]))
    assert source.startswith("data:image/png;base64,") and len(source) < 60_000, len(source)
    picture = decoded(source)
    assert picture.format == "PNG" and picture.size == (224, 224) and picture.mode == "P"


def test_positive_regions_are_red_and_negative_ones_blue(cat, superpixel_map) -> None:
    values, segments, positive, negative = superpixel_map
    limit = symmetric_limit([values])
    pixels = composite(cat, values, limit).astype(int)
    red, blue = pixels[segments == positive].mean(axis=0), pixels[segments == negative].mean(axis=0)
    assert red[0] > red[2] + 40 and red[0] > red[1] + 60, red  # towards RdBu_r's dark red end (103, 0, 31)
    assert blue[2] > blue[0] + 50 and blue[2] > blue[1] + 20, blue  # towards its dark blue end (5, 48, 97)
    # The palette PNG keeps the map's colours within a few levels.
    colours = np.asarray(decoded(heatmap_uri(values, limit)).convert("RGB")).astype(int)
    full = composite(np.zeros_like(cat), values, limit, opacity=1.0).astype(int)
    assert np.abs(colours - full).max() <= 8


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


def test_the_superpixel_hover_grid_tells_each_regions_total_and_mean(superpixel_map) -> None:
    values, segments, positive, _ = superpixel_map
    _, _, z, customdata, _ = hover_grid(values, segments)
    assert customdata.shape == (28, 28, 2)
    totals = np.bincount(segments.ravel(), weights=values.ravel().astype(np.float64))
    area = np.bincount(segments.ravel())
    centres = np.arange(28) * 8 + 4
    under = segments[np.ix_(centres, centres)]
    assert (customdata[..., 0] == under).all()
    np.testing.assert_allclose(customdata[..., 1], totals[under], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(z, totals[under] / area[under], rtol=1e-5, atol=1e-12)
    assert customdata[14, 14, 1] == pytest.approx(0.3, rel=1e-4)  # the positive superpixel's SHAP value
    assert under[14, 14] == positive


def test_without_superpixels_the_hover_grid_holds_block_means() -> None:
    rng = np.random.default_rng(1)
    values = gaussian_filter(rng.normal(size=(224, 224)), 2).astype(np.float32)
    x, _, z, customdata, block = hover_grid(values)
    np.testing.assert_allclose(z, values.reshape(28, 8, 28, 8).mean(axis=(1, 3)), rtol=1e-5, atol=1e-7)
    assert customdata is None and block == 8
    assert list(x[:2]) == [-0.5, 7.5] and x[-1] == 223.5
    # A 240-pixel map: 9-pixel blocks, the last row and column 6 pixels wide, NaN left out of the means.
    odd = rng.normal(size=(240, 240))
    odd[0, 0] = np.nan
    x, y, z, _, block = hover_grid(odd)
    assert block == 9 and z.shape == (27, 27) and x[-1] == y[-1] == 239.5 and x[-2] == 233.5
    assert z[-1, -1] == pytest.approx(odd[234:, 234:].mean(), rel=1e-5)
    assert z[0, 0] == pytest.approx(np.nanmean(odd[:9, :9]), rel=1e-5)


def test_a_map_with_nan_shows_the_grey_image_there(cat) -> None:
    values = np.full((224, 224), np.nan, dtype=np.float32)
    values[100:, :] = 0.5
    picture = composite(cat, values, limit=1.0).astype(int)
    assert np.abs(picture[:100, ..., 0] - picture[:100, ..., 2]).max() <= 4
    assert picture[150:, :, 0].mean() > picture[150:, :, 2].mean() + 40
    colours = decoded(heatmap_uri(values, 1.0))
    assert "transparency" in colours.info  # no value: the panel's grey backdrop shows through
    assert (np.asarray(colours)[:100] == colours.info["transparency"]).all()


def test_the_input_image_is_sent_compressed(cat) -> None:
    source, lossless = image_uri(cat)
    assert len(source) < 40_000 and not lossless  # a photo goes as a JPEG
    picture = decoded(source)
    assert picture.size == (224, 224)
    error = np.abs(np.asarray(picture.convert("RGB")).astype(int) - cat.astype(int))
    assert error.mean() < 4
    scan = np.repeat(cat[..., :1], 3, axis=2)[:, :, :]
    scan[:, :, :] = (scan // 16) * 16  # a flat-toned grey scan: lossless, one channel
    source, lossless = image_uri(scan)
    picture = decoded(source)
    assert lossless and picture.format == "PNG" and picture.mode == "L"
    assert (np.asarray(picture) == scan[..., 0]).all()


def test_a_digit_keeps_every_pixel_and_every_value_on_hover() -> None:
    rng = np.random.default_rng(2)
    digit = rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)
    values = rng.normal(size=(28, 28)).astype(np.float32)
    colours = np.asarray(decoded(heatmap_uri(values, 2.0)).convert("RGB"))
    assert (colours == composite(np.zeros_like(digit), values, 2.0, opacity=1.0)).all()  # every colour kept
    _, _, z, _, block = hover_grid(values)
    np.testing.assert_allclose(z, values, rtol=1e-6)
    assert block == 1
    assert (np.asarray(decoded(image_uri(digit)[0]).convert("RGB")) == digit).all()
