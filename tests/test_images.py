"""Reading images: every supported format and mode, EXIF orientation, and one clear sentence for bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from explainers import images
from explainers.images import ImageError, decode_image, image_digest
from models import list_samples


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.fixture
def rgb() -> Image.Image:
    array = np.zeros((20, 30, 3), dtype=np.uint8)
    array[:, :15] = (200, 40, 10)  # left half red, right half blue
    array[:, 15:] = (10, 40, 200)
    return Image.fromarray(array)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF", "BMP", "WEBP"])
def test_every_supported_format_decodes_to_rgb_uint8(rgb, fmt) -> None:
    decoded = decode_image(encode(rgb, fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {})))
    assert decoded.shape == (20, 30, 3) and decoded.dtype == np.uint8
    assert decoded[10, 5, 0] > 150 and decoded[10, 25, 2] > 150  # red stays left, blue stays right


def test_exif_orientation_is_applied(rgb) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    decoded = decode_image(encode(rgb, "JPEG", exif=exif.tobytes(), quality=95))
    assert decoded.shape == (30, 20, 3)  # portrait now
    assert decoded[5, 10, 0] > 150 and decoded[25, 10, 2] > 150  # red on top after the rotation


@pytest.mark.parametrize("mode", ["L", "1", "P", "RGBA", "LA", "CMYK"])
def test_other_modes_become_rgb(rgb, mode) -> None:
    converted = rgb.convert(mode)
    decoded = decode_image(encode(converted, "TIFF" if mode == "CMYK" else "PNG"))
    assert decoded.shape == (20, 30, 3) and decoded.dtype == np.uint8


def test_transparency_is_composited_over_black() -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., :3] = 255
    rgba[:2, :, 3] = 255  # top half opaque white, bottom half transparent
    decoded = decode_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert decoded[0, 0].tolist() == [255, 255, 255] and decoded[3, 3].tolist() == [0, 0, 0]


def test_sixteen_bit_grayscale_is_stretched_to_eight_bits() -> None:
    ramp = np.linspace(1000, 5000, 64, dtype=np.uint16).reshape(8, 8)  # a 12-bit scanner's range
    decoded = decode_image(encode(Image.fromarray(ramp), "PNG"))
    assert decoded.dtype == np.uint8 and decoded.shape == (8, 8, 3)
    assert decoded.min() == 0 and decoded.max() == 255
    assert (np.diff(decoded[..., 0].ravel().astype(int)) >= 0).all()  # order kept


@pytest.mark.parametrize(
    "data, sentence",
    [
        (b"", "is empty"),
        (b"this is not an image at all", "is not an image we can read"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an image we can read|damaged"),
    ],
)
def test_unreadable_bytes_get_one_clear_sentence(data, sentence) -> None:
    with pytest.raises(ImageError, match=sentence) as caught:
        decode_image(data, name="scan.png")
    assert str(caught.value).startswith("scan.png") and str(caught.value).count(".") <= 3


def test_truncated_file_is_reported_as_damaged(rgb) -> None:
    data = encode(rgb.resize((300, 300)), "JPEG")
    with pytest.raises(ImageError, match="damaged or truncated"):
        decode_image(data[: len(data) // 2], name="half.jpg")


def test_other_formats_are_refused_by_name(rgb) -> None:
    with pytest.raises(ImageError, match="is a GIF image; use PNG, JPEG, TIFF, BMP or WebP"):
        decode_image(encode(rgb, "GIF"), name="anim.gif")


def test_oversized_file_is_refused(rgb, monkeypatch) -> None:
    monkeypatch.setattr(images, "MAX_FILE_BYTES", 100)
    with pytest.raises(ImageError, match="the limit is"):
        decode_image(encode(rgb, "BMP"), name="big.bmp")


def test_decompression_bomb_is_refused() -> None:
    bomb = encode(Image.new("1", (10_000, 10_000)), "PNG")  # a few kB that would decode to 100 megapixels
    assert len(bomb) < 100_000
    with pytest.raises(ImageError, match="megapixels"):
        decode_image(bomb, name="bomb.png")


def test_missing_file_and_folder(tmp_path) -> None:
    with pytest.raises(ImageError, match="does not exist"):
        decode_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="is a folder"):
        decode_image(tmp_path)


def test_samples_are_bundled_and_readable() -> None:
    samples = list_samples()
    domains = {sample.domain for sample in samples}
    assert domains == {"imagenet", "mri", "digits"}
    assert {"photos/chelsea", "photos/coffee", "photos/astronaut", "photos/rocket"} <= {s.name for s in samples}
    for sample in samples:
        assert decode_image(sample.path).ndim == 3


def test_digest_depends_on_content_only(rgb) -> None:
    png, bmp = decode_image(encode(rgb, "PNG")), decode_image(encode(rgb, "BMP"))
    assert image_digest(png) == image_digest(bmp)
    assert image_digest(png) != image_digest(png[:, ::-1])
