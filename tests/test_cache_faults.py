"""The cache fails soft: a corrupt or deleted index, a read-only folder, a full disk and concurrent writers of one
key never cost a traceback, lost work or a wrong explanation. (Identical requests in flight share one job of the
job engine: tests/test_jobs.py.)"""

from __future__ import annotations

import errno
import logging
import os
import pickle
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import explainers.cache_folder as cache_module  # the cache's index is opened there
from cli.main import main
from explainers.cache import READ_ONLY_ENV, SHARED, ExplanationCache
from explainers.images import InputImage
from explainers.request import build_request, run_cached

ROOT = Path(__file__).resolve().parents[1]
DEADLINE_SECONDS = 120  # every loop below stops by count, and by this at the latest


def request_for(model, image, seed: int = 0):
    source = InputImage.from_pixels(image, "file", None)
    return build_request(model, source, "kernel", params={"segments": 12}, budget=60, seed=seed, top_k=2), source


def run(cache, model, image, seed: int = 0, progress=None):
    request, source = request_for(model, image, seed)
    return run_cached(cache, request, source, model, progress)


def npz_files(cache: ExplanationCache) -> set[str]:
    return {path.name for path in cache.blobs.glob("*.npz")}


# -- a corrupt or deleted index ---------------------------------------------------------------------------------


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes(np.random.default_rng(0).bytes(len(data)) if how == "random" else data[: len(data) // 2])


@pytest.mark.parametrize("how", ["random", "truncate"])
def test_a_corrupt_index_is_moved_aside_and_its_entries_recomputed(
    tmp_path, digits_model, digit_seven, how, caplog
) -> None:
    cache = ExplanationCache(tmp_path / "cache")
    first, _ = run(cache, digits_model, digit_seven, seed=0)
    for seed in range(1, 6):
        run(cache, digits_model, digit_seven, seed=seed)
    damage(cache.path, how)
    with caplog.at_level(logging.WARNING, logger="explainers.cache"):
        reopened = ExplanationCache(cache.folder)
        again, cached = run(reopened, digits_model, digit_seven, seed=0)
    assert not cached
    np.testing.assert_allclose(again.values, first.values)
    assert len([r for r in caplog.records if r.name == "explainers.cache"]) == 1
    assert len(list(cache.folder.glob("index.sqlite3.corrupt-*"))) == 1
    # The files the lost rows pointed to are gone: nothing the bad index described can be served.
    assert reopened.stats()["entries"] == 1 and len(npz_files(reopened)) == 1
    assert {name.split(".")[0] for name in npz_files(reopened)} == {entry.key for entry in reopened.entries()}
    assert run(reopened, digits_model, digit_seven, seed=0)[1] and reopened.warning is None


def test_a_server_s_open_cache_recovers_when_its_index_goes_bad(tmp_path, digits_model, digit_seven) -> None:
    cache = ExplanationCache(tmp_path / "cache")
    run(cache, digits_model, digit_seven)
    damage(cache.path, "random")
    assert cache.stats()["entries"] == 0 and cache.entries() == []  # answers, and the index is new
    assert not run(cache, digits_model, digit_seven)[1] and run(cache, digits_model, digit_seven)[1]


def test_cache_clear_and_stats_work_on_a_corrupt_index(
    tmp_path, monkeypatch, capsys, digits_model, digit_seven
) -> None:
    folder = tmp_path / "cli-cache"
    monkeypatch.setenv("EXPLAINERS_CACHE_DIR", str(folder))
    run(ExplanationCache(folder), digits_model, digit_seven)
    damage(folder / "index.sqlite3", "truncate")
    assert main(["cache", "clear"]) == 0 and '"cleared": 0' in capsys.readouterr().out
    damage(folder / "index.sqlite3", "random")
    assert main(["cache", "stats"]) == 0 and '"entries": 0' in capsys.readouterr().out


def test_an_index_deleted_during_a_computation_is_recreated_and_the_result_stored(
    tmp_path, digits_model, digit_seven
) -> None:
    cache = ExplanationCache(tmp_path / "cache")
    run(cache, digits_model, digit_seven, seed=1)
    original = digits_model.predict

    def deleting(images, batch_size=None):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{cache.path}{suffix}").unlink(missing_ok=True)
        return original(images, batch_size)

    digits_model.predict = deleting
    try:
        explanation, cached = run(cache, digits_model, digit_seven, seed=0)
    finally:
        digits_model.predict = original
    assert not cached and cache.warning is None and cache.stats()["entries"] == 1
    again, cached = run(cache, digits_model, digit_seven, seed=0)
    assert cached
    np.testing.assert_array_equal(again.values, explanation.values)


# -- a read-only folder ------------------------------------------------------------------------------------------


def test_a_read_only_cache_serves_hits_and_stores_nothing(tmp_path, monkeypatch, digits_model, digit_seven) -> None:
    cache = ExplanationCache(tmp_path / "cache")
    first, _ = run(cache, digits_model, digit_seven)
    used = cache.entries()[0].last_used
    files = npz_files(cache)
    for how in ("argument", "environment"):
        if how == "environment":
            monkeypatch.setenv(READ_ONLY_ENV, "1")
            read_only = ExplanationCache(cache.folder)
        else:
            read_only = ExplanationCache(cache.folder, read_only=True)
        assert read_only.read_only and read_only.warning is not None and "read-only" in read_only.warning
        hit, cached = run(read_only, digits_model, digit_seven)
        assert cached
        np.testing.assert_array_equal(hit.values, first.values)
        miss, cached = run(read_only, digits_model, digit_seven, seed=3)  # computed and returned, not stored
        assert not cached and miss.values.shape == first.values.shape
        assert read_only.clear() == 0 and not read_only.delete(cache.entries()[0].key) and read_only.sweep(0) == 0
        assert not read_only.put_json("k", 1)
    assert cache.stats()["entries"] == 1 and cache.entries()[0].last_used == used and npz_files(cache) == files


def test_a_read_only_cache_without_an_index_is_empty(tmp_path, digits_model, digit_seven) -> None:
    cache = ExplanationCache(tmp_path / "never-written", read_only=True)
    assert cache.stats()["entries"] == 0 and not run(cache, digits_model, digit_seven)[1]
    assert not (tmp_path / "never-written").exists()


def chmod_read_only(folder: Path, locked: bool) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o555 if path.is_dir() else 0o444) if locked else (0o755 if path.is_dir() else 0o644))


def chattr_immutable(folder: Path, locked: bool) -> None:
    """The one read-only folder root cannot write either (on file systems with the immutable flag)."""
    paths = [folder, *folder.rglob("*")]
    subprocess.run(
        ["chattr", "+i" if locked else "-i", *map(str, paths if locked else reversed(paths))],
        check=True,
        capture_output=True,
        timeout=60,
    )


def check_real_read_only(folder: Path, lock, digits_model, digit_seven) -> None:
    first, _ = run(ExplanationCache(folder), digits_model, digit_seven)
    before = {path.name: path.stat().st_mtime_ns for path in folder.rglob("*")}
    lock(folder, True)
    try:
        cache = ExplanationCache(folder)
        assert cache.read_only and cache.warning is not None and "read-only" in cache.warning
        hit, cached = run(cache, digits_model, digit_seven)
        assert cached
        np.testing.assert_array_equal(hit.values, first.values)
        assert not run(cache, digits_model, digit_seven, seed=4)[1] and cache.stats()["entries"] == 1
        after = {path.name: path.stat().st_mtime_ns for path in folder.rglob("*")}
    finally:
        lock(folder, False)
    assert after == before


@pytest.mark.skipif(os.geteuid() == 0, reason="chmod does not stop root from writing")
def test_a_read_only_folder_is_read(tmp_path, digits_model, digit_seven) -> None:
    check_real_read_only(tmp_path / "cache", chmod_read_only, digits_model, digit_seven)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may set the immutable flag")
def test_an_immutable_folder_is_read_even_by_root(tmp_path, digits_model, digit_seven) -> None:
    probe = tmp_path / "probe"
    probe.mkdir()
    try:
        chattr_immutable(probe, True)
        chattr_immutable(probe, False)
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"this file system has no immutable flag ({error})")
    check_real_read_only(tmp_path / "cache", chattr_immutable, digits_model, digit_seven)


# -- a full disk -------------------------------------------------------------------------------------------------


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["os.replace", "os.fsync", "sqlite"])
def test_a_full_disk_returns_the_explanation_with_a_warning_and_leaves_no_file(
    tmp_path, monkeypatch, where, digits_model, digit_seven
) -> None:
    cache = ExplanationCache(tmp_path / "cache")
    reference, _ = run(ExplanationCache(tmp_path / "reference"), digits_model, digit_seven)
    if where == "sqlite":
        run(cache, digits_model, digit_seven, seed=1)  # an index with a little in it, full to the last page
    before = npz_files(cache)
    if where == "sqlite":
        connect = cache_module.connect

        def full(path, **kwargs):
            context = connect(path, **kwargs)
            db = context.__enter__()
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            db.execute(f"PRAGMA max_page_count = {pages}")
            return _Entered(context, db)

        monkeypatch.setattr(cache_module, "connect", full)
        request, source = request_for(digits_model, digit_seven)
        # A long label needs pages the index may not grow: SQLITE_FULL, as at 52 KB free. (A sample's, SHARED:
        # any other image's label is replaced by its digest name.)
        stored = cache.put(request, reference, image_label="x" * 200_000, owner=SHARED)
        assert not stored
        explanation, cached = reference, False
    else:
        monkeypatch.setattr(os, where.split(".")[1], no_space)
        explanation, cached = run(cache, digits_model, digit_seven)
    np.testing.assert_allclose(explanation.values, reference.values)
    assert not cached and cache.warning is not None
    assert "full" in cache.warning and str(cache.folder) in cache.warning
    assert not list(cache.blobs.glob("*.tmp"))
    assert npz_files(cache) == before  # the file of the entry that could not be indexed is gone too
    monkeypatch.undo()
    assert cache.stats()["entries"] == (1 if where == "sqlite" else 0)
    run(cache, digits_model, digit_seven)
    assert run(cache, digits_model, digit_seven)[1]  # stored once there is room again


class _Entered:
    """A connection already entered, closed with its context (lets a test adjust every connection)."""

    def __init__(self, context, db):
        self.context, self.db = context, db

    def __enter__(self):
        return self.db

    def __exit__(self, *exc):
        return self.context.__exit__(*exc)


# -- concurrent writers of one key ------------------------------------------------------------------------------


def read_while(cache: ExplanationCache, key: str, writing) -> int:
    """Reads ``key`` until ``writing()`` is False (bounded); every read must find a valid entry."""
    reads, started = 0, time.monotonic()
    while writing() and time.monotonic() - started < DEADLINE_SECONDS and reads < 100_000:
        assert cache.get_by_key(key) is not None, f"read {reads} found no entry"
        reads += 1
    return reads


def test_two_threads_rewriting_one_key_never_make_a_reader_drop_it(tmp_path, digits_model, digit_seven) -> None:
    folder = tmp_path / "cache"
    explanation, _ = run(ExplanationCache(folder), digits_model, digit_seven)
    request, _ = request_for(digits_model, digit_seven)
    failures: list[BaseException] = []

    def write(writer: int) -> None:
        cache = ExplanationCache(folder)  # one per thread, as sessions and processes have
        try:
            for i in range(50):
                assert cache.put(request, replace(explanation, seconds=float(2 * i + writer)))
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            failures.append(error)

    writers = [threading.Thread(target=write, args=(w,)) for w in range(2)]
    for thread in writers:
        thread.start()
    reader = ExplanationCache(folder)
    reads = read_while(reader, request.key, lambda: any(t.is_alive() for t in writers))
    for thread in writers:
        thread.join(DEADLINE_SECONDS)
    assert not failures and reads > 0
    with sqlite3.connect(reader.path) as db:
        assert npz_files(reader) == {db.execute("SELECT file FROM entries").fetchone()[0]}  # replaced ones gone
    stored = reader.get(request)
    assert stored is not None and stored.seconds in {float(2 * i + w) for i in range(50) for w in range(2)}


WRITER_SCRIPT = """
import pickle, sys
from dataclasses import replace
sys.path.insert(0, {root!r})
from explainers.cache import ExplanationCache
request, explanation = pickle.load(open({pickled!r}, "rb"))
cache = ExplanationCache({folder!r})
for i in range(50):
    assert cache.put(request, replace(explanation, seconds=float(i + 100 * {writer}))), cache.warning
print("done")
"""


def test_two_processes_rewriting_one_key_never_make_a_reader_drop_it(tmp_path, digits_model, digit_seven) -> None:
    folder = tmp_path / "cache"
    explanation, _ = run(ExplanationCache(folder), digits_model, digit_seven)
    request, _ = request_for(digits_model, digit_seven)
    pickled = tmp_path / "work.pickle"
    pickled.write_bytes(pickle.dumps((replace(request, method_object=None), explanation)))
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER_SCRIPT.format(root=str(ROOT), pickled=str(pickled), folder=str(folder), writer=w),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(2)
    ]
    try:
        reader = ExplanationCache(folder)
        reads = read_while(reader, request.key, lambda: any(p.poll() is None for p in writers))
        outputs = [p.communicate(timeout=DEADLINE_SECONDS) for p in writers]
    finally:
        for p in writers:
            p.kill()
    assert [p.returncode for p in writers] == [0, 0], outputs
    assert reads > 0 and len(npz_files(reader)) == 1 and reader.get(request) is not None


def test_a_replaced_entry_keeps_one_file_and_delete_removes_it(tmp_path, digits_model, digit_seven) -> None:
    cache = ExplanationCache(tmp_path / "cache")
    explanation, _ = run(cache, digits_model, digit_seven)
    other, _ = run(cache, digits_model, digit_seven, seed=1)
    request, _ = request_for(digits_model, digit_seven)
    assert cache.put(request, replace(explanation, seconds=99.0)) and len(npz_files(cache)) == 2
    assert cache.delete(request.key) and request.key not in cache and not cache.delete(request.key)
    assert len(npz_files(cache)) == 1 and run(cache, digits_model, digit_seven, seed=1)[1]
