"""Offline, verified: the command line, the dashboard's pages and the server make no attempt to reach another
host (every socket connection and name lookup is watched: tests/offline/sitecustomize.py), and write nothing
outside the cache and study folders, with HOME in a fresh temporary folder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUARD = ROOT / "tests" / "offline"
# Every page in the folder, so a new one is checked too: all but Explain (opened first) and the participants'
# Study page (reached only through a study's link, tested in tests/test_study_pages.py).
OTHER_PAGES = tuple(
    sorted(path.stem for path in (ROOT / "app_pages").glob("*.py") if path.stem not in ("explain", "study"))
)

PAGES = """
from streamlit.testing.v1 import AppTest
for model in ("brain_tumor_vgg16", "digits_cnn"):
    app = AppTest.from_file({app!r}, default_timeout=300)
    app.session_state["model_name"] = model
    app.session_state["budget_partition"] = 40
    app.run()
    assert not app.exception, app.exception
    assert any(" says " in m.value for m in app.markdown)
    for page in {pages!r}:
        app.switch_page(f"app_pages/{{page}}.py").run()
        assert not app.exception, (page, app.exception)
"""


@pytest.fixture
def offline_env(tmp_path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("EXPLAINERS_", "XDG_"))}
    env.update(
        HOME=str(home),
        OFFLINE_LOG=str(tmp_path / "attempts.log"),
        PYTHONPATH=f"{GUARD}{os.pathsep}{ROOT}",
        EXPLAINERS_CACHE_DIR=str(home / "cache"),
        EXPLAINERS_STUDY_DIR=str(home / "data"),
        MODELS_TUNE="0",
    )
    return env


def check_offline(env: dict[str, str]) -> None:
    log = Path(env["OFFLINE_LOG"])
    assert not log.exists(), f"outbound attempts: {log.read_text()}"
    home = Path(env["HOME"])
    allowed = (Path(env["EXPLAINERS_CACHE_DIR"]), Path(env["EXPLAINERS_STUDY_DIR"]))
    stray = [
        str(p.relative_to(home))
        for p in home.rglob("*")
        if p.is_file() and not any(p.is_relative_to(folder) for folder in allowed)
    ]
    assert not stray, f"files written outside the cache and study folders: {stray}"


def test_the_guard_notices_an_outbound_attempt(offline_env) -> None:
    code = "import socket; socket.create_connection(('198.51.100.7', 80), timeout=1)"
    result = subprocess.run([sys.executable, "-c", code], env=offline_env, capture_output=True, timeout=60)
    assert result.returncode != 0 and Path(offline_env["OFFLINE_LOG"]).exists()


def test_the_command_line_stays_on_this_machine(offline_env) -> None:
    for args in (
        ["predict", "--model", "brain_tumor_vgg16", "--image", "assets/samples/mri/Te-gl_0010.jpg"],
        [
            "explain",
            "--model",
            "digits_cnn",
            "--image",
            "assets/samples/digits/digit_7.png",
            "--method",
            "kernel",
            "--max-evals",
            "60",
            "--segments",
            "12",
            "--quiet",
        ],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "explainers", *args],
            cwd=ROOT,
            env=offline_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
    check_offline(offline_env)


def test_the_pages_stay_on_this_machine(offline_env) -> None:
    script = PAGES.format(app=str(ROOT / "app.py"), pages=OTHER_PAGES)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=offline_env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    check_offline(offline_env)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_server_starts_without_looking_anything_up(offline_env) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)],
        cwd=ROOT,
        env=offline_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as answer:
                    if answer.read() == b"ok":
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the server did not answer its health check within 90 s")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
            assert answer.status == 200
    finally:
        os.killpg(server.pid, 15)
        output = server.communicate(timeout=30)[0]
    assert "external IP" not in output and "Network URL" not in output, output
    check_offline(offline_env)
