"""Fuzzing the decoders through the sandbox: thousands of hostile files (bench/fuzz_cases.py), each read the way
the app reads an upload, and a table per family of what happened: decoded, one sentence, the decoder stopped
(a child died and was replaced: contained), hangs (the wall or CPU limit), over-memory (the memory limit) and
crashes (anything reaching the caller that is not one sentence). After every case a good image must still
decode: the server process is unharmed.

    .venv/bin/python -m bench.fuzz [--dicom-bytes 600] [--pictures 300] [--zips 200] [--cards 150] [--write]

``--write`` puts the table into BENCHMARKS.md (between the fuzz markers).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench.fuzz_cases import Case, attribute_cases, byte_cases, card_cases, picture_cases, zip_cases

ROOT = Path(__file__).resolve().parents[1]
GOOD = ROOT / "assets" / "samples" / "photos" / "chelsea.png"
OUTCOMES = ("decoded", "sentence", "stopped", "hang", "over-memory", "crash")


@dataclass
class Outcome:
    kind: str  # one of OUTCOMES
    message: str
    seconds: float
    peak_bytes: int = 0


def one_sentence(text: str) -> bool:
    return (
        bool(text)
        and "\n" not in text
        and "Traceback" not in text
        and len(text) <= 400
        and text.rstrip().endswith((".", ")"))
    )


def _read(case: Case) -> None:
    """Reads the case as the app would: an upload on the Explain page, a zip on the Scans page, a model card."""
    from explainers.dicom import read_scan
    from explainers.images import is_dicom_source, load_image

    if case.family == "zips":
        from explainers.worklist_sources import from_uploads
        from models import get_spec

        worklist = from_uploads(get_spec("digits_cnn"), [(case.name, case.data)])
        rows = [scan.error for scan in worklist.scans if scan.error]
        bad = [error for error in rows + list(getattr(worklist, "notes", [])) if not one_sentence(str(error))]
        if bad:
            raise AssertionError(f"a row's reason is not one sentence: {bad[0]!r}")
        if rows:
            from explainers.worklist import WorklistError

            raise WorklistError(rows[0])  # counted as a sentence: the zip's rows say why they were not read
    elif case.family == "cards":
        from models.cards import read_card

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / case.name
            path.write_bytes(case.data)
            read_card(path)
    elif is_dicom_source(case.data, case.name):
        scan = read_scan(case.data, name=case.name)
        scan.image(0)
        if scan.frames > 1:
            scan.image(scan.frames - 1)
    else:
        load_image(case.data, name=case.name)


def run_case(case: Case) -> Outcome:
    """One case, classified; the error families a user can cause are one-sentence exceptions of ours, and a
    child that died or overran meanwhile (whatever sentence it became) is counted as stopped or hung."""
    from explainers import sandbox
    from explainers.archives import ArchiveError
    from explainers.images import ImageError
    from explainers.worklist import WorklistError
    from models.cards import CardError
    from storage.sandbox import ChildStopped, _probe_pools, probe

    if case.family == "cards":  # a card is parsed first in the YAML child, not in a decoder
        probe("storage.yaml_child", "warm: up\n", "warm.yaml", "")
        pool = _probe_pools["storage.yaml_child"]
    else:
        pool = sandbox.pool()
    replaced, pool.last_peak_bytes = pool.replaced, 0
    started = time.perf_counter()
    try:
        _read(case)
        kind, text = "decoded", ""
    except (ImageError, WorklistError, ArchiveError, CardError, ChildStopped) as error:
        text = str(error)
        kind = "over-memory" if "more memory" in text else "sentence" if one_sentence(text) else "crash"
    except Exception as error:  # noqa: BLE001 - exactly what this benchmark counts
        kind, text = "crash", f"{type(error).__name__}: {error}"[:300]
    seconds = time.perf_counter() - started
    if pool.replaced > replaced:
        stop = pool.last_stop or ""
        return Outcome("hang" if stop in ("timeout", "signal 24") else "stopped", f"{text} ({stop})", seconds)
    return Outcome(kind, text, seconds, pool.last_peak_bytes)


@dataclass
class Family:
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    peak_bytes: int = 0
    seconds: list[float] = field(default_factory=list)
    examples: dict[str, str] = field(default_factory=dict)


def run(cases: Iterable[Case], check_every: int = 1) -> dict[str, Family]:
    """Runs every case; after each ``check_every`` cases a good image must decode (else a crash is counted)."""
    from explainers.images import load_image

    families: dict[str, Family] = defaultdict(Family)
    for number, case in enumerate(cases):
        outcome = run_case(case)
        family = families[case.family]
        family.counts[outcome.kind] += 1
        family.peak_bytes = max(family.peak_bytes, outcome.peak_bytes)
        family.seconds.append(outcome.seconds)
        family.examples.setdefault(outcome.kind, f"{case.label} → {outcome.message}"[:240])
        if number % check_every == 0:
            try:
                assert load_image(GOOD, sample=True).shape == (300, 451, 3)
            except Exception as error:  # noqa: BLE001 - any failure of a good image after a case is a crash
                family.counts["crash"] += 1
                family.examples.setdefault("crash", f"after {case.label}: a good image failed ({error})")
    return families


def table(families: dict[str, Family]) -> str:
    lines = [
        "| family | tried | decoded | one sentence | decoder stopped (contained) | hangs | over-memory | "
        "crashes | worst peak MB | median ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, family in families.items():
        counts = family.counts
        tried = sum(counts[kind] for kind in OUTCOMES)
        lines.append(
            f"| {name} | {tried} | {counts['decoded']} | {counts['sentence']} | {counts['stopped']} | "
            f"{counts['hang']} | {counts['over-memory']} | {counts['crash']} | "
            f"{family.peak_bytes / 2**20:.0f} | {statistics.median(family.seconds) * 1000:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attributes", type=int, default=10_000, help="at most this many attribute mutations")
    parser.add_argument("--dicom-bytes", type=int, default=600)
    parser.add_argument("--pictures", type=int, default=300)
    parser.add_argument("--zips", type=int, default=200)
    parser.add_argument("--cards", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    parser.add_argument(
        "--section",
        default="fuzz",
        help="the BENCHMARKS.md section --write fills (run with "
        "EXPLAINERS_DICOM_PRECHECKS=0 and --section fuzz-unguarded to test the sandbox alone)",
    )
    args = parser.parse_args()
    import itertools

    started = time.time()
    cases = itertools.chain(
        itertools.islice(attribute_cases(args.seed), args.attributes),
        byte_cases(args.dicom_bytes, args.seed),
        picture_cases(args.pictures, args.seed),
        zip_cases(args.zips, args.seed),
        card_cases(args.cards, args.seed),
    )
    families = run(cases)
    text = table(families)
    print(text)
    for name, family in families.items():
        for kind, example in family.examples.items():
            if kind != "decoded":
                print(f"  {name} · {kind}: {example}")
    print(f"{time.time() - started:.0f} s")
    if args.write:
        write(text, args.section)


def write(text: str, section: str = "fuzz") -> None:
    """Puts ``text`` into BENCHMARKS.md between the section's markers (added at the end the first time)."""
    path = ROOT / "BENCHMARKS.md"
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    content = path.read_text()
    block = f"{start}\n{text}\n{end}"
    if start in content:
        content = content[: content.index(start)] + block + content[content.index(end) + len(end) :]
    else:
        titles = {
            "fuzz": "Fuzzing the decoders (bench/fuzz.py)",
            "fuzz-unguarded": "The same DICOM cases with the header pre-checks off: the sandbox alone "
            "(EXPLAINERS_DICOM_PRECHECKS=0 python -m bench.fuzz)",
            "sandbox": "The decoding sandbox's added time per decode (bench/sandbox_overhead.py)",
        }
        content += f"\n## {titles.get(section, section)}\n\n{block}\n"
    path.write_text(content)


if __name__ == "__main__":
    main()
