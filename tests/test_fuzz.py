"""Fuzzing in the suite: DICOM mutations of pydicom's bundled files (fixed seeds, several hundred), damaged
pictures, zips and model cards, each read the way the app reads them, through the sandbox. Every case ends in
a picture or one sentence; none reaches the caller as a traceback, hangs or runs out of memory, and after them a
good image still decodes. ``bench/fuzz.py`` runs thousands of the same cases and writes the table."""

from __future__ import annotations

import itertools

import pytest

from bench.fuzz import run, table
from bench.fuzz_cases import attribute_cases, byte_cases, card_cases, picture_cases, zip_cases

SEED = 7
FAMILIES = {
    "dicom attributes": lambda: itertools.islice(attribute_cases(SEED), 220),
    "dicom bytes": lambda: byte_cases(120, SEED),
    "pictures": lambda: picture_cases(80, SEED),
    "zips": lambda: zip_cases(60, SEED),
    "cards": lambda: card_cases(60, SEED),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_every_hostile_file_ends_in_a_picture_or_one_sentence(family: str) -> None:
    results = run(FAMILIES[family](), check_every=20)
    counts = results[family].counts
    tried = sum(counts.values())
    assert tried >= {"dicom attributes": 200, "dicom bytes": 100}.get(family, 50), table(results)
    bad = {kind: results[family].examples.get(kind) for kind in ("crash", "hang", "over-memory") if counts[kind]}
    assert not bad, f"{table(results)}\n{bad}"
    assert counts["sentence"] > 0, "the mutations should break something"
