"""``python -m explainers report``: a PDF report of one image (service.report), its explanations reused from the
cache and the missing ones computed; the last line on stdout is JSON with ``out``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli.common import TerminalProgress, UsageError, load_inputs
from explainers import formats

DEFAULT_METHODS = "partition,kernel,gradient"


def add_report_parser(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser("report", help="a PDF report of one image: verdict, maps, scores, parameters")
    sub.add_argument("--model", required=True, help="model name (see: python -m explainers models)")
    sub.add_argument("--image", required=True, help=f"{formats.listed(suffix=True)} file")
    sub.add_argument("--frame", type=int, default=1, help="the frame (slice) of a multi-frame DICOM file, from 1")
    sub.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma-separated (default {DEFAULT_METHODS})")
    sub.add_argument("--max-evals", type=int, default=None, help="every method's budget (default: each its own)")
    sub.add_argument("--top-k", type=int, default=3, help="classes shown (default 3)")
    sub.add_argument("--seed", type=int, default=0)
    sub.add_argument(
        "--output",
        choices=("probability", "log-odds"),
        default=None,
        help="what the values add up to (default: the model's, see `models`)",
    )
    sub.add_argument(
        "--hide-background",
        action="store_true",
        help="MRI models: leave the background outside the head out of the maps (the report says how "
        "much of each method's attribution lay there)",
    )
    sub.add_argument(
        "--contrast",
        metavar="CLASS",
        default=None,
        help="the class the verdict is contrasted with, a name or number (default: the runner-up; drawn by "
        "kernel, permutation or exact from their evaluations)",
    )
    sub.add_argument("--out", required=True, help="the PDF file to write")
    sub.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_report(args: argparse.Namespace) -> int:
    from explainers.cache import ExplanationCache
    from explainers.contrast import ContrastError, class_index
    from explainers.images import load_image
    from explainers.methods import get_method
    from explainers.predictions import accuracy
    from explainers.request import run_cached
    from models import labelled_samples
    from service.compare import compare_requests, explainable
    from service.report import report_file

    classifier, image = load_inputs(args.model, args.image, "pretrained", args.frame)
    against = None
    if args.contrast is not None:
        try:
            against = class_index(classifier.class_names, args.contrast)  # a wrong class is told before any work
        except ContrastError as error:
            raise UsageError(str(error)) from None
    names = [name.strip() for name in args.methods.split(",") if name.strip()]
    if not names:
        raise UsageError("--methods names no method.")
    # Each method at its own budget, or at --max-evals brought within the method's bounds.
    methods = [get_method(name) for name in names]
    settings: dict[str, tuple[int | None, dict[str, Any]]] = {
        method.name: (
            None if args.max_evals is None else min(max(args.max_evals, method.min_budget), method.max_budget),
            {},
        )
        for method in methods
    }
    plan = compare_requests(classifier, image, settings, top_k=args.top_k, seed=args.seed, output=args.output)
    if plan.refused:
        raise UsageError(next(iter(plan.refused.values())))
    cache = ExplanationCache()
    explanations, computed = {}, []
    for name, request in plan.requests.items():
        progress = None if args.quiet else TerminalProgress(stream=sys.stderr)
        explanations[name], cached = run_cached(cache, request, image, explainable(classifier), progress)
        if not cached:
            computed.append(name)
    out = Path(args.out)
    labelled = [
        (load_image(sample.path, sample=True), sample.label)
        for sample in labelled_samples(classifier.spec)
        if sample.label is not None
    ]
    out.write_bytes(
        report_file(
            cache,
            classifier,
            image,
            explanations,
            top_k=args.top_k,
            accuracy=accuracy(cache, explainable(classifier), labelled),
            hide_background=args.hide_background,
            contrast_against=against,
        )
    )
    print(
        json.dumps(
            {
                "out": str(out),
                "model": classifier.name,
                "image": image.display_name,
                "methods": list(explanations),
                "computed": computed,
                "bytes": out.stat().st_size,
            }
        )
    )
    return 0
