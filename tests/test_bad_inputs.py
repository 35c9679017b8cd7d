"""Every bad input ends in one clear sentence, with bounded memory (issue 12, item 6).

The worst cases an attacker found are decoded in a subprocess each, whose peak resident memory must stay
under 1 GB (``ru_maxrss``, read as VmHWM where Linux has it: its ``ru_maxrss`` starts at the parent's peak,
carried over fork and exec, and pytest's own peak is not the decoder's); hypothesis then mutates small valid
images and study files, and ``load_image`` / ``parse_study`` may only succeed or raise their own one-sentence error.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from explainers.images import MAX_SIDE, ImageError, InputImage, load_image
from studies import StudyError, parse_study

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "assets" / "studies" / "example_study.yaml"
PEAK_LIMIT_MB = 1024


# -- small generated fixtures for the worst cases ----------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG header for a huge grey image, with almost no pixel data (143 bytes for 20000×1)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * (min(width, 100_000) + 1) * min(height, 2), 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")


def sixteen_bit_png(side: int = 6300) -> bytes:
    """A 16-bit grey PNG of side×side (under the 40-megapixel limit) that compresses to under 100 KB."""
    ramp = np.broadcast_to(np.arange(side, dtype=np.uint16) * 10, (side, side))
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(ramp)).save(buffer, format="PNG", compress_level=9)
    return buffer.getvalue()


def float_tiff(side: int = 6300) -> bytes:
    """A 32-bit float TIFF of side×side, deflate-compressed to a few hundred KB: constant but for a NaN and an
    infinity in the first row and a ramp in the second (libtiff compresses each row on its own)."""
    ramp = np.full((side, side), 0.5, dtype=np.float32)
    ramp[1] = np.linspace(-1.0, 1.0, side, dtype=np.float32)
    ramp[0, 0], ramp[0, 1] = np.nan, np.inf
    buffer = io.BytesIO()
    Image.fromarray(ramp, mode="F").save(buffer, format="TIFF", compression="tiff_adobe_deflate")
    return buffer.getvalue()


def alias_bomb() -> str:
    """The "billion laughs": nine levels of nine aliases each, 9⁹ strings if expanded."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        previous, name = chr(ord("a") + level - 1), chr(ord("a") + level)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


# -- one subprocess per worst case, its peak memory measured ------------------------------------------------------

_RUNNER = textwrap.dedent("""\
    import json, resource, sys
    sys.path.insert(0, sys.argv[1])
    kind, argument = sys.argv[2], sys.argv[3]
    outcome = {}
    try:
        if kind == "image":
            from explainers.images import load_image
            image = load_image(argument)
            outcome["shape"] = list(image.pixels.shape)
            outcome["dtype"] = str(image.pixels.dtype)
        elif kind == "study":
            from studies import load_study
            load_study(argument, verify=False)
            outcome["loaded"] = True
        elif kind == "resize":
            import numpy as np
            from models import get_spec, resize_for
            width, height = map(int, argument.split("x"))
            resize_for(get_spec("resnet18"), np.zeros((height, width, 3), dtype=np.uint8))
            outcome["resized"] = True
    except ValueError as error:  # ImageError and StudyError are ValueErrors
        outcome["error"] = type(error).__name__
        outcome["message"] = str(error)
    outcome["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:  # this process image's own peak: Linux carries the parent's ru_maxrss over fork and exec
        status = open("/proc/self/status").read().split("VmHWM:")[1]
        outcome["peak_mb"] = int(status.split()[0]) / 1024
    except (OSError, IndexError):
        outcome["peak_mb"] = outcome["ru_maxrss_mb"]
    print(json.dumps(outcome))
    """)


def measure(kind: str, argument: str | Path) -> dict:
    """Runs one case in a fresh interpreter and returns its outcome and peak memory (MB)."""
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(ROOT), kind, str(argument)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def one_sentence(message: str) -> bool:
    return "\n" not in message and message.endswith((".", "?")) and len(message) < 400


@pytest.fixture
def worst_cases(tmp_path: Path) -> dict[str, tuple[str, Path, str]]:
    """Case name → (kind, path, what the sentence or outcome must contain)."""
    (tmp_path / "wide.png").write_bytes(png_header_only(20_000, 1))
    (tmp_path / "endless.png").write_bytes(png_header_only(40_000_000, 1))
    (tmp_path / "deep16.png").write_bytes(sixteen_bit_png())
    (tmp_path / "float.tif").write_bytes(float_tiff())
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "bomb.yaml").write_text(alias_bomb())
    (tmp_path / "escape.yaml").write_text(
        "title: T\nconsent: C\nconditions: [none]\ntrials:\n  - model: digits_cnn\n    image: ../../etc/passwd\n"
    )
    os.mkfifo(tmp_path / "pipe.yaml")
    return {
        "16-bit PNG 6300×6300": ("image", tmp_path / "deep16.png", "decoded"),
        "float TIFF 6300×6300": ("image", tmp_path / "float.tif", "decoded"),
        "PNG 20000×1": ("image", tmp_path / "wide.png", "aspect ratio beyond the limit of 1:50"),
        "PNG header 40000000×1": ("image", tmp_path / "endless.png", "aspect ratio beyond the limit of 1:50"),
        "/dev/zero": ("image", Path("/dev/zero"), "zero is not a regular file (a device)."),
        "FIFO": ("image", tmp_path / "pipe.png", "pipe.png is not a regular file (a named pipe)."),
        "folder": ("image", tmp_path / "folder.png", "folder.png is a folder, not an image file."),
        "resize_for 20000×1": ("resize", Path("20000x1"), "aspect ratio beyond the limit of 1:50"),
        "alias bomb": ("study", tmp_path / "bomb.yaml", "bomb.yaml line 2: YAML aliases (*a) are not allowed"),
        "../ trial image": (
            "study",
            tmp_path / "escape.yaml",
            'escape.yaml line 6: trials[0].image "../../etc/passwd" is outside the study\'s folder.',
        ),
        "study /dev/zero": ("study", Path("/dev/zero"), "not a regular file (a device)"),
        "study FIFO": ("study", tmp_path / "pipe.yaml", "not a regular file (a named pipe)"),
    }


def test_the_worst_inputs_end_in_one_sentence_under_a_gigabyte(worst_cases) -> None:
    assert len(sixteen_bit_png()) < 100_000 and len(float_tiff()) < 500_000 and len(png_header_only(20_000, 1)) < 200
    report = {}
    for case, (kind, path, expected) in worst_cases.items():
        outcome = measure(kind, path)
        report[case] = outcome
        assert outcome["peak_mb"] < PEAK_LIMIT_MB, (case, outcome)
        if expected == "decoded":  # downscaled to MAX_SIDE in PIL before any numpy conversion
            assert outcome.get("dtype") == "uint8" and outcome["shape"][2] == 3, (case, outcome)
            assert max(outcome["shape"][:2]) <= MAX_SIDE, (case, outcome)
        else:
            assert "message" in outcome and expected in outcome["message"], (case, outcome)
            assert one_sentence(outcome["message"]), (case, outcome)
    print(json.dumps(report, indent=1, ensure_ascii=False))


def test_a_stretched_float_image_keeps_its_order_and_maps_nan_to_black() -> None:
    pixels = load_image(float_tiff(64)).pixels[..., 0]
    assert pixels[0, 0] == 0 and pixels[0, 1] == 255  # NaN is the minimum, +inf the maximum
    assert (np.diff(pixels[1].astype(int)) >= 0).all() and pixels[1, 0] == 0 and pixels[1, -1] == 255


def test_a_large_image_is_downscaled_by_a_whole_factor() -> None:
    image = load_image(sixteen_bit_png(MAX_SIDE + 10))
    assert image.shape == ((MAX_SIDE + 10) // 2, (MAX_SIDE + 10) // 2, 3)


# -- fuzzing the image decoder ------------------------------------------------------------------------------------


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _seeds() -> list[bytes]:
    """Small valid files of every format and of the awkward modes (16-bit, float, palette, alpha, CMYK)."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    gray16 = Image.fromarray(rng.integers(0, 65536, (6, 8), dtype=np.uint16))
    floats = Image.fromarray(rng.standard_normal((6, 8)).astype(np.float32), mode="F")
    return [
        _encode(rgb, "PNG"),
        _encode(rgb, "JPEG", quality=90),
        _encode(rgb, "TIFF"),
        _encode(rgb, "BMP"),
        _encode(rgb, "WEBP"),
        _encode(rgb.convert("RGBA"), "PNG"),
        _encode(rgb.convert("P"), "PNG"),
        _encode(gray16, "PNG"),
        _encode(gray16, "TIFF"),
        _encode(floats, "TIFF"),
        _encode(rgb.convert("CMYK"), "TIFF"),
        _encode(rgb.convert("L"), "JPEG"),
        _encode(rgb, "WEBP", lossless=True),
    ]


SEEDS = _seeds()


def _fix_png_crcs(data: bytes) -> bytes:
    """Recomputes each PNG chunk's CRC, so an edited header reaches the decoder instead of the CRC check."""
    if not data.startswith(b"\x89PNG"):
        return data
    out, position = bytearray(data[:8]), 8
    while position + 12 <= len(data):
        length = struct.unpack(">I", data[position : position + 4])[0]
        end = position + 8 + length
        if end + 4 > len(data):
            break
        out += data[position:end] + struct.pack(">I", zlib.crc32(data[position + 4 : end]))
        position = end + 4
    return bytes(out + data[position:])


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    """A seed with bit flips, truncation, header edits of width/height (big or little endian) or random bytes."""
    if draw(st.integers(0, 19)) == 0:
        return draw(st.binary(max_size=300))
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "truncate", "header", "size", "insert"]))
        if action == "flip" and data:
            position = draw(st.integers(0, len(data) - 1))
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif action == "truncate":
            data = data[: draw(st.integers(0, len(data)))]
        elif action == "header" and data:
            position = draw(st.integers(0, min(len(data), 64) - 1))
            data[position : position + 1] = draw(st.binary(min_size=1, max_size=4))
        elif action == "size" and len(data) > 30:
            position = draw(st.integers(0, min(len(data), 64) - 4))
            value = (
                draw(st.sampled_from([0, 1, 2**15, 2**16 - 1, 2**31 - 1, 2**32 - 1, 6300, 20_000, 40_000_000]))
                if draw(st.booleans())
                else draw(st.integers(0, 2**32 - 1))
            )
            data[position : position + 4] = struct.pack(draw(st.sampled_from([">I", "<I"])), value)
        elif action == "insert":
            position = draw(st.integers(0, len(data)))
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
    return _fix_png_crcs(bytes(data)) if draw(st.booleans()) else bytes(data)


@pytest.mark.filterwarnings("ignore::UserWarning")  # PIL warns about the damaged TIFF tags it skips
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_images())
def test_fuzzed_images_decode_or_raise_one_sentence(data: bytes) -> None:
    try:
        image = load_image(data, name="fuzz.png")
    except ImageError as error:
        assert one_sentence(str(error)), str(error)
        return
    assert isinstance(image, InputImage)
    assert image.pixels.ndim == 3 and image.pixels.shape[2] == 3 and image.pixels.dtype == np.uint8
    assert max(image.pixels.shape[:2]) <= MAX_SIDE


# -- fuzzing study files ------------------------------------------------------------------------------------------

EXAMPLE_TEXT = EXAMPLE.read_text(encoding="utf-8")
_YAMLISH = st.text(alphabet=st.sampled_from(list("abc:-[]{}&*!|>'\"#,.%@`?<=~ \n\t0123456789")), max_size=200)


@st.composite
def mutated_studies(draw: st.DrawFn) -> str:
    """Random YAML-ish text, or the example study with lines dropped, repeated or edited, and characters spliced."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.one_of(_YAMLISH, st.text(max_size=200)))
    lines = EXAMPLE_TEXT.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["drop", "repeat", "edit", "value"]))
        if action == "drop" and len(lines) > 1:
            del lines[index]
        elif action == "repeat":
            lines.insert(index, lines[index])
        elif action == "edit":
            line = lines[index]
            position = draw(st.integers(0, len(line)))
            lines[index] = line[:position] + draw(_YAMLISH.filter(lambda text: len(text) < 12)) + line[position:]
        elif action == "value" and ":" in lines[index]:
            key = lines[index].split(":", 1)[0]
            value = draw(
                st.sampled_from(
                    [
                        "",
                        "null",
                        "true",
                        "-3",
                        "1e400",
                        ".nan",
                        "[]",
                        "{}",
                        "[1, [2, [3]]]",
                        "2024-01-01",
                        "!!binary aGk=",
                        "!!set {a}",
                        "'x'",
                        "../../etc/passwd",
                        "/etc/passwd",
                        "~",
                        "0x1F",
                        "{a: [b, {c: d}]}",
                    ]
                )
            )
            lines[index] = f"{key}: {value}"
    return "\n".join(lines) + "\n"


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_studies(), st.sampled_from([".yaml", ".json"]))
def test_fuzzed_study_files_parse_or_raise_a_study_error(text: str, suffix: str) -> None:
    try:
        parse_study(text, name=f"study{suffix}", suffix=suffix, folder=EXAMPLE.parent, verify=False)
    except StudyError as error:
        assert one_sentence(str(error)), str(error)


def test_deep_nesting_and_huge_study_files_are_refused() -> None:
    for text, suffix, expected in [
        ("[" * 100_000, ".yaml", "nests deeper than"),
        ("[" * 100_000 + "]" * 100_000, ".json", "nests deeper than"),
        ("a: " + "x" * 1_000_001, ".yaml", "is over 1 MB"),
        ("title: &t T\n", ".yaml", "line 1: YAML anchors (&t) are not allowed"),
    ]:
        with pytest.raises(StudyError, match=expected.replace("(", r"\(").replace(")", r"\)")) as caught:
            parse_study(text, suffix=suffix, verify=False)
        assert one_sentence(str(caught.value))


def test_the_example_study_and_bundled_samples_stay_allowed() -> None:
    from studies import load_study

    study = load_study(EXAMPLE, verify=False)
    assert all(trial.image_path.exists() for trial in study.trials)
