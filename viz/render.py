"""Static renderings of explanations (PNG), for downloads: no browser, no plotting library."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# plotly's RdBu, reversed (blue negative, white zero, red positive), as the dashboard shows it.
_RDBU_R = np.array(
    [
        [5, 48, 97],
        [33, 102, 172],
        [67, 147, 195],
        [146, 197, 222],
        [209, 229, 240],
        [247, 247, 247],
        [253, 219, 199],
        [244, 165, 130],
        [214, 96, 77],
        [178, 24, 43],
        [103, 0, 31],
    ],
    dtype=np.float32,
)


def colourise(values: np.ndarray, limit: float) -> np.ndarray:
    """H × W values to H × W × 3 uint8 on the diverging scale, symmetric about 0 with ±limit at the ends."""
    position = np.clip((values / max(limit, 1e-30) + 1) / 2, 0, 1) * (len(_RDBU_R) - 1)
    rgb = np.stack([np.interp(position, np.arange(len(_RDBU_R)), _RDBU_R[:, c]) for c in range(3)], axis=-1)
    return rgb.astype(np.uint8)


def overlay(image: np.ndarray, values: np.ndarray, limit: float, opacity: float = 0.7) -> np.ndarray:
    """The map over a dimmed grey copy of the image; where a value is NaN (a hidden background), the copy alone."""
    gray = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    backdrop = np.repeat((96 + gray * 0.5).clip(0, 255)[..., None], 3, axis=2)
    values = np.asarray(values, dtype=np.float64)
    blended = backdrop * (1 - opacity) + colourise(np.nan_to_num(values), limit) * opacity
    return np.where(np.isnan(values)[..., None], backdrop, blended).astype(np.uint8)


def grid_png(
    image: np.ndarray,
    columns: list[tuple[str, list[np.ndarray]]],
    row_titles: list[str],
    limits: list[float],
    panel: int = 224,
    opacity: float = 0.7,
    colorbar: bool = True,
    unit: str = "per pixel",
) -> bytes:
    """A PNG grid: rows are classes, the first column the image, then one column per method; under it the
    colour bar (one per row's limit when the rows have their own scales), its ends in ``unit``."""
    font = ImageFont.load_default(size=14)
    header, label = 24, 150
    scales = list(dict.fromkeys(float(limit) for limit in limits)) if colorbar else []
    bar_height = 34
    width = label + panel * (len(columns) + 1)
    height = header + panel * len(row_titles) + bar_height * len(scales)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    resized = Image.fromarray(image).resize((panel, panel), Image.Resampling.BILINEAR)
    for column, title in enumerate(["image"] + [name for name, _ in columns]):
        draw.text((label + column * panel + 6, 4), title, fill="black", font=font)
    for row, row_title in enumerate(row_titles):
        top = header + row * panel
        draw.text((6, top + panel // 2 - 8), row_title[:20], fill="black", font=font)
        canvas.paste(resized, (label, top))
        for column, (_, maps) in enumerate(columns, start=1):
            tile = overlay(image, maps[row], limits[row], opacity)
            canvas.paste(
                Image.fromarray(tile).resize((panel, panel), Image.Resampling.NEAREST), (label + column * panel, top)
            )
    for index, limit in enumerate(scales):
        top = header + panel * len(row_titles) + bar_height * index + 6
        left, right = label, min(width - 10, label + 2 * panel + panel // 2)
        ramp = colourise(np.linspace(-limit, limit, right - left)[None, :].repeat(12, axis=0), limit)
        canvas.paste(Image.fromarray(ramp), (left, top))
        which = (
            ""
            if len(scales) == 1
            else f" ({', '.join(t for t, own in zip(row_titles, limits, strict=True) if own == limit)})"
        )
        draw.text((6, top - 2), f"{-limit:+.2g}", fill="black", font=font)
        draw.text((right + 8, top - 2), f"{limit:+.2g} {unit}{which}"[:60], fill="black", font=font)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


def with_banner(png: bytes, lines: list[str]) -> np.ndarray:
    """A picture (PNG bytes) as an RGB array under a banner of text lines burned into its pixels: for a viewer
    that shows pixels only (a DICOM Secondary Capture), the notice, the class, the method and the units."""
    picture = Image.open(io.BytesIO(png)).convert("RGB")
    font = ImageFont.load_default(size=16)
    height = 10 + 22 * len(lines)
    canvas = Image.new("RGB", (picture.width, picture.height + height), "white")
    draw = ImageDraw.Draw(canvas)
    for index, line in enumerate(lines):
        draw.text((8, 6 + 22 * index), line, fill=(170, 20, 20) if index == 0 else "black", font=font)
    canvas.paste(picture, (0, height))
    return np.asarray(canvas)
