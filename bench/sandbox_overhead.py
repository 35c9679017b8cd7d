"""What the decoding sandbox adds per decode: a 512² PNG (and a DICOM MR, and the bundled 451×300 photo) loaded
in-process and through the warm pool, interleaved, as medians over the same run; and a cold start (a new child).

    .venv/bin/python -m bench.sandbox_overhead [--repeats 200] [--write]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from explainers import sandbox
from explainers.images import load_image
from explainers.sandbox_child import handle

ROOT = Path(__file__).resolve().parents[1]


def _png(side: int = 512) -> bytes:
    rng = np.random.default_rng(0)
    gradient = np.add.outer(np.arange(side), np.arange(side)) % 256
    pixels = np.stack([gradient, gradient.T, rng.integers(0, 256, (side, side))], -1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def measure(data: bytes, name: str, repeats: int) -> tuple[float, float]:
    """Median seconds in-process and through the pool (interleaved, so both see the same machine)."""
    here, pooled = [], []
    load_image(data, name=name)  # warm
    for _ in range(repeats):
        started = time.perf_counter()
        result, _ = handle("image", {"path": None, "name": name, "sample": False, "frame": 0}, data)
        here.append(time.perf_counter() - started)
        assert "error" not in result
        started = time.perf_counter()
        load_image(data, name=name)
        pooled.append(time.perf_counter() - started)
    return statistics.median(here), statistics.median(pooled)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    import pydicom

    cases = [
        ("512² PNG", _png(), "a.png"),
        (
            "MR_small.dcm",
            (Path(pydicom.__file__).parent / "data" / "test_files" / "MR_small.dcm").read_bytes(),
            "a.dcm",
        ),
        ("chelsea.png (451×300)", (ROOT / "assets" / "samples" / "photos" / "chelsea.png").read_bytes(), "c.png"),
    ]
    lines = ["| file | in-process ms | sandboxed ms | added ms (median) |", "|---|---|---|---|"]
    for label, data, name in cases:
        here, pooled = measure(data, name, args.repeats)
        lines.append(f"| {label} | {here * 1000:.1f} | {pooled * 1000:.1f} | {(pooled - here) * 1000:.1f} |")
    cold = sandbox.decoder_pool(1)
    started = time.perf_counter()
    cold.call("image", {"path": None, "name": "a.png"}, cases[0][1])
    lines.append(f"| 512² PNG, cold (a new child) | | {(time.perf_counter() - started) * 1000:.0f} | |")
    cold.close()
    text = "\n".join(lines)
    print(text)
    if args.write:
        from bench.fuzz import write

        write(text, "sandbox")


if __name__ == "__main__":
    main()
