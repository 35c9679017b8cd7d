"""The job engine: precompute throughput on 1 and 2 workers, the scheduler under 1,000 queued jobs, and the
server time of fully cached pages. Writes bench/engine.md (included in BENCHMARKS.md by bench.run).

Run: .venv/bin/python -m bench.engine [--quick]

- Throughput: the same explanations (EfficientNet-Lite0, partition, 4 photos × 2 seeds) on an embedded cluster of
  1 worker (2 torch threads) and of 2 workers (1 each), after the workers are warm, each into an empty cache.
- Scheduler: 1,000 tiny real jobs (digits_cnn, permutation at 100 evaluations, one seed each) queued at once
  on 2 workers; the engine's overhead is the wall time × workers over the workers' own compute seconds.
- Cached pages: AppTest runs of the Explain and Compare pages once everything is cached (median of 5).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ["chelsea", "coffee", "astronaut", "rocket"]


def _requests(classifier, images, method: str, budget: int, seeds) -> list:
    from explainers.request import build_request

    return [
        (build_request(classifier, image, method, budget=budget, seed=seed, top_k=3), image)
        for image in images
        for seed in seeds
    ]


def throughput(workers: int, jobs: list, model: str) -> dict:
    from explainers.cache import ExplanationCache
    from jobs import Engine

    engine = Engine(cache=ExplanationCache(tempfile.mkdtemp(prefix="bench-engine-")), workers=workers, processes=True)
    started = time.perf_counter()
    for future in engine.warm([model]):
        future.result()
    warm = time.perf_counter() - started
    started = time.perf_counter()
    submitted = [engine.submit(request, image) for request, image in jobs]
    for job in submitted:
        job.result()
    seconds = time.perf_counter() - started
    engine.close()
    return {
        "workers": workers,
        "jobs": len(jobs),
        "seconds": seconds,
        "per_minute": 60 * len(jobs) / seconds,
        "startup": warm,
    }


def scheduler(count: int) -> dict:
    from explainers.cache import ExplanationCache
    from explainers.images import load_image
    from jobs import Engine
    from models import load_classifier

    classifier = load_classifier("digits_cnn")
    image = load_image(ROOT / "assets" / "samples" / "digits" / "digit_7.png")
    budget = 100  # one permutation over digits' 45 superpixels needs 91
    jobs = _requests(classifier, [image], "permutation", budget, range(count))
    engine = Engine(cache=ExplanationCache(tempfile.mkdtemp(prefix="bench-sched-")), workers=2, processes=True)
    for future in engine.warm(["digits_cnn"]):
        future.result()
    engine.submit(*_requests(classifier, [image], "permutation", budget, [10**6])[0]).result()  # warm
    started = time.perf_counter()
    submitted = [engine.submit(request, image) for request, image in jobs]
    queued = time.perf_counter() - started
    results = [job.result() for job in submitted]
    wall = time.perf_counter() - started
    while sum(1 for job in submitted if job.finished is None):
        time.sleep(0.05)
    stored = time.perf_counter() - started
    compute = sum(result.seconds for result in results)
    workers = engine.workers
    engine.close()
    return {
        "jobs": count,
        "queued": queued,
        "wall": wall,
        "stored": stored,
        "compute": compute,
        "workers": workers,
        "overhead": wall * workers / compute,
        "per_second": count / wall,
    }


def cached_pages(runs: int = 5, pages: tuple[str, ...] = ("Explain", "Compare"), prepare: bool = True) -> dict:
    """Server seconds of AppTest runs of fully cached pages (the first run of each computes and is not timed)."""
    from streamlit.testing.v1 import AppTest

    from jobs.engine import ENGINES

    def settle(app):
        app.run()
        for _ in range(20):
            pending = [job for engine in list(ENGINES) for job in engine.pending()]
            if not pending:
                return app
            for job in pending:
                job.wait(600)
            app.run()
        return app

    timings = {}
    for page, setup in (
        ("Explain", {}),
        ("Compare", {"compare_methods": ["partition", "permutation", "kernel", "deep", "gradient"]}),
    ):
        if page not in pages:
            continue
        if prepare:  # compute what the page shows (not timed); without it, it must be cached already
            app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
            for key, value in setup.items():
                app.session_state[key] = value
            if page == "Compare":
                app.switch_page("app_pages/compare.py")
            settle(app)
            if page == "Compare" and any(button.key == "compare_run" for button in app.button):
                app.button(key="compare_run").click()
                settle(app)
        seconds = []
        for _ in range(runs):
            fresh = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)  # a new session: nothing in memory
            for key, value in setup.items():
                fresh.session_state[key] = value
            if page == "Compare":
                fresh.switch_page("app_pages/compare.py")
            started = time.perf_counter()
            fresh.run()
            seconds.append(time.perf_counter() - started)
            assert not fresh.exception, fresh.exception
            assert len(fresh.get("html")) >= 4, f"{page} was not fully cached"
        timings[page] = statistics.median(seconds)
    return timings


def _health_p95(url: str, count: int = 100) -> float:
    """The 95th percentile of ``count`` health checks, in ms (loopback only, 20 ms apart)."""
    import urllib.request

    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
        seconds.append(time.perf_counter() - started)
        time.sleep(0.02)
    return 1000 * sorted(seconds)[int(0.95 * len(seconds)) - 1]


def responsiveness(jobs: list, model: str) -> dict:
    """The server's health check (p95) and a cached page's server time, idle and while 2 workers compute."""
    import socket
    import subprocess

    from explainers.cache import ExplanationCache
    from jobs import Engine

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/_stcore/health"
    try:
        for _ in range(300):
            try:
                _health_p95(url, 1)
                break
            except OSError:
                time.sleep(0.2)
        idle = {"health_p95_ms": _health_p95(url), "explain_s": cached_pages(3, pages=("Explain",))["Explain"]}
        engine = Engine(cache=ExplanationCache(tempfile.mkdtemp(prefix="bench-busy-")), workers=2, processes=True)
        running = [engine.submit(request, image) for request, image in jobs]
        for future in engine.warm([model]):  # the workers busy from here on: warm, then the jobs
            future.result()
        while not any(job.started for job in running):
            time.sleep(0.2)
        print(f"busy: {[job.status().describe() for job in running]}", file=sys.stderr)
        busy = {
            "health_p95_ms": _health_p95(url),
            "explain_s": cached_pages(3, pages=("Explain",), prepare=False)["Explain"],
            "jobs_still_running": sum(not job.done for job in running),
            "states": sorted(job.status().describe() for job in running),
        }
        for job in running:
            job.cancel()
        engine.close()
    finally:
        server.terminate()
        server.wait(30)
    return {"idle": idle, "busy": busy}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine")
    parser.add_argument("--quick", action="store_true", help="fewer jobs (a smoke run)")
    parser.add_argument(
        "--throughput",
        default=None,
        metavar="JSON",
        help="reuse throughput rows measured before (a JSON list), measuring the rest",
    )
    args = parser.parse_args()
    os.environ.setdefault("MODELS_TUNE", "0")
    os.environ["EXPLAINERS_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-pages-")
    from explainers.images import load_image
    from models import load_classifier

    model = "efficientnet_lite0"
    classifier = load_classifier(model)
    images = [load_image(ROOT / "assets" / "samples" / "photos" / f"{name}.png") for name in PHOTOS]
    jobs = _requests(classifier, images[:2] if args.quick else images, "partition", 200, (0, 1))
    import json

    rows = json.loads(args.throughput) if args.throughput else []
    for workers in (1, 2)[len(rows) :]:
        result = throughput(workers, jobs, model)
        rows.append(result)
        print(f"throughput {json.dumps(result)}", file=sys.stderr)
    queue = scheduler(100 if args.quick else 1000)
    print(f"scheduler {queue}", file=sys.stderr)
    pages = cached_pages(2 if args.quick else 5)
    print(f"pages {pages}", file=sys.stderr)
    load = responsiveness(jobs, model)
    print(f"responsiveness {load}", file=sys.stderr)

    lines = [
        "# The job engine (embedded cluster on this machine)",
        "",
        f"{os.cpu_count()} cores; EfficientNet-Lite0, partition at 200 evaluations, top-3, {len(jobs)} "
        "explanations per run, each run into an empty cache after its workers are warm.",
        "",
        "| workers (torch threads each) | explanations | seconds | explanations per minute | ratio to 1 worker "
        "| start-up and warm-up, s |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        threads = max(1, (os.cpu_count() or 1) // row["workers"])
        lines.append(
            f"| {row['workers']} ({threads}) | {row['jobs']} | {row['seconds']:.1f} | {row['per_minute']:.1f} "
            f"| {row['per_minute'] / rows[0]['per_minute']:.2f} | {row['startup']:.1f} |"
        )
    lines += [
        "",
        f"## {queue['jobs']} jobs queued at once on {queue['workers']} workers",
        "",
        f"digits_cnn, permutation at 100 evaluations: {queue['jobs']} submitted in {queue['queued']:.2f} s, "
        f"all results back in {queue['wall']:.1f} s and stored by {queue['stored']:.1f} s "
        f"({queue['per_second']:.0f} jobs/s); the workers computed for {queue['compute']:.1f} s in all. "
        f"Overhead (wall × workers ÷ compute): **{queue['overhead']:.2f}×** for jobs of "
        f"{1000 * queue['compute'] / queue['jobs']:.0f} ms; a real explanation takes seconds, so the "
        "scheduler's share of its time is a small fraction of that.",
        "",
        "## Fully cached pages (server time, AppTest, median of a new session's runs)",
        "",
        f"Explain: **{pages['Explain']:.2f} s**; Compare (5 methods × 3 classes): **{pages['Compare']:.2f} s**.",
        "",
        "## Another session while 2 workers compute",
        "",
        "| | health check p95, ms | cached Explain page, server s |",
        "|---|---|---|",
        f"| idle | {load['idle']['health_p95_ms']:.1f} | {load['idle']['explain_s']:.2f} |",
        f"| {load['busy']['jobs_still_running']} jobs running | {load['busy']['health_p95_ms']:.1f} | "
        f"{load['busy']['explain_s']:.2f} |",
    ]
    (ROOT / "bench" / "engine.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
