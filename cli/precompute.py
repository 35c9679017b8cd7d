"""``python -m explainers precompute``: predict and explain a folder of images (or the series a PACS finds, with
``--pacs``) with every method, on the job engine, skipping what is cached; a progress bar on stderr, and one
JSON line at the end. ``--store-results`` writes each PACS scan's results back into its study (a Secondary
Capture of the overlays, the PDF report, a Structured Report: service.pacs_results).

Ctrl-C stops it: jobs in flight are cancelled, what finished is kept, and the same command resumes (every
stored explanation is skipped).
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import time
from pathlib import Path
from typing import Any

from cli.common import TerminalProgress, UsageError, add_pacs_arguments, pacs_worklist

# Jobs in flight per worker thread: enough to keep every worker busy, few enough to bound the images in memory.
IN_FLIGHT_PER_WORKER = 3


def add_precompute_parser(commands: Any) -> None:
    sub = commands.add_parser(
        "precompute",
        help="predict and explain every image of a folder with every method, "
        "on the job engine, skipping what is cached",
    )
    sub.add_argument("--model", required=True, help="model name (see: python -m explainers models)")
    sub.add_argument("--images", default=None, help="a folder, or a glob such as 'scans/*.png' (quoted)")
    add_pacs_arguments(sub)
    sub.add_argument(
        "--store-results",
        action="store_true",
        help="with --pacs: write each scan's results back into its study (Secondary Capture, PDF, Structured Report)",
    )
    sub.add_argument(
        "--methods",
        default=None,
        help="comma-separated method names (default: every method that can explain the model)",
    )
    sub.add_argument("--max-evals", type=int, default=None, help="every method's budget (default: each its own)")
    sub.add_argument("--top-k", type=int, default=3, help="classes explained by the pixel methods (default 3)")
    sub.add_argument("--segments", type=int, default=None, help="superpixels, for the methods that use them")
    sub.add_argument("--seed", type=int, default=0)
    sub.add_argument(
        "--output",
        choices=("probability", "log-odds"),
        default=None,
        help="what the values add up to (default: the model's, see `models`)",
    )
    sub.add_argument(
        "--scheduler",
        default=None,
        help="a Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: $EXPLAINERS_SCHEDULER, else an "
        "embedded cluster on this machine)",
    )
    sub.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes of the embedded cluster (default: one per core, memory allowing)",
    )
    sub.add_argument("--quiet", action="store_true", help="no progress bar")


def image_paths(pattern: str) -> list[Path]:
    """The image files of a folder (not its subfolders), or those a glob matches, sorted."""
    from explainers.images import IMAGE_SUFFIXES, image_files

    path = Path(pattern)
    if path.is_dir():
        return image_files(path)
    matches = sorted(Path(match) for match in glob.glob(pattern, recursive=True))
    return [match for match in matches if match.suffix.lower() in IMAGE_SUFFIXES and match.is_file()]


def cmd_precompute(args: argparse.Namespace) -> int:
    from explainers import formats
    from explainers.cache import ExplanationCache
    from explainers.images import ImageError, load_image
    from explainers.methods import ParameterError, all_methods, get_method
    from explainers.predictions import cached_prediction
    from explainers.request import build_request
    from jobs.engine import batch_engine
    from models import get_spec, load_classifier

    spec = get_spec(args.model)
    if (args.images is None) == (args.pacs is None):
        raise UsageError("Give --images or --pacs (not both).")
    if args.store_results and args.pacs is None:
        raise UsageError("--store-results writes back to a PACS: give --pacs too.")
    pacs, scans = None, {}
    if args.pacs is not None:
        worklist, pacs = pacs_worklist(spec, args, None)
        scans = {f"scan {scan.image.digest[:8]}" if scan.image else f"scan {scan.row}": scan for scan in worklist.scans}
        files: list[Any] = list(scans)
        if not files:
            raise UsageError("The PACS found no series with these filters.")
    else:
        files = image_paths(args.images)
        if not files:
            raise UsageError(f"No {formats.listed()} files at {args.images}.")  # the formats image_paths looks for
    classifier = load_classifier(args.model)
    names = (
        [name.strip() for name in args.methods.split(",")]
        if args.methods
        else [method.name for method in all_methods() if method.unsupported(classifier) is None]
    )
    methods = [get_method(name) for name in names]
    for method in methods:
        reason = method.unsupported(classifier)
        if reason is not None:
            raise UsageError(f"{method.title} cannot explain {args.model}: {reason}.")

    def params_for(method: Any) -> dict[str, Any]:
        # The pages' settings (budget "auto" there), so that what is precomputed is what a page asks for.
        params = method.page_defaults()
        return {**params, "segments": args.segments} if args.segments is not None and "segments" in params else params

    started = time.perf_counter()
    cache = ExplanationCache()
    engine = batch_engine(cache=cache, address=args.scheduler, workers=args.workers)
    total = len(files) * len(methods)
    bar = TerminalProgress(unit="jobs")
    in_flight: list[tuple[Any, Any]] = []
    wanted: dict[str, list[Any]] = {}  # a PACS scan's requests, for --store-results
    failed: list[dict[str, str]] = []
    counts = {"requests": 0, "computed": 0, "cached": 0, "finished": 0}

    def draw() -> None:
        """Images read, then jobs finished (cached ones and failed images count as finished), rate, time left."""
        if not args.quiet:
            bar.detail = f"images {read}/{len(files)}"
            bar(counts["finished"], total)

    def collect(block: bool) -> None:
        """Counts the finished jobs; with ``block``, waits until at least one has finished."""
        while in_flight:
            for entry in [entry for entry in in_flight if entry[1].done]:
                in_flight.remove(entry)
                path, job = entry
                counts["finished"] += 1
                if job.outcome is not None:
                    counts["computed"] += 1
                else:
                    failed.append({"file": str(path), "method": job.request.method, "reason": job.error or ""})
            draw()
            if not block or len(in_flight) < limit:
                return
            in_flight[0][1].wait(0.2)

    read, limit = 0, 1
    try:
        for path in files:
            try:
                image = load_image(path) if pacs is None else _scan_image(scans[str(path)])
                probs = cached_prediction(cache, classifier, image)  # the verdicts, listed without a model call
            except (ImageError, ValueError) as error:
                failed.append({"file": str(path), "reason": str(error)})
                counts["finished"] += len(methods)
                read += 1
                continue
            read += 1
            del probs
            for method in methods:
                try:
                    request = build_request(
                        classifier,
                        image,
                        method.name,
                        params=params_for(method),
                        budget=args.max_evals,
                        seed=args.seed,
                        top_k=min(args.top_k, len(classifier.class_names)),
                        output=args.output,
                    )
                except ParameterError as error:
                    raise UsageError(f"{method.title}: {error}") from None
                counts["requests"] += 1
                wanted.setdefault(str(path), []).append(request)
                if cache.get(request) is not None:
                    counts["cached"] += 1
                    counts["finished"] += 1
                    continue
                limit = IN_FLIGHT_PER_WORKER * engine.threads()
                in_flight.append((path, engine.submit(request, image, score=True, batch=True)))
                collect(block=True)
        limit = 1
        collect(block=True)
        collect(block=False)
    except KeyboardInterrupt:
        for _, job in in_flight:
            job.cancel()
        bar.end()
        _report(args, counts, failed, started, interrupted=True)
        print("Stopped: what finished is stored; run the same command to resume.", file=sys.stderr)
        engine.close()
        return 130
    draw()
    bar.end()
    engine.close()
    stored = None
    if args.store_results and pacs is not None:
        stored = _store_results(cache, classifier, pacs, scans, wanted, args, failed)
    _report(args, counts, failed, started, stored=stored)
    return 1 if failed else 0


def _scan_image(scan: Any) -> Any:
    from explainers.images import ImageError

    if scan.image is None:
        raise ImageError(scan.error or "This scan could not be read.")
    return scan.image.load()  # retrieved from the PACS again, decoded in the sandbox


def _store_results(
    cache: Any, classifier: Any, pacs: Any, scans: dict[str, Any], wanted: dict[str, list[Any]], args: Any, failed: list
) -> dict[str, Any]:
    """Each fully explained PACS scan's results into its study; what was written and the seconds per scan."""
    from explainers.images import ImageError
    from explainers.pacs import PacsError
    from service.pacs_results import results_datasets

    written, scans_done, seconds = 0, 0, []
    for name, requests in wanted.items():
        explanations = {request.method: cache.get(request) for request in requests}
        if any(explanation is None for explanation in explanations.values()):
            continue  # a method failed on it: already in "failed"
        began = time.perf_counter()
        try:
            scan = scans[name]
            image = _scan_image(scan)
            datasets = results_datasets(
                cache, classifier, image, explanations, scan.image.origin.remote.instance, top_k=args.top_k
            )
            written += pacs.store(datasets)
        except (ImageError, PacsError) as error:
            failed.append({"file": name, "reason": str(error)})
            continue
        scans_done += 1
        seconds.append(time.perf_counter() - began)
    return {
        "scans": scans_done,
        "objects": written,
        "seconds_per_scan": round(sum(seconds) / len(seconds), 2) if seconds else None,
    }


def _report(
    args: argparse.Namespace,
    counts: dict[str, int],
    failed: list[dict[str, str]],
    started: float,
    interrupted: bool = False,
    stored: dict[str, Any] | None = None,
) -> None:
    print(
        json.dumps(
            {
                "model": args.model,
                "requests": counts["requests"],
                "computed": counts["computed"],
                "cached": counts["cached"],
                "failed": failed,
                "seconds": round(time.perf_counter() - started, 2),
                **({"interrupted": True} if interrupted else {}),
                **({"stored": stored} if stored is not None else {}),
            }
        )
    )
