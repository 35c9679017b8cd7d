"""The report's pictures as PNGs at print resolution: one map (over the image), the image itself, and a whole
colour bar with its ends, zero, its unit and what each end means. No browser, no plotting library."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from viz.render import colourise, overlay

MAP_PIXELS = 640  # a map's side in the PDF: 640 px over 80 mm is 203 dpi (the report asks at least 150)
BAR_SIZE = (2000, 200)  # the colour bar over the text width (170 mm): 299 dpi


def png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def picture_png(image: np.ndarray, side: int = MAP_PIXELS) -> bytes:
    """The image as the model sees it, enlarged smoothly to ``side`` pixels across."""
    picture = Image.fromarray(np.asarray(image, dtype=np.uint8))
    height = round(side * picture.height / picture.width)
    return png(picture.resize((side, height), Image.Resampling.BICUBIC))


def map_png(image: np.ndarray, values: np.ndarray, limit: float, side: int = MAP_PIXELS) -> bytes:
    """One map over a dimmed copy of the image, each region's colour kept sharp (nearest-neighbour) at ``side``."""
    tile = Image.fromarray(overlay(image, values, limit))
    height = round(side * tile.height / tile.width)
    return png(tile.resize((side, height), Image.Resampling.NEAREST))


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def colour_bar_png(limit: float, unit: str, low: str, high: str, size: tuple[int, int] = BAR_SIZE) -> bytes:
    """The whole scale, −limit to +limit, with ticks at the ends, the middle and the quarters, the unit under it,
    and what each end means (``low`` / ``high``, e.g. "lowers glioma" / "raises glioma")."""
    width, height = size
    canvas = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(canvas)
    font, small = _font(38), _font(34)
    margin, top, ramp_height = 90, 50, 56
    span = width - 2 * margin
    ramp = colourise(np.linspace(-limit, limit, span)[None, :].repeat(ramp_height, axis=0), limit)
    canvas.paste(Image.fromarray(ramp), (margin, top))
    draw.rectangle((margin - 1, top - 1, margin + span, top + ramp_height), outline="black", width=2)
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = margin + round(fraction * (span - 1))
        draw.line((x, top + ramp_height, x, top + ramp_height + 14), fill="black", width=3)
        value = (2 * fraction - 1) * limit
        text = "0" if fraction == 0.5 else f"{value:+.2g}"
        box = draw.textbbox((0, 0), text, font=small)
        draw.text((x - (box[2] - box[0]) / 2, top + ramp_height + 18), text, fill="black", font=small)
    draw.text((margin, 4), low, fill=(33, 102, 172), font=font)
    box = draw.textbbox((0, 0), high, font=font)
    draw.text((margin + span - (box[2] - box[0]), 4), high, fill=(178, 24, 43), font=font)
    box = draw.textbbox((0, 0), unit, font=small)
    draw.text(((width - (box[2] - box[0])) / 2, height - 42), unit, fill="black", font=small)
    return png(canvas)
