"""The persistent cache: hits, misses on any change, corrupted and half-written entries, eviction, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dataclasses import replace

from explainers.cache import ExplanationCache
from explainers.images import InputImage
from explainers.request import build_request, run_cached
from cli.main import main

ROOT = Path(__file__).resolve().parents[1]
SEVEN = str(ROOT / "assets" / "samples" / "digits" / "digit_7.png")


class Counting:
    def __init__(self, classifier):
        self.classifier, self.calls, self.original = classifier, 0, classifier.predict

    def __enter__(self):
        def counted(images, batch_size=None):
            self.calls += 1
            return self.original(images, batch_size)
        self.classifier.predict = counted
        return self

    def __exit__(self, *exc):
        self.classifier.predict = self.original


@pytest.fixture
def cache(tmp_path) -> ExplanationCache:
    return ExplanationCache(tmp_path / "cache")


def run(cache, model, image, image_label="", **kwargs):
    options = {"method": "kernel", "top_k": 2, "max_evals": 60, "params": {"segments": 12}, "seed": 0,
               "classes": None} | kwargs
    source = InputImage.from_pixels(image, "file", image_label or None)
    request = build_request(model, source, options["method"], params=options["params"], budget=options["max_evals"],
                            seed=options["seed"], top_k=options["top_k"], classes=options["classes"])
    return run_cached(cache, request, source, model)


def test_second_request_is_a_hit_with_no_model_evaluation(cache, digits_model, digit_seven) -> None:
    first, cached = run(cache, digits_model, digit_seven)
    assert not cached
    with Counting(digits_model) as counter:
        again, cached = run(cache, digits_model, digit_seven)
        other_class, cached_too = run(cache, digits_model, digit_seven, classes=[3])
    assert cached and cached_too and counter.calls == 0
    np.testing.assert_array_equal(first.values, again.values)
    assert other_class.class_names == ("3",)


def test_the_cache_survives_a_restart(cache, digits_model, digit_seven) -> None:
    run(cache, digits_model, digit_seven)
    reopened = ExplanationCache(cache.folder)
    assert run(reopened, digits_model, digit_seven)[1]


@pytest.mark.parametrize("change", [{"seed": 1}, {"max_evals": 61}, {"params": {"segments": 11}},
                                    {"params": {"segments": 12, "fill": "blur"}}, {"method": "permutation"}])
def test_any_changed_parameter_misses(cache, digits_model, digit_seven, change) -> None:
    run(cache, digits_model, digit_seven)
    assert not run(cache, digits_model, digit_seven, **change)[1]


def test_a_different_image_or_model_weights_misses(cache, digits_model, digit_seven) -> None:
    base = build_request(digits_model, digit_seven, "kernel", top_k=2, budget=60, seed=0, params={})
    shifted = build_request(digits_model, np.roll(digit_seven, 1, axis=1), "kernel", top_k=2, budget=60, seed=0,
                            params={})
    assert base.key != shifted.key
    assert base.key != replace(base, weights_digest="other").key


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_a_corrupted_entry_is_recomputed_not_shown(cache, digits_model, digit_seven, damage) -> None:
    first, _ = run(cache, digits_model, digit_seven)
    blob = next(cache.blobs.glob("*.npz"))
    data = blob.read_bytes()
    if damage == "truncate":
        blob.write_bytes(data[: len(data) // 3])
    elif damage == "flip":
        blob.write_bytes(data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
    else:
        blob.unlink()
    again, cached = run(cache, digits_model, digit_seven)
    assert not cached
    np.testing.assert_allclose(again.values, first.values)
    assert run(cache, digits_model, digit_seven)[1]  # and stored afresh


KILL_MID_WRITE = """
import os, signal, sys
sys.path.insert(0, {root!r})
from explainers.cache import ExplanationCache
from explainers.images import InputImage, load_image
from explainers.request import build_request, run_cached
from models import load_classifier
os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # die with the file half-way to its place
model = load_classifier("digits_cnn")
image = InputImage.from_pixels(load_image({image!r}).pixels)
request = build_request(model, image, "kernel", top_k=2, budget=60, params={{"segments": 12}})
run_cached(ExplanationCache({folder!r}), request, image, model)
"""


def test_a_process_killed_mid_write_leaves_no_valid_looking_entry(cache, digits_model, digit_seven) -> None:
    script = KILL_MID_WRITE.format(root=str(ROOT), folder=str(cache.folder), image=SEVEN)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert result.returncode == -9  # really killed
    assert cache.stats()["entries"] == 0 and list(cache.blobs.glob("*.tmp"))
    assert not run(cache, digits_model, digit_seven)[1]  # recomputed
    assert cache.sweep(older_than_seconds=0) == 1 and not list(cache.blobs.glob("*.tmp"))
    assert run(cache, digits_model, digit_seven)[1]


def test_least_recently_used_entries_are_evicted(tmp_path, digits_model, digit_seven) -> None:
    cache = ExplanationCache(tmp_path / "small")
    run(cache, digits_model, digit_seven, seed=0)
    size = cache.stats()["bytes"]
    cache.max_bytes = int(size * 2.5)  # room for two entries
    run(cache, digits_model, digit_seven, seed=1)
    run(cache, digits_model, digit_seven, seed=0)  # touch seed 0: now seed 1 is the least recently used
    run(cache, digits_model, digit_seven, seed=2)
    kept = {entry.request["seed"] for entry in cache.entries()}
    assert kept == {0, 2} and cache.stats()["bytes"] <= cache.max_bytes


def test_entries_can_be_filtered_for_the_gallery(cache, digits_model, digit_seven) -> None:
    run(cache, digits_model, digit_seven, image_label="digit_7.png")
    run(cache, digits_model, digit_seven, method="exact", max_evals=4096, params={"segments": 6})
    assert {e.method for e in cache.entries(model="digits_cnn")} == {"kernel", "exact"}
    assert [e.image_label for e in cache.entries(method="kernel")] == ["digit_7.png"]


def test_command_line_reports_cached_and_manages_the_cache(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("EXPLAINERS_CACHE_DIR", str(tmp_path / "cli-cache"))
    args = ["explain", "--model", "digits_cnn", "--image", SEVEN, "--method", "kernel", "--max-evals", "60",
            "--segments", "12", "--quiet"]
    assert main(args) == 0 and json.loads(capsys.readouterr().out.splitlines()[-1])["cached"] is False
    assert main(args) == 0 and json.loads(capsys.readouterr().out.splitlines()[-1])["cached"] is True
    assert main(["cache", "stats"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["entries"] == 1 and stats["folder"] == str(tmp_path / "cli-cache")
    assert main(["cache", "clear"]) == 0 and json.loads(capsys.readouterr().out)["cleared"] == 1
    assert main(args + ["--no-cache"]) == 0 and json.loads(capsys.readouterr().out.splitlines()[-1])["cached"] is False
