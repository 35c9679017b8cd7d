"""The geometry a compressed frame declares in its own codestream (JPEG and JPEG-LS: the SOF segment; JPEG 2000:
the SIZ segment), read from its first bytes without decoding. A DICOM header that disagrees with it is refused
before a decoder sees the frame: python-gdcm aborts its process on such mismatches (BitsAllocated 32 on a JPEG,
Rows changed on a JPEG-LS file), and the sandbox would then have to throw its child away.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Start-of-frame markers: JPEG's SOF0–SOF15 less DHT (C4), JPG (C8) and DAC (CC); JPEG-LS's SOF55 (F7).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}
_STANDALONE = {0x01, *range(0xD0, 0xD9)}  # TEM, RSTn, SOI, EOI: no length field


@dataclass(frozen=True)
class Geometry:
    rows: int
    columns: int
    components: int
    precision: int  # bits per sample, the largest over components
    family: str  # "JPEG" or "JPEG 2000"


def jpeg_geometry(data: bytes) -> Geometry | None:
    """The SOF segment of a JPEG or JPEG-LS stream, or None when there is none in the first 64 KB."""
    index, end = 2, min(len(data), 1 << 16)
    if data[:2] != b"\xff\xd8":
        return None
    while index + 4 <= end:
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        if marker in _STANDALONE:
            index += 2
            continue
        (length,) = struct.unpack(">H", data[index + 2 : index + 4])
        if marker in _SOF and index + 10 <= len(data):
            precision, rows, columns, components = struct.unpack(">BHHB", data[index + 4 : index + 10])
            return Geometry(rows, columns, components, precision, "JPEG")
        if marker == 0xDA or length < 2:  # start of scan before any frame header: nothing more to learn
            return None
        index += 2 + length
    return None


def j2k_geometry(data: bytes) -> Geometry | None:
    """The SIZ segment of a JPEG 2000 codestream (bare or inside a JP2 file), or None."""
    start = data.find(b"\xff\x4f\xff\x51", 0, 1 << 16)
    if start < 0 or start + 42 > len(data):
        return None
    segment = data[start + 4 :]
    x_size, y_size, x_offset, y_offset = struct.unpack(">IIII", segment[4:20])
    (components,) = struct.unpack(">H", segment[36:38])
    depths = [(segment[38 + 3 * n] & 0x7F) + 1 for n in range(min(components, 16)) if 38 + 3 * n < len(segment)]
    return Geometry(y_size - y_offset, x_size - x_offset, components, max(depths, default=0), "JPEG 2000")


def geometry(data: bytes) -> Geometry | None:
    return jpeg_geometry(data) if data[:2] == b"\xff\xd8" else j2k_geometry(data)


def mismatch(
    found: Geometry, rows: int, columns: int, samples: int, bits_allocated: int, bits_stored: int = 0
) -> str | None:
    """One sentence when the header and the codestream disagree, else None."""
    if found.rows and (found.rows, found.columns) != (rows, columns):
        return (
            f"This scan's header says {columns} × {rows} pixels but its compressed pixels are "
            f"{found.columns} × {found.rows}, so the file is damaged."
        )
    if found.components != samples:
        return (
            f"This scan's header says {samples} sample{'s' * (samples > 1)} per pixel but its compressed "
            f"pixels have {found.components}, so the file is damaged."
        )
    if found.precision > bits_allocated or (found.family == "JPEG" and bits_allocated > 16):
        return (
            f"This scan's header says {bits_allocated} bits per sample, which does not fit its "
            f"{found.family} compression of {found.precision}-bit samples, so the file is damaged."
        )
    if found.family == "JPEG" and 0 < bits_stored < found.precision:
        return (
            f"This scan's header says {bits_stored} bits are stored per sample, fewer than its JPEG "
            f"compression's {found.precision}, so the file is damaged."
        )
    return None
