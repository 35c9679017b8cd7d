"""Hostile files, made deterministically from fixed seeds: DICOM mutations of the files pydicom's wheel bundles
(attributes set to values that crashed decoders, flipped and truncated bytes, element lengths and VRs that lie),
mutated pictures, damaged zips and model cards. Shared by ``tests/test_fuzz.py`` (a few hundred cases) and
``bench/fuzz.py`` (thousands); each case is (family, label, file name, bytes).
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Case:
    family: str
    label: str  # what was done, e.g. "SC_rgb_jpeg_gdcm.dcm: BitsAllocated=32"
    name: str  # the file name it is uploaded as
    data: bytes


def _files() -> Path:
    import pydicom

    return Path(pydicom.__file__).parent / "data" / "test_files"


def dicom_seeds() -> list[Path]:
    """Every bundled DICOM image under 400 KB (about 55 files: every transfer syntax, 1-bit, palette, multi-frame,
    RLE of 32 bits, JPEG-LS, JPEG 2000, YBR), sorted by name."""
    import pydicom

    seeds = []
    for path in sorted(_files().glob("*.dcm")):
        if path.stat().st_size > 400_000:
            continue
        try:
            dataset = pydicom.dcmread(path, stop_before_pixels=True)
            if dataset.get("Rows") and "PixelData" in pydicom.dcmread(path, specific_tags=["PixelData"]):
                seeds.append(path)
        except Exception:  # noqa: BLE001 - a bundled file that is itself broken is no seed
            continue
    return seeds


def _set(keyword: str, value: object) -> Callable:
    def apply(dataset) -> None:
        setattr(dataset, keyword, value)

    return apply


def _delete(*keywords: str) -> Callable:
    def apply(dataset) -> None:
        for keyword in keywords:
            if keyword in dataset:
                delattr(dataset, keyword)

    return apply


def _syntax(uid: str) -> Callable:
    def apply(dataset) -> None:
        dataset.file_meta.TransferSyntaxUID = uid

    return apply


def _empty_sequence(keyword: str) -> Callable:
    def apply(dataset) -> None:
        from pydicom.sequence import Sequence

        setattr(dataset, keyword, Sequence([]))

    return apply


def _pixel_data(fraction: float) -> Callable:
    def apply(dataset) -> None:
        data = dataset.PixelData
        dataset.PixelData = data[: int(len(data) * fraction) // 2 * 2]

    return apply


ATTRIBUTES: list[tuple[str, Callable]] = [
    ("Rows=1", _set("Rows", 1)),
    ("Rows=6000", _set("Rows", 6000)),
    ("Rows=65535", _set("Rows", 65535)),
    ("Columns=7", _set("Columns", 7)),
    ("Rows,Columns=6000", lambda d: (_set("Rows", 6000)(d), _set("Columns", 6000)(d))),
    ("BitsAllocated=1", _set("BitsAllocated", 1)),
    ("BitsAllocated=12", _set("BitsAllocated", 12)),
    ("BitsAllocated=32", _set("BitsAllocated", 32)),
    ("BitsAllocated=64", _set("BitsAllocated", 64)),
    ("BitsStored=0", _set("BitsStored", 0)),
    ("BitsStored=40", _set("BitsStored", 40)),
    *[(f"BitsStored={bits}", _set("BitsStored", bits)) for bits in (1, 7, 11, 12, 15)],
    ("HighBit=3", _set("HighBit", 3)),
    ("BitsAllocated=8", _set("BitsAllocated", 8)),
    ("BitsAllocated=16", _set("BitsAllocated", 16)),
    ("Photometric=YBR_RCT", _set("PhotometricInterpretation", "YBR_RCT")),
    ("HighBit=40", _set("HighBit", 40)),
    ("SamplesPerPixel=0", _set("SamplesPerPixel", 0)),
    ("SamplesPerPixel=2", _set("SamplesPerPixel", 2)),
    ("SamplesPerPixel=3", _set("SamplesPerPixel", 3)),
    ("SamplesPerPixel=1", _set("SamplesPerPixel", 1)),
    ("NumberOfFrames=-5", _set("NumberOfFrames", "-5")),
    ("NumberOfFrames=0", _set("NumberOfFrames", "0")),
    ("NumberOfFrames=3", _set("NumberOfFrames", "3")),
    ("NumberOfFrames=100000", _set("NumberOfFrames", "100000")),
    ("Photometric=YBR_FULL_422", _set("PhotometricInterpretation", "YBR_FULL_422")),
    ("Photometric=YBR_FULL", _set("PhotometricInterpretation", "YBR_FULL")),
    ("Photometric=PALETTE COLOR", _set("PhotometricInterpretation", "PALETTE COLOR")),
    ("Photometric=MONOCHROME1", _set("PhotometricInterpretation", "MONOCHROME1")),
    ("Photometric=RGB", _set("PhotometricInterpretation", "RGB")),
    ("Photometric=BOGUS", _set("PhotometricInterpretation", "BOGUS")),
    ("PixelRepresentation=1", _set("PixelRepresentation", 1)),
    ("PlanarConfiguration=1", _set("PlanarConfiguration", 1)),
    ("Window 0/0", lambda d: (_set("WindowCenter", 0)(d), _set("WindowWidth", 0)(d))),
    ("Window -1/-5", lambda d: (_set("WindowCenter", -1)(d), _set("WindowWidth", -5)(d))),
    ("RescaleSlope=0", _set("RescaleSlope", 0)),
    ("RescaleSlope=1e308", _set("RescaleSlope", "1e308")),
    ("RescaleIntercept=-1e308", _set("RescaleIntercept", "-1e308")),
    ("ModalityLUTSequence empty", _empty_sequence("ModalityLUTSequence")),
    ("VOILUTSequence empty", _empty_sequence("VOILUTSequence")),
    (
        "palette tables removed",
        _delete(
            "RedPaletteColorLookupTableDescriptor", "RedPaletteColorLookupTableData", "GreenPaletteColorLookupTableData"
        ),
    ),
    ("syntax=JPEG baseline", _syntax("1.2.840.10008.1.2.4.50")),
    ("syntax=RLE", _syntax("1.2.840.10008.1.2.5")),
    ("syntax=JPEG-LS", _syntax("1.2.840.10008.1.2.4.80")),
    ("syntax=JPEG 2000", _syntax("1.2.840.10008.1.2.4.90")),
    ("syntax=explicit LE", _syntax("1.2.840.10008.1.2.1")),
    ("syntax=bogus", _syntax("1.2.3.4")),
    ("PixelData halved", _pixel_data(0.5)),
    ("PixelData emptied", _pixel_data(0.0)),
]


def _saved(dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=False)
    return buffer.getvalue()


def attribute_cases(seed: int = 0) -> Iterator[Case]:
    """Every bundled image × every attribute mutation (about 2,400), in a seeded order."""
    import pydicom
    from pydicom import config

    config.settings.writing_validation_mode = config.IGNORE
    config.settings.reading_validation_mode = config.IGNORE
    pairs = [(path, mutation) for path in dicom_seeds() for mutation in ATTRIBUTES]
    random.Random(seed).shuffle(pairs)
    for path, (label, mutate) in pairs:
        try:
            dataset = pydicom.dcmread(path)
            mutate(dataset)
            data = _saved(dataset)
        except Exception:  # noqa: BLE001 - a mutation pydicom will not write is not a case
            continue
        yield Case("dicom attributes", f"{path.name}: {label}", "scan.dcm", data)


def _element_offsets(data: bytes) -> list[tuple[int, int]]:
    """(offset, length-field size) of explicit-VR element headers found in ``data`` (group 0x0002-0x7FE0)."""
    found = []
    for index in range(132, len(data) - 8):
        vr = data[index + 4 : index + 6]
        if vr in (b"US", b"IS", b"CS", b"DS", b"LO", b"PN", b"DA", b"UI", b"SH", b"UL", b"SS"):
            found.append((index, 2))
        elif vr in (b"OB", b"OW", b"SQ", b"UN", b"UT") and data[index + 6 : index + 8] == b"\0\0":
            found.append((index, 4))
    return found


def byte_cases(count: int, seed: int = 0) -> Iterator[Case]:
    """Flipped bytes (in the header or anywhere), truncations, and element lengths or VRs that lie."""
    rng = random.Random(seed)
    seeds = [(path.name, path.read_bytes()) for path in dicom_seeds()]
    for number in range(count):
        name, original = seeds[number % len(seeds)]
        data = bytearray(original)
        mode = rng.choice(["header flips", "flips", "truncate", "length", "vr"])
        if mode in ("header flips", "flips"):
            end = min(len(data), 2048) if mode == "header flips" else len(data)
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(132, end)] = rng.randrange(256)
        elif mode == "truncate":
            data = data[: rng.randrange(132, len(data))]
        else:
            offsets = _element_offsets(bytes(data))
            if not offsets:
                continue
            offset, size = rng.choice(offsets)
            if mode == "vr":
                data[offset + 4 : offset + 6] = rng.choice([b"HL", b"XX", b"OB", b"SQ", b"\0\0"])
            elif size == 2:
                data[offset + 6 : offset + 8] = struct.pack("<H", rng.choice([1, 3, 0xFFFF, 0x7FFF]))
            else:
                data[offset + 8 : offset + 12] = struct.pack("<I", rng.choice([1, 3, 0x7FFFFFF0, 0xFFFFFFFE]))
        yield Case("dicom bytes", f"{name}: {mode} #{number}", "scan.dcm", bytes(data))


def _pictures() -> list[tuple[str, bytes]]:
    from PIL import Image

    gradient = np.add.outer(np.arange(64), np.arange(96)).astype(np.uint8)
    rgb = Image.fromarray(np.stack([gradient, gradient[::-1], 255 - gradient], -1))
    made = []
    for fmt, image in [
        ("PNG", rgb),
        ("JPEG", rgb),
        ("TIFF", rgb),
        ("BMP", rgb),
        ("WEBP", rgb),
        ("PNG", Image.fromarray(gradient.astype(np.uint16) * 250)),
        ("PNG", rgb.convert("P")),
    ]:
        buffer = io.BytesIO()
        image.save(buffer, format=fmt)
        made.append((fmt.lower(), buffer.getvalue()))
    return made


def picture_cases(count: int, seed: int = 0) -> Iterator[Case]:
    """PNG, JPEG, TIFF, BMP and WebP with flipped bytes, truncations and header sizes that lie."""
    rng = random.Random(seed)
    pictures = _pictures()
    for number in range(count):
        suffix, original = pictures[number % len(pictures)]
        data = bytearray(original)
        mode = rng.choice(["flips", "truncate", "size"])
        if mode == "flips":
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif mode == "truncate":
            data = data[: rng.randrange(8, len(data))]
        elif suffix == "png":  # IHDR's width and height (CRC made right, so the lie is believed)
            data[16:24] = struct.pack(">II", rng.choice([1, 65535, 1 << 30]), rng.choice([1, 40000, 1 << 30]))
            data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
        else:
            data[rng.randrange(2, min(64, len(data)))] = 0xFF
        yield Case("pictures", f"{suffix}: {mode} #{number}", f"picture.{suffix}", bytes(data))


def zip_cases(count: int, seed: int = 0) -> Iterator[Case]:
    """Zips of a few small PNGs, then damaged: flipped bytes, lying sizes, unknown methods, the encrypted flag."""
    rng = random.Random(seed)
    png = _pictures()[0][1]
    for number in range(count):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for entry in range(rng.randint(1, 4)):
                archive.writestr(
                    rng.choice(
                        [f"glioma/scan_{entry}.png", f"../up_{entry}.png", f"/abs_{entry}.png", f"scan_{entry}.png"]
                    ),
                    png,
                )
        data = bytearray(buffer.getvalue())
        mode = rng.choice(["flips", "truncate", "method", "encrypted", "size"])
        headers = [index for index in range(len(data) - 4) if data[index : index + 4] == b"PK\x03\x04"]
        centrals = [index for index in range(len(data) - 4) if data[index : index + 4] == b"PK\x01\x02"]
        if mode == "flips":
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif mode == "truncate":
            data = data[: rng.randrange(4, len(data))]
        elif mode == "method":
            for index in headers:
                data[index + 8 : index + 10] = struct.pack("<H", 99)
            for index in centrals:
                data[index + 10 : index + 12] = struct.pack("<H", 99)
        elif mode == "encrypted":
            for index in headers:
                data[index + 6] |= 1
            for index in centrals:
                data[index + 8] |= 1
        else:  # the directory says 1,000 bytes; the member holds more
            for index in headers:
                data[index + 22 : index + 26] = struct.pack("<I", 1000)
            for index in centrals:
                data[index + 24 : index + 28] = struct.pack("<I", 1000)
        yield Case("zips", f"zip: {mode} #{number}", "scans.zip", bytes(data))


CARD = """\
name: fuzz_model
title: A fuzzed card
architecture: resnet18
weights: weights.safetensors
classes: [cat, dog]
input:
  size: 224
domain:
  fill: blur
"""


def card_cases(count: int, seed: int = 0) -> Iterator[Case]:
    """Model cards: alias bombs, deep nesting, huge scalars, flipped bytes of a plausible card."""
    rng = random.Random(seed)
    bomb = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        previous, name = chr(ord("a") + level - 1), chr(ord("a") + level)
        bomb.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    for number in range(count):
        mode = rng.choice(["alias bomb", "deep", "huge", "flips"])
        if mode == "alias bomb":
            text = "\n".join(bomb) + "\n" + CARD.replace("  fill: blur", "  fill: *i")
        elif mode == "deep":
            depth = rng.randint(50, 5000)
            text = CARD + "extra: " + "[" * depth + "]" * depth + "\n"
        elif mode == "huge":
            text = CARD.replace("A fuzzed card", "x" * rng.randint(10_000, 2_000_000))
        else:
            data = bytearray(CARD.encode())
            for _ in range(rng.randint(1, 6)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            text = data.decode("latin-1")
        yield Case("cards", f"card: {mode} #{number}", "card.yaml", text.encode("utf-8", errors="replace"))
