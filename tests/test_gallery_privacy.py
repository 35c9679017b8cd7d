"""Whose explanations the Gallery lists: a signed-in user sees their own and the bundled samples', never another
user's scan; an open single-user app lists everything. Entries are deleted one at a time, on the page and on the
command line, and an index written before entries had owners keeps working."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from cli.main import main
from explainers.cache import LOCAL, SHARED, UNKNOWN, ExplanationCache
from explainers.images import InputImage, load_image
from explainers.request import build_request, run_cached
from signin import hash_password
from tests.test_access import ROOT

HASH = hash_password("correct horse")


def explain(cache, model, pixels, source, label, owner=None, seed=0):
    image = InputImage.from_pixels(pixels, source, label)
    request = build_request(model, image, "kernel", top_k=2, budget=40, params={"segments": 8}, seed=seed)
    run_cached(cache, request, image, model, owner=owner)
    return request.key


def scan(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (28, 28, 3), dtype=np.uint8)


def test_entries_belong_to_who_asked_and_samples_to_everyone(tmp_path, digits_model, digit_seven) -> None:
    cache = ExplanationCache(tmp_path / "cache")
    explain(cache, digits_model, digit_seven, "sample", "digit_7.png", owner="alice")
    explain(cache, digits_model, scan(1), "upload", "upload aaaa", owner="alice")
    explain(cache, digits_model, scan(2), "upload", "upload bbbb", owner="bob")
    explain(cache, digits_model, scan(3), "file", "scan.png")  # the command line, or an open app
    owners = {entry.image_label: entry.owner for entry in cache.entries()}
    named = f"image {InputImage.from_pixels(scan(3)).digest[:8]}"  # a file's name never reaches the index
    assert owners == {"digit_7.png": SHARED, "upload aaaa": "alice", "upload bbbb": "bob", named: LOCAL}
    seen = {user: {e.image_label for e in cache.entries() if e.visible_to(user)} for user in ("alice", "bob", None)}
    assert seen["alice"] == {"digit_7.png", "upload aaaa"} and seen["bob"] == {"digit_7.png", "upload bbbb"}
    assert seen[None] == set(owners)


def test_an_index_from_before_owners_is_upgraded_and_its_rows_kept_private(tmp_path, digits_model) -> None:
    cache = ExplanationCache(tmp_path / "cache")
    explain(cache, digits_model, scan(4), "upload", "upload cccc", owner="alice")
    with sqlite3.connect(cache.path) as db:  # as the previous release wrote it
        db.execute("ALTER TABLE entries DROP COLUMN owner")
    reopened = ExplanationCache(tmp_path / "cache")
    [entry] = reopened.entries()
    assert entry.owner == UNKNOWN and not entry.visible_to("alice") and entry.visible_to(None)
    assert reopened.get_by_key(entry.key) is not None  # still served to the request that made it


def test_the_command_line_lists_and_deletes_single_entries(tmp_path, monkeypatch, capsys, digits_model) -> None:
    monkeypatch.setenv("EXPLAINERS_CACHE_DIR", str(tmp_path / "cli-cache"))
    cache = ExplanationCache()
    keys = [explain(cache, digits_model, scan(seed), "upload", f"upload {seed:04d}", owner="alice") for seed in (5, 6)]
    assert main(["cache", "list"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {row["key"] for row in listed} == set(keys) and {row["owner"] for row in listed} == {"alice"}
    assert main(["cache", "delete", keys[0], "no-such-key"]) == 1
    assert json.loads(capsys.readouterr().out) == {"deleted": [keys[0]], "not_found": ["no-such-key"]}
    assert [entry.key for entry in cache.entries()] == [keys[1]] and cache.get_by_key(keys[0]) is None
    assert main(["cache", "delete"]) == 2 and "Name the entries" in capsys.readouterr().err


def gallery_as(user: str) -> AppTest:
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    app.secrets["access"] = {"users": {"alice": HASH, "bob": HASH}}
    app.session_state["signed_in_user"] = user
    app.switch_page("app_pages/gallery.py")
    return app.run()


def test_the_gallery_shows_a_signed_in_user_only_their_own_scans(digits_model, digit_seven) -> None:
    cache = ExplanationCache()  # the app's cache: the test session's folder (tests/conftest.py)
    cache.clear()
    explain(cache, digits_model, digit_seven, "sample", "digit_7.png")
    alice = explain(cache, digits_model, scan(7), "upload", "upload a11ce", owner="alice")
    explain(cache, digits_model, scan(8), "upload", "upload b0b00", owner="bob")

    app = gallery_as("alice")
    assert not app.exception, app.exception
    table = app.dataframe[0].value
    assert sorted(table["image"]) == ["digit_7.png", "upload a11ce"]
    assert "upload b0b00" not in " ".join(str(o) for o in app.selectbox(key="gallery_open").options)
    assert "Other users' are not listed" in " ".join(c.value for c in app.caption)

    app.selectbox(key="gallery_open").set_value(alice).run()
    app.button(key="gallery_delete_button").click().run()
    assert not app.exception, app.exception
    assert "Deleted digits_cnn · upload a11ce" in " ".join(s.value for s in app.success)
    assert alice not in cache and len(cache.entries()) == 2
    assert sorted(app.dataframe[0].value["image"]) == ["digit_7.png"]
    # A sample's entry is everyone's: a signed-in user cannot delete it for the others.
    assert not [b for b in app.button if b.key == "gallery_delete_button"]

    bob = gallery_as("bob")
    assert sorted(bob.dataframe[0].value["image"]) == ["digit_7.png", "upload b0b00"]
    cache.clear()


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A cache folder of this test's own, for the command line and the app alike (the app keeps one cache per
    server: it is let go before and after)."""
    from ui.compute import get_cache

    folder = tmp_path / "cache"
    monkeypatch.setenv("EXPLAINERS_CACHE_DIR", str(folder))
    get_cache.clear()
    yield folder
    monkeypatch.undo()
    get_cache.clear()


def open_gallery() -> AppTest:
    """The Gallery of an open, single-user app (where every entry is listed)."""
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    app.secrets["access"] = {"mode": "none"}
    app.switch_page("app_pages/gallery.py")
    return app.run()


def texts(app: AppTest) -> str:
    """Everything the page sent to the browser, as text: its elements and the Gallery's table."""
    return str(app._tree) + " ".join(str(table.value.to_dict()) for table in app.dataframe)


def test_a_file_name_from_the_command_line_reaches_no_shared_file_and_no_visitor(tmp_path, cache_dir) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    image = folder / "CANARY_patient.jpg"
    Image.open(ROOT / "assets" / "samples" / "digits" / "digit_7.png").convert("RGB").save(image, format="JPEG")
    env = {**os.environ, "EXPLAINERS_CACHE_DIR": str(cache_dir)}
    for command in (
        ["explain", "--image", str(image), "--method", "partition", "--max-evals", "20"],
        ["precompute", "--images", str(folder), "--methods", "partition", "--max-evals", "24"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "explainers", *command, "--model", "digits_cnn", "--quiet"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        assert "CANARY" not in result.stderr  # nor in a log line
    files = [path for path in cache_dir.rglob("*") if path.is_file()]
    assert any(path.suffix == ".npz" for path in files) and any(path.name == "index.sqlite3" for path in files)
    assert not [path.name for path in files if b"CANARY" in path.read_bytes()]
    digest = load_image(image).digest
    assert {entry.image_label for entry in ExplanationCache(cache_dir).entries()} == {f"image {digest[:8]}"}

    app = open_gallery()
    assert not app.exception, app.exception
    assert set(app.dataframe[0].value["image"]) == {f"image {digest[:8]}"} and "CANARY" not in texts(app)


def test_the_gallery_names_an_old_rows_file_by_its_digest(cache_dir, capsys, digits_model) -> None:
    cache = ExplanationCache()
    key = explain(cache, digits_model, scan(9), "upload", "upload 9999")
    with sqlite3.connect(cache.path) as db:  # as an index written before file names were kept out held it
        db.execute("UPDATE entries SET image_label = 'CANARY_old.png' WHERE key = ?", (key,))
    [entry] = cache.entries()
    assert entry.image_name == f"image {entry.image_digest[:8]}"
    app = open_gallery()
    assert not app.exception, app.exception
    assert list(app.dataframe[0].value["image"]) == [entry.image_name] and "CANARY" not in texts(app)
    assert main(["cache", "list"]) == 0 and "CANARY" not in capsys.readouterr().out  # nor on the command line
