"""``python -m explainers precompute`` on a real folder: every image with every method on the job engine, a
broken file reported, the second run served from the cache, Ctrl-C then resume; predictions cached too."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from explainers.cache import ExplanationCache
from explainers.images import load_image
from explainers.predictions import stored_prediction

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "assets" / "samples" / "digits"


def _command(folder: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "explainers",
        "precompute",
        "--model",
        "digits_cnn",
        "--images",
        str(folder),
        "--max-evals",
        "60",
        "--workers",
        "2",
        *extra,
    ]


def _folder(tmp_path: Path, digits: list[int]) -> Path:
    folder = tmp_path / "scans"
    folder.mkdir()
    for digit in digits:
        shutil.copy(DIGITS / f"digit_{digit}.png", folder / f"digit_{digit}.png")
    return folder


def test_a_folder_is_explained_with_every_method_and_resumes_from_the_cache(tmp_path, digits_model) -> None:
    folder = _folder(tmp_path, [3, 7])
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    env = {**os.environ, "EXPLAINERS_CACHE_DIR": str(tmp_path / "cache")}
    first = subprocess.run(
        _command(folder, "--methods", "kernel,gradient", "--quiet"),
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    report = json.loads(first.stdout.strip().splitlines()[-1])
    assert first.returncode == 1, first.stderr  # one file failed
    assert (report["requests"], report["computed"], report["cached"]) == (4, 4, 0), report
    assert [(f["file"], f["reason"][:40]) for f in report["failed"]] == [
        (str(folder / "broken.png"), f["reason"][:40]) for f in report["failed"]
    ]
    assert len(report["failed"]) == 1 and report["failed"][0]["reason"].endswith("."), report
    assert report["seconds"] > 0

    second = subprocess.run(
        _command(folder, "--methods", "kernel,gradient", "--quiet"),
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    again = json.loads(second.stdout.strip().splitlines()[-1])
    assert (again["computed"], again["cached"]) == (0, 4), again

    cache = ExplanationCache(tmp_path / "cache")  # the verdicts are listed without a model call
    for digit in (3, 7):
        image = load_image(folder / f"digit_{digit}.png")
        probs = stored_prediction(cache, "digits_cnn", digits_model.weights_digest, image.digest)
        assert probs is not None and int(probs.argmax()) == digit


def test_ctrl_c_keeps_what_finished_and_the_same_command_resumes(tmp_path) -> None:
    folder = _folder(tmp_path, [0, 1, 2, 4, 5, 6, 8, 9])
    env = {**os.environ, "EXPLAINERS_CACHE_DIR": str(tmp_path / "cache")}
    command = _command(folder, "--methods", "partition,kernel")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert process.stderr is not None  # a pipe: stderr=PIPE
    seen, deadline = "", time.monotonic() + 300
    while not re.search(r"\b[2-9] / \d+ jobs", seen) and time.monotonic() < deadline:
        seen += process.stderr.read(1) or ""
        if process.poll() is not None:
            break
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    if process.returncode == 0:  # it finished before the signal: nothing to resume
        return
    assert process.returncode == 130, stderr[-2000:]
    stopped = json.loads(stdout.strip().splitlines()[-1])
    assert stopped["interrupted"] and stopped["computed"] >= 1, stopped
    assert "run the same command to resume" in stderr
    resumed = subprocess.run([*command, "--quiet"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    report = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert report["requests"] == 16 and report["cached"] >= stopped["computed"], (stopped, report)
    assert report["cached"] + report["computed"] == 16
