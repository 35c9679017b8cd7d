"""The dashboard in a real browser, as a user would use it: Debian's Chromium, headless, driven by Playwright.

One Streamlit server on a free port of 127.0.0.1 (its own process group, killed at the end), with the cache,
the study answers and HOME in temporary folders, and the tiny study in ``tests/browser/`` precomputed first.
The test opens the Explain page (the cat's verdict and its overlays), switches the model (the old verdict goes
at once, the new one follows), runs a Compare on the digits model, answers one trial of the study through its
participant link, and uploads a DICOM that aborts its decoder (the server runs with
``EXPLAINERS_DICOM_PRECHECKS=0``): one sentence, then another page and a good scan as usual. Every request the
browser makes is recorded: none may leave 127.0.0.1. Screenshots and the measured times go to ``out/browser/``
(``pytest -s`` prints the times too).

Chromium comes from Debian (``apt-get install chromium``; ``.ci/run`` installs it), never from
``playwright install``. Without it the test skips, except under CI (``$CI`` set), where it fails.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ROOT / "tests" / "browser"
STUDY_FILE = STUDIES / "browser_study.yaml"
STUDY_ID = "browser-study"
ARTEFACTS = ROOT / "out" / "browser"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
CAT = "Egyptian cat"
TUMOUR_MODEL = "Brain tumour MRI (VGG16)"
DIGITS_MODEL = "Handwritten digits (small CNN)"


def unavailable(reason: str) -> None:
    """Fails under CI (the browser test must run there), skips with the reason elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def _chromium() -> str | None:
    for candidate in (shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in {"data", "blob", "about"}:
        return True
    return parts.hostname in LOCAL_HOSTS


class Clock:
    """Named times in seconds, printed and saved to out/browser/timings.json."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    def record(self, name: str, seconds: float, unit: str = "s") -> None:
        self.times[name] = round(seconds, 2)
        print(
            f"[browser] {name}: {seconds:.2f} {unit}" if unit == "s" else f"[browser] {name}: {seconds:g}", flush=True
        )
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        (ARTEFACTS / "timings.json").write_text(json.dumps(self.times, indent=2) + "\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """The app on a free port, with the tiny study precomputed; yields its base URL."""
    tmp = tmp_path_factory.mktemp("browser")
    env = dict(os.environ)
    for name in ("cache", "study", "home"):
        (tmp / name).mkdir()
    env.update(
        EXPLAINERS_CACHE_DIR=str(tmp / "cache"),
        EXPLAINERS_STUDY_DIR=str(tmp / "study"),
        HOME=str(tmp / "home"),
        EXPLAINERS_STUDIES_DIR=str(STUDIES),
        MODELS_TUNE="0",
        PYTHONUNBUFFERED="1",
        # No header pre-checks before the DICOM decoders: the aborting upload below really reaches gdcm
        # and aborts its sandboxed child (the other tests upload no compressed DICOM).
        EXPLAINERS_DICOM_PRECHECKS="0",
    )
    # The server runs as shipped: an embedded cluster of worker processes (the other tests use threads).
    env.pop("EXPLAINERS_WORKER_PROCESSES", None)
    precompute = subprocess.run(
        [sys.executable, "-m", "explainers", "study", "precompute", str(STUDY_FILE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert precompute.returncode == 0, precompute.stderr[-2000:]

    port = _free_port()
    log = (tmp / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "ui.serve", "--server.port", str(port), "--server.headless", "true"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                    if response.read().decode().strip() == "ok":
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(
                    "the Streamlit server did not become healthy within 60 s:\n"
                    + (tmp / "server.log").read_text()[-3000:],
                    pytrace=False,
                )
            time.sleep(0.25)
        yield base
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
        except ProcessLookupError:
            pass
        log.close()
        # Shown on failure by pytest's captured output: the server's own log, tracebacks included.
        print((tmp / "server.log").read_text()[-4000:])


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    if executable is None:
        unavailable("Chromium is not installed (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright for Python is not installed (pip install -r requirements.txt)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            timeout=60_000,
            # Nothing but 127.0.0.1: Chromium's own background traffic off, and any other host unresolvable.
            args=[
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-domain-reliability",
                "--no-first-run",
                "--disable-default-apps",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


class Traffic:
    """Every request and WebSocket a page opens, and the console's errors."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.console_errors: list[str] = []
        self.received = 0  # bytes the server sent over the WebSocket (the page's content)

    def _socket(self, socket) -> None:
        self.urls.append(socket.url)
        socket.on("framereceived", lambda payload: setattr(self, "received", self.received + len(payload)))

    def _console(self, message) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def watch(self, page) -> None:
        page.on("request", lambda request: self.urls.append(request.url))
        page.on("websocket", self._socket)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.console_errors.append(f"page error: {error}"))

    def check(self) -> None:
        assert self.urls, "the browser made no request at all"
        foreign = sorted({url for url in self.urls if not _is_local(url)})
        assert not foreign, f"requests to other hosts than 127.0.0.1: {foreign}"
        hosts = sorted({urlsplit(url).scheme + "://" + (urlsplit(url).hostname or "") for url in self.urls})
        print(f"[browser] {len(self.urls)} requests, to: {', '.join(hosts)}", flush=True)
        failed = [
            text
            for text in self.console_errors
            if any(
                word in text.lower()
                for word in ("failed to fetch", "failed to load", "net::err", "http://", "https://")
            )
            and not all(_is_local(word) for word in text.split() if "://" in word)
        ]
        assert not failed, f"console errors about failed fetches: {failed}"


def _context(browser):
    # Wide enough for the wide layout's three overlay columns; downloads are accepted, never fetched elsewhere.
    return browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)


def _watched_page(context, traffic: Traffic):
    """A new page with the tests' default timeout, its every request recorded by ``traffic``."""
    page = context.new_page()
    page.set_default_timeout(30_000)
    traffic.watch(page)
    return page


def _choose_model(page, title: str) -> None:
    """Streamlit's sidebar selectbox: open it, click the option in its list."""
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stSelectbox").filter(has_text="Model").first.click()
    page.get_by_role("option", name=title, exact=True).click(timeout=10_000)


def _wait_for(description: str, condition, timeout_s: float, page) -> float:
    """Polls ``condition()`` until true; returns the seconds it took; fails after ``timeout_s``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            page.screenshot(path=str(ARTEFACTS / f"timeout_{description.replace(' ', '_')}.png"), full_page=True)
            pytest.fail(f"{description}: not within {timeout_s:.0f} s", pytrace=False)
        page.wait_for_timeout(100)
    return time.monotonic() - start


def _lowest_budget(page) -> None:
    """Partition SHAP at its lowest budget (the default method is each model's recommended one)."""
    from playwright.sync_api import expect

    page.get_by_test_id("stSelectbox").filter(has_text="Method").first.click()
    page.get_by_role("option", name="Partition SHAP (shap, blur masker)", exact=True).click(timeout=10_000)
    slider = page.get_by_test_id("stSlider").filter(has_text="Evaluation budget (model evaluations)")
    expect(slider).to_have_count(1, timeout=30_000)  # Partition's slider, once the page has rerun
    budget = slider.get_by_role("slider")
    budget.focus()
    budget.press("Home")
    expect(slider).to_contain_text("20")


def test_explain_switch_model_and_compare(server: str, browser, clock: Clock) -> None:
    from playwright.sync_api import expect

    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    context = _context(browser)
    traffic = Traffic()
    try:
        page = _watched_page(context, traffic)

        # 1. The Explain page at once after the server starts (as scripts/run.sh starts it: ui.serve, whose
        # warm-up computes this very page in the background): the cat's verdict, then its overlays.
        start = time.monotonic()
        page.goto(server, wait_until="domcontentloaded", timeout=60_000)
        expect(page.get_by_text(f"says {CAT}")).to_be_visible(timeout=60_000)
        clock.record("explain: cat verdict shown", time.monotonic() - start)
        panels = page.locator("figure.sx-panel")  # the input image and an overlay per top-3 class
        _wait_for("four panels on Explain", lambda: panels.count() >= 4, 180, page)
        expect(page.get_by_text(f"{CAT} · p =")).to_be_visible(timeout=30_000)
        expect(panels.nth(3).locator("img")).to_be_visible(timeout=30_000)
        clock.record("explain: last overlay drawn (first visit at server start)", time.monotonic() - start)
        page.screenshot(path=str(ARTEFACTS / "1_explain_cat.png"), full_page=True)

        # 1b. Another visitor: everything is cached now (timed, and the bytes sent counted).
        visitor, seen = context.new_page(), Traffic()
        seen.watch(visitor)
        start = time.monotonic()
        visitor.goto(server, wait_until="domcontentloaded", timeout=60_000)
        _wait_for("the cached overlays", lambda: visitor.locator("figure.sx-panel img").count() >= 3, 60, visitor)
        expect(visitor.get_by_text(f"{CAT} · p =")).to_be_visible(timeout=30_000)
        clock.record("cached visit: page to last overlay", time.monotonic() - start)
        # Hovering the first overlay shows the value under the pointer in percentage points (partition's blur
        # masker works on blocks of pixels: the block's total; superpixel methods the superpixel's). CSS alone.
        tip = "none"
        for _ in range(20):  # the page may redraw its panels under the pointer (a rerun): hover the new ones
            cell = visitor.locator("figure.sx-panel").nth(1).locator(".sx-hover i").first
            cell.hover()
            tip = cell.evaluate("element => getComputedStyle(element, '::after').content")
            if tip != "none":
                break
            visitor.wait_for_timeout(250)
        assert " pp" in tip and ("in this block" in tip or "superpixel" in tip), f"hovering an overlay showed {tip!r}"
        # The image travels once, as a style the overlays draw as their grey backdrop: it survives st.html.
        backdrop = visitor.locator("figure.sx-panel .sx-grey").first.evaluate(
            "element => getComputedStyle(element).backgroundImage"
        )
        assert backdrop.startswith('url("data:image/'), f"the overlay has no backdrop: {backdrop[:80]!r}"
        clock.record("cached visit: kB sent over the WebSocket", seen.received / 1000, unit="kB")
        visitor.close()
        # The lowest evaluation budget (20) from here on: the default 300 takes long on a busy 2-core machine.
        _lowest_budget(page)

        # 2. Another model: the old verdict goes at once, and the new verdict comes before the new maps.
        _choose_model(page, TUMOUR_MODEL)
        start = time.monotonic()
        events: dict[str, float] = {}
        probes = {
            "old verdict gone": lambda: page.get_by_text(f"says {CAT}").count() == 0,
            "new verdict shown": lambda: page.get_by_text("says glioma").count() > 0,
            "old maps gone": lambda: page.get_by_text(f"{CAT} · p =").count() == 0,
            "new maps shown": lambda: page.get_by_text("glioma · p =").count() > 0,
        }
        clicked = False
        while len(events) < len(probes) and time.monotonic() - start < 90:
            for name, probe in probes.items():
                if name not in events and probe():
                    events[name] = time.monotonic() - start
            # The tumour model explains on request (its verdict comes at once): the clinician clicks Compute.
            compute = page.get_by_role("button", name="Compute", exact=True)
            if not clicked and "new verdict shown" in events and compute.count():
                compute.click()
                clicked = True
            page.wait_for_timeout(50)
        for name in probes:
            if name in events:
                clock.record(f"switch: {name}", events[name])
        page.screenshot(path=str(ARTEFACTS / "2_explain_glioma.png"), full_page=True)
        assert "old verdict gone" in events and "new verdict shown" in events, f"after the switch: {events}"
        # Loading VGG16 and one forward pass: about 3 s here, a few more on a busy machine.
        assert events["old verdict gone"] < 10, f"the cat's verdict stayed {events['old verdict gone']:.1f} s"
        assert "new maps shown" in events, "the tumour model's overlays did not appear within 90 s"
        assert events["new verdict shown"] < events["new maps shown"], "the verdict came after the explanation"
        # The cat's maps go with its verdict, not when the tumour's maps arrive (50 ms polling).
        assert events.get("old maps gone", 90) <= events["new verdict shown"] + 0.5, (
            f"the cat's overlays stayed beside the glioma verdict: {events}"
        )
        assert page.get_by_text(f"says {CAT}").count() == 0

        # 3. Compare on the digits model: compute the missing methods, wait for the downloads.
        _choose_model(page, DIGITS_MODEL)
        expect(page.get_by_text("Handwritten digits (small CNN) says")).to_be_visible(timeout=60_000)
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Compare").click()
        start = time.monotonic()
        page.get_by_role("button", name="Compute the missing methods").click(timeout=60_000)
        # Downloads show as soon as one method is ready; done means no method is missing any more (the page
        # drops that notice only when a run draws nothing missing) and every column has its panels.
        expect(page.get_by_text("methods are not cached yet")).to_be_visible(timeout=30_000)
        _wait_for(
            "every Compare method computed",
            lambda: (
                page.get_by_text("methods are not cached yet").count() == 0
                and page.get_by_role("heading", name="Downloads").count() > 0
                and page.get_by_role("button", name="Grid (PNG)").count() > 0
            ),
            150,
            page,
        )
        for method in ("Partition SHAP", "Permutation SHAP", "Kernel SHAP", "DeepSHAP", "GradientSHAP"):
            expect(page.locator("figcaption", has_text=method).first).to_be_visible(timeout=30_000)
        expect(page.get_by_role("button", name="Grid (PNG)")).to_be_visible(timeout=30_000)
        clock.record("compare: every method computed, downloads shown", time.monotonic() - start)
        assert page.get_by_text("Something went wrong").count() == 0, "the Compare page showed an error"
        page.screenshot(path=str(ARTEFACTS / "3_compare_digits.png"), full_page=True)
        traffic.check()
        clock.record("requests (explain and compare)", len(traffic.urls), unit="")
    finally:
        context.close()


def test_the_browser_draws_the_overlay_the_grid_png_draws(browser) -> None:
    """The panels' layers (the shared picture under a CSS filter, the map's colours at the opacity, the
    outlines) drawn by Chromium match viz.plots.composite, the picture of the grid PNG and the report."""
    import numpy as np
    from PIL import Image
    from skimage.segmentation import find_boundaries, slic

    from viz.panels import image_panel, overlay_panel, shown_map
    from viz.plots import composite

    cat = np.asarray(
        Image.open(ROOT / "assets" / "samples" / "photos" / "chelsea.png")
        .convert("RGB")
        .resize((224, 224), Image.Resampling.BILINEAR)
    )
    segments = slic(cat, n_segments=50, compactness=30, sigma=3, start_label=0)
    shapley = np.random.default_rng(0).normal(0, 1, int(segments.max()) + 1)
    values = (shapley / np.bincount(segments.ravel()))[segments].astype(np.float32)
    shown = shown_map(values, segments)  # what the panel colours: each superpixel's total, in percentage points
    limit, edges = float(np.abs(shown).max()), find_boundaries(segments)
    sent: set[str] = set()
    body = image_panel(cat, sent=sent) + "".join(
        overlay_panel(cat, values, limit=limit, opacity=opacity, segments=segments, outlines=outlines, sent=sent)
        for opacity, outlines in ((0.7, None), (0.4, edges))
    )
    page = browser.new_page(viewport={"width": 400, "height": 1000}, device_scale_factor=1)
    try:
        page.set_content(f"<html><body style='margin:0'><div style='width:224px'>{body}</div></body></html>")
        page.wait_for_function("Array.from(document.images).every(image => image.complete)")
        for index, (opacity, outlines) in enumerate(((0.7, None), (0.4, edges)), start=1):
            box = page.locator(".sx-map").nth(index).locator("img").first.bounding_box()
            clip = {"x": round(box["x"]), "y": round(box["y"]), "width": 224, "height": 224}
            drawn = np.asarray(Image.open(io.BytesIO(page.screenshot(clip=clip))).convert("RGB")).astype(int)
            expected = composite(cat, shown, limit, opacity, outlines).astype(int)
            assert np.abs(drawn - expected).mean() < 2 and np.percentile(np.abs(drawn - expected), 99) <= 6
    finally:
        page.close()


def test_study_link_consent_and_one_trial(server: str, browser, clock: Clock) -> None:
    from playwright.sync_api import expect

    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    context = _context(browser)
    traffic = Traffic()
    try:
        page = _watched_page(context, traffic)
        start = time.monotonic()
        page.goto(f"{server}/?study={STUDY_ID}", wait_until="domcontentloaded", timeout=60_000)
        page.get_by_role("button", name="I agree, start the study").click(timeout=60_000)
        expect(page.get_by_text("Image 1 of 2")).to_be_visible(timeout=30_000)
        # A participant sees the study alone: no sidebar, no page navigation, no model picker.
        assert page.get_by_test_id("stSidebar").count() == 0, "the study link shows a sidebar"
        assert page.get_by_test_id("stSidebarNav").count() == 0, "the study link shows the navigation"
        assert page.get_by_text("Compare", exact=True).count() == 0

        form = page.get_by_test_id("stForm")
        groups = form.get_by_role("radiogroup")
        _wait_for("the trial's questions", lambda: groups.count() >= 2, 30, page)
        for index in range(groups.count()):
            groups.nth(index).get_by_role("radio").first.check(force=True)
        page.screenshot(path=str(ARTEFACTS / "4_study_trial_1.png"), full_page=True)
        form.get_by_role("button", name="Submit and continue").click()
        expect(page.get_by_text("Image 2 of 2")).to_be_visible(timeout=30_000)
        clock.record("study: consent and one trial answered", time.monotonic() - start)
        # The second trial, once its page has settled: the trust question exactly when a map is shown.
        trust = page.get_by_text("How much do you trust this explanation?")
        shown_map = page.get_by_text("Red areas pushed the model towards the class")
        state, settled, deadline = None, time.monotonic(), time.monotonic() + 30
        while time.monotonic() < deadline and time.monotonic() - settled < 2:
            now = (shown_map.count(), trust.count(), form.get_by_role("radiogroup").count())
            if now != state:
                state, settled = now, time.monotonic()
            page.wait_for_timeout(100)
        assert state is not None  # the loop runs at least once (its deadline is 30 s away), so state is set
        assert (state[0] > 0) == (state[1] > 0), (
            f"trial 2: map shown {state[0]}, trust question {state[1]} (radio groups {state[2]})"
        )
        page.screenshot(path=str(ARTEFACTS / "5_study_trial_2.png"), full_page=True)
        traffic.check()
        clock.record("requests (study)", len(traffic.urls), unit="")
    finally:
        context.close()


def _aborting_dicom() -> bytes:
    """pydicom's SC_rgb_jpeg_gdcm.dcm with BitsAllocated 32: python-gdcm aborts its process on it (SIGABRT); the
    server's EXPLAINERS_DICOM_PRECHECKS=0 lets it through to gdcm (as tests/test_sandbox_app.py)."""
    import pydicom
    from pydicom import config

    config.settings.writing_validation_mode = config.IGNORE
    dataset = pydicom.dcmread(Path(pydicom.__file__).parent / "data" / "test_files" / "SC_rgb_jpeg_gdcm.dcm")
    dataset.BitsAllocated = 32
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=False)
    return buffer.getvalue()


def test_an_upload_that_aborts_its_decoder_is_one_sentence_and_the_server_goes_on(
    server: str, browser, clock: Clock
) -> None:
    import pydicom
    from playwright.sync_api import expect

    from explainers.sandbox import STOPPED

    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    mr_small = Path(pydicom.__file__).parent / "data" / "test_files" / "MR_small.dcm"
    context = _context(browser)
    traffic = Traffic()
    try:
        page = _watched_page(context, traffic)
        page.goto(server, wait_until="domcontentloaded", timeout=60_000)
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar.get_by_test_id("stSelectbox").filter(has_text="Model").first).to_be_visible(timeout=60_000)
        _choose_model(page, DIGITS_MODEL)  # the small model: the good upload's verdict comes quickly
        expect(page.get_by_text(f"{DIGITS_MODEL} says")).to_be_visible(timeout=60_000)
        sidebar.get_by_test_id("stRadio").get_by_text("Upload", exact=True).click()
        uploader = sidebar.locator("input[type=file]")
        expect(uploader).to_have_count(1, timeout=30_000)

        # 1. The aborting file: one sentence, no file name, no traceback; the server stays healthy.
        start = time.monotonic()
        uploader.set_input_files(
            {"name": "Smith_John.dcm", "mimeType": "application/dicom", "buffer": _aborting_dicom()}
        )
        # The sidebar's warning under the uploader (the page repeats it where the image would go, as it does
        # for any image it has not got).
        warning = sidebar.get_by_test_id("stAlertContentWarning")
        expect(warning.get_by_text(STOPPED, exact=True)).to_be_visible(timeout=120_000)
        clock.record("aborting upload: sentence shown", time.monotonic() - start)
        page.wait_for_timeout(1000)  # the run ends; anything else it would draw is drawn
        page.screenshot(path=str(ARTEFACTS / "6_upload_decoder_stopped.png"), full_page=True)
        assert [line.strip() for line in warning.all_inner_texts()] == [STOPPED], warning.all_inner_texts()
        # Streamlit's uploader lists the chosen file's name in its own chip, in the uploader's browser only; nothing
        # else on the page may show it (the file name of a scan is often the patient's).
        text = page.locator("body").evaluate(
            "body => { const copy = body.cloneNode(true);"
            " copy.querySelectorAll('[data-testid=stFileChip]').forEach(chip => chip.remove());"
            " document.documentElement.appendChild(copy); const text = copy.innerText; copy.remove(); return text; }"
        )
        assert STOPPED in text
        assert "Smith" not in text, "the page shows the uploaded file's name outside the uploader's own chip"
        assert page.get_by_test_id("stException").count() == 0 and "Traceback" not in text, "a traceback shows"
        assert "Something went wrong" not in text, "the page shows an error of ours"
        with urllib.request.urlopen(f"{server}/_stcore/health", timeout=10) as response:
            assert response.read().decode().strip() == "ok"

        # 2. The same server serves another page.
        start = time.monotonic()
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Models").click()
        expect(page.get_by_role("heading", name="Models").first).to_be_visible(timeout=60_000)
        expect(page.get_by_role("heading", name="Add a model of your own")).to_be_visible(timeout=60_000)
        clock.record("after the abort: Models page shown", time.monotonic() - start)
        assert page.get_by_test_id("stException").count() == 0

        # 3. Back on Explain, a good DICOM decodes and gets its verdict.
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Explain").click()
        start = time.monotonic()
        uploader = page.get_by_test_id("stSidebar").locator("input[type=file]")
        expect(uploader).to_have_count(1, timeout=30_000)
        expect(page.get_by_role("heading", name=f"Explain · {DIGITS_MODEL}")).to_be_visible(timeout=60_000)
        page.wait_for_timeout(1000)  # the page's run ends
        assert page.get_by_text(f"{DIGITS_MODEL} says").count() == 0, "a verdict shows before the good upload"
        uploader.set_input_files({"name": "scan.dcm", "mimeType": "application/dicom", "buffer": mr_small.read_bytes()})
        # The scan's caption (the aborting file had one too: its header was read, its pixels stopped the decoder).
        expect(sidebar.get_by_text("DICOM MR, 64 × 64 pixels")).to_be_visible(timeout=120_000)
        expect(page.get_by_text(f"{DIGITS_MODEL} says")).to_be_visible(timeout=120_000)
        clock.record("good DICOM after the abort: verdict shown", time.monotonic() - start)
        assert page.get_by_text(STOPPED).count() == 0, "the decoder's sentence stayed beside the good scan"
        assert page.get_by_test_id("stException").count() == 0
        page.screenshot(path=str(ARTEFACTS / "7_upload_after_abort.png"), full_page=True)
        with urllib.request.urlopen(f"{server}/_stcore/health", timeout=10) as response:
            assert response.read().decode().strip() == "ok"
        traffic.check()
    finally:
        context.close()
