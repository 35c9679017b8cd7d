"""The persistent cache: hits, misses on any change, corrupted and half-written entries, eviction, CLI."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cli.main import main
from explainers.cache import ExplanationCache
from explainers.images import InputImage
from explainers.methods import all_methods, get_method
from explainers.methods.kernel import Kernel
from explainers.request import build_request, run_cached

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
    options = {
        "method": "kernel",
        "top_k": 2,
        "max_evals": 60,
        "params": {"segments": 12},
        "seed": 0,
        "classes": None,
    } | kwargs
    source = InputImage.from_pixels(image, "file", image_label or None)
    request = build_request(
        model,
        source,
        options["method"],
        params=options["params"],
        budget=options["max_evals"],
        seed=options["seed"],
        top_k=options["top_k"],
        classes=options["classes"],
    )
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


@pytest.mark.parametrize(
    "change",
    [
        {"seed": 1},
        {"max_evals": 61},
        {"params": {"segments": 11}},
        {"params": {"segments": 12, "fill": "blur"}},
        {"method": "permutation"},
    ],
)
def test_any_changed_parameter_misses(cache, digits_model, digit_seven, change) -> None:
    run(cache, digits_model, digit_seven)
    assert not run(cache, digits_model, digit_seven, **change)[1]


def test_a_different_image_or_model_weights_misses(cache, digits_model, digit_seven) -> None:
    base = build_request(digits_model, digit_seven, "kernel", top_k=2, budget=60, seed=0, params={})
    shifted = build_request(
        digits_model, np.roll(digit_seven, 1, axis=1), "kernel", top_k=2, budget=60, seed=0, params={}
    )
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
    # A file's name stays out of the shared index: the image is named by its digest.
    digest = InputImage.from_pixels(digit_seven).digest
    assert [e.image_label for e in cache.entries(method="kernel")] == [f"image {digest[:8]}"]


def test_command_line_reports_cached_and_manages_the_cache(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("EXPLAINERS_CACHE_DIR", str(tmp_path / "cli-cache"))
    args = [
        "explain",
        "--model",
        "digits_cnn",
        "--image",
        SEVEN,
        "--method",
        "kernel",
        "--max-evals",
        "60",
        "--segments",
        "12",
        "--quiet",
    ]
    assert main(args) == 0 and json.loads(capsys.readouterr().out.splitlines()[-1])["cached"] is False
    assert main(args) == 0 and json.loads(capsys.readouterr().out.splitlines()[-1])["cached"] is True
    assert main(["cache", "stats"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["entries"] == 1 and stats["folder"] == str(tmp_path / "cli-cache")
    assert main(["cache", "clear"]) == 0 and json.loads(capsys.readouterr().out)["cleared"] == 1
    assert main(args + ["--no-cache"]) == 0 and json.loads(capsys.readouterr().out.splitlines()[-1])["cached"] is False


def kernel_request(model, image, seed=0):
    source = InputImage.from_pixels(image, "file")
    return build_request(model, source, "kernel", top_k=2, budget=60, params={"segments": 12}, seed=seed), source


def point_row_at(cache, key: str, data: bytes) -> str:
    """Puts ``data`` in the row's file and its checksum in the row, as a consistent index would hold it: only
    the file's own stamp can tell whose explanation it is. Returns the file's name."""
    with sqlite3.connect(cache.path) as db:
        (file,) = db.execute("SELECT file FROM entries WHERE key = ?", (key,)).fetchone()
        db.execute(
            "UPDATE entries SET sha256 = ?, bytes = ? WHERE key = ?", (hashlib.sha256(data).hexdigest(), len(data), key)
        )
    (cache.blobs / file).write_bytes(data)
    return file


def test_an_entry_whose_file_holds_another_requests_key_is_discarded_not_served(
    cache, digits_model, digit_seven, caplog
) -> None:
    requests = [kernel_request(digits_model, digit_seven, seed)[0] for seed in (0, 1)]
    for seed in (0, 1):
        run(cache, digits_model, digit_seven, seed=seed)
    files = {entry.key: next(cache.blobs.glob(f"{entry.key}.*.npz")) for entry in cache.entries()}
    first, second = (files[request.key].read_bytes() for request in requests)
    swapped = [point_row_at(cache, requests[0].key, second), point_row_at(cache, requests[1].key, first)]

    with caplog.at_level(logging.WARNING, logger="explainers.cache"):
        assert cache.get(requests[0]) is None and cache.get_by_key(requests[1].key) is None  # misses
    assert requests[0] not in cache and requests[1] not in cache  # the entries are gone, files and all
    assert not any((cache.blobs / file).exists() for file in swapped)
    lines = [record.getMessage() for record in caplog.records if record.name == "explainers.cache"]
    assert len(lines) == 2 and all("did not match its request; discarded" in line for line in lines)
    assert not any(".npz" in line or requests[0].image_digest in line for line in lines)  # no file, no image
    again, cached = run(cache, digits_model, digit_seven, seed=0)
    assert not cached and again.seed == 0 and run(cache, digits_model, digit_seven, seed=0)[1]  # recomputed


def test_an_entry_from_before_files_were_stamped_is_recomputed(cache, digits_model, digit_seven) -> None:
    request, _ = kernel_request(digits_model, digit_seven)
    stored, _ = run(cache, digits_model, digit_seven)
    unstamped = io.BytesIO()
    stored.save(unstamped)  # as the cache wrote its files before they carried their request's key
    point_row_at(cache, request.key, unstamped.getvalue())
    assert cache.get(request) is None and request not in cache
    assert not run(cache, digits_model, digit_seven)[1] and cache.get(request) is not None


def test_a_methods_version_is_part_of_the_key(cache, monkeypatch, digits_model, digit_seven) -> None:
    request, _ = kernel_request(digits_model, digit_seven)
    before = request.key
    run(cache, digits_model, digit_seven)
    assert cache.get(request).params["method_version"] == Kernel.version  # in the provenance
    monkeypatch.setattr(Kernel, "version", Kernel.version + 1)  # the algorithm changed
    changed, _ = kernel_request(digits_model, digit_seven)
    assert changed.key != before and changed.identity()["method_version"] == Kernel.version
    assert not run(cache, digits_model, digit_seven)[1]  # what the old version stored is not served as current


def test_every_method_declares_its_version_and_kernel_counts_its_change(capsys) -> None:
    assert all(isinstance(method.version, int) and method.version >= 1 for method in all_methods())
    assert get_method("kernel").version >= 2  # folds split the sampled draws (commit 1f40b71)
    assert main(["methods"]) == 0
    assert f"\nkernel\tKernel SHAP (superpixels); version {Kernel.version};" in "\n" + capsys.readouterr().out
