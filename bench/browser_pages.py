"""Pages in a real browser (Debian's Chromium, headless, Playwright), served as ``scripts/run.sh`` serves them
(``python -m ui.serve``): the cold start of the default page, and fully cached Explain and Compare pages.

1. Cold: an empty cache, the server started, and the default Explain page opened (a) as soon as the server
   answers its health check, and (b) in a second fresh cache, once the server's warm-up has finished.
2. Cached: Explain and Compare (5 methods × top-3) computed first, then opened by new visitors (each a fresh
   browser context: nothing in the browser's cache), timed to the verdict and to the last overlay, with the
   bytes received over the WebSocket. Server time of the same pages: AppTest (``bench.engine.cached_pages``).

Run: .venv/bin/python -m bench.browser_pages [--visits 5] [--skip-cold]   (about 10 minutes on two cores)

Progress goes to stderr, the Markdown report to stdout (``> bench/browser_pages.md`` keeps it). Nothing leaves
127.0.0.1: Chromium resolves no other host.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CAT = "Egyptian cat"
ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Server:
    """``python -m ui.serve`` on a free loopback port with its cache in ``folder``."""

    def __init__(self, folder: Path, warm: bool = True):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        (folder / "home").mkdir(parents=True, exist_ok=True)
        env = dict(
            os.environ,
            EXPLAINERS_CACHE_DIR=str(folder / "cache"),
            HOME=str(folder / "home"),
            EXPLAINERS_WARM="1" if warm else "0",
            PYTHONUNBUFFERED="1",
        )
        self.log = folder / "server.log"
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ui.serve",
                "--server.port",
                str(self.port),
                "--server.headless",
                "true",
                "--server.address",
                "127.0.0.1",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def healthy(self, timeout: float = 60) -> float:
        while time.monotonic() - self.started < timeout:
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=1) as response:
                    if response.read().strip() == b"ok":
                        return time.monotonic() - self.started
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the server did not answer within {timeout} s: {self.log.read_text()[-2000:]}")

    def warmed(self, timeout: float = 600) -> float:
        while time.monotonic() - self.started < timeout:
            if "warm-up:" in self.log.read_text():
                return time.monotonic() - self.started
            time.sleep(0.25)
        raise RuntimeError("the warm-up did not finish")

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)


def visit(browser, url: str, panels: int, marker: str, timeout: float = 600) -> dict:
    """A new visitor: seconds from the navigation's start (the page's own clock, polled every frame) to the text
    ``marker`` and to ``panels`` drawn overlays (their own pictures: the image is a style they share), and the
    bytes received over the WebSocket."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    received = [0]
    page.on(
        "websocket",
        lambda ws: ws.on("framereceived", lambda payload: received.__setitem__(0, received[0] + len(payload))),
    )
    page.goto(url, wait_until="commit")
    found = "text => document.body && document.body.innerText.includes(text)"
    page.wait_for_function(found, arg=marker, polling="raf", timeout=timeout * 1000)
    verdict = page.evaluate("performance.now()") / 1000
    drawn = (
        "count => Array.from(document.querySelectorAll('figure.sx-panel img'))"
        ".filter(img => img.complete && img.naturalWidth > 0).length >= count"
    )
    page.wait_for_function(drawn, arg=panels, polling="raf", timeout=timeout * 1000)
    last = page.evaluate("performance.now()") / 1000
    page.wait_for_timeout(500)  # what else arrives (the curves below the Compare grid) counts towards the bytes
    context.close()
    return {"verdict": verdict, "last overlay": last, "kB": received[0] / 1000}


def cold(browser, skip: bool) -> list[tuple[str, float]]:
    if skip:
        return []
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        server = Server(Path(folder))
        try:
            healthy = server.healthy()
            say(f"cold (a): healthy after {healthy:.1f} s; visiting now")
            timing = visit(browser, server.url, 3, f"says {CAT}")
            rows += [
                ("server start → health check answers", healthy),
                ("(a) visit at once: visit → verdict", timing["verdict"]),
                ("(a) visit at once: visit → last overlay", timing["last overlay"]),
                ("(a) server start → last overlay", healthy + timing["last overlay"]),
            ]
        finally:
            server.stop()
    with tempfile.TemporaryDirectory() as folder:
        server = Server(Path(folder))
        try:
            server.healthy()
            warmed = server.warmed()
            say(f"cold (b): warm-up done after {warmed:.1f} s; visiting now")
            timing = visit(browser, server.url, 3, f"says {CAT}")
            rows += [
                ("(b) server start → warm-up done", warmed),
                ("(b) first visit after the warm-up → last overlay", timing["last overlay"]),
            ]
            say(f"cold: {rows}")
        finally:
            server.stop()
    return rows


def cached(browser, visits: int) -> tuple[dict, dict]:
    from bench.engine import cached_pages

    with tempfile.TemporaryDirectory() as folder:
        os.environ["EXPLAINERS_CACHE_DIR"] = str(Path(folder) / "cache")
        say("computing the Explain and Compare pages into a fresh cache (a few minutes)…")
        server_seconds = cached_pages(runs=3)
        server = Server(Path(folder))
        results: dict[str, list[dict]] = {"Explain": [], "Compare": []}
        try:
            server.healthy()
            server.warmed()
            time.sleep(20)  # the workers' warm-up tasks end
            for _ in range(visits):
                results["Explain"].append(visit(browser, server.url, 3, f"says {CAT}", timeout=120))
                results["Compare"].append(
                    visit(browser, f"{server.url}/compare", 3 * 5, "Compare methods ·", timeout=120)
                )
                say(f"  Explain {results['Explain'][-1]}, Compare {results['Compare'][-1]}")
        finally:
            server.stop()
    return server_seconds, results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visits", type=int, default=5)
    parser.add_argument("--skip-cold", action="store_true")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
        try:
            cold_rows = cold(browser, args.skip_cold)
            server_seconds, results = cached(browser, args.visits)
        finally:
            browser.close()
    print(f"# Pages in a real browser ({os.cpu_count()} cores, headless Chromium, `python -m ui.serve`)\n")
    if cold_rows:
        print("## Cold start of the default page (EfficientNet-Lite0, partition 300, top-3), empty cache\n")
        print("| | seconds |\n|---|---|")
        for name, seconds in cold_rows:
            print(f"| {name} | {seconds:.1f} |")
        print()
    print(f"## Fully cached pages, {args.visits} new visitors each (median)\n")
    print(
        "| page | server s (AppTest) | visit → verdict (Compare: header), s | visit → last overlay, s | "
        "kB over the WebSocket |"
    )
    print("|---|---|---|---|---|")
    for page, timings in results.items():
        median = {key: statistics.median(t[key] for t in timings) for key in timings[0]}
        print(
            f"| {page} | {server_seconds[page]:.2f} | {median['verdict']:.2f} | {median['last overlay']:.2f} | "
            f"{median['kB']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
