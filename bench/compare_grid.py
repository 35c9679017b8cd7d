"""Time a 5-method × 3-class Compare grid cold (computing) and cached (rendering the page from the cache),
and print each method's deletion/insertion scores. Uses a fresh cache folder.

Run: .venv/bin/python -m bench.compare_grid --model efficientnet_lite0 --sample photos/chelsea
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

METHODS = ["partition", "permutation", "kernel", "deep", "gradient"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--sample", default="photos/chelsea")
    parser.add_argument("--cache-dir", default=None, help="reuse a cache folder (default: a fresh one)")
    args = parser.parse_args()
    os.environ["EXPLAINERS_CACHE_DIR"] = args.cache_dir or tempfile.mkdtemp(prefix="compare-bench-")
    from streamlit.testing.v1 import AppTest

    from models import get_spec
    from ui import keys

    app = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=3600)
    app.session_state["model_name"] = args.model
    app.session_state[keys.sample(get_spec(args.model).policy.name)] = args.sample
    app.session_state["compare_methods"] = METHODS
    app.switch_page("app_pages/compare.py")
    app.run()
    app.session_state["compare_running"] = True
    started = time.perf_counter()
    app.run()
    cold = time.perf_counter() - started
    assert not app.exception, app.exception
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        app.run()
        timings.append(time.perf_counter() - started)
    print(
        f"{args.model} {args.sample}: cold {cold:.1f} s (5 methods, faithfulness for 15 panels), "
        f"cached render {min(timings):.2f} s (best of 3)"
    )
    for caption in app.caption:
        print("   ", caption.value)
    table = app.dataframe[0].value
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
