"""``python -m explainers scans PATH --model M``: the Scans page's worklist of a folder (its subfolders too), a
zip or (``--pacs URL`` instead of PATH) the series a DICOMweb server finds, as one JSON line per scan (one per
frame of a multi-frame DICOM file) and a summary line last.

The same functions as the page (explainers.worklist): verdicts stored in the cache are reused, the rest
predicted while the scans are read and stored. Unlike the page, any folder may be read: whoever runs the
command line runs the server.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cli.common import UsageError, add_pacs_arguments, pacs_worklist

# The Compare page's methods unless chosen otherwise (ui.controls.COMPARE_DEFAULT_METHODS, which cli/ may not
# import; tests/test_scans_cli.py checks they agree): what ``cached`` counts, at each method's defaults.
COMPARE_METHODS = ("partition", "permutation", "kernel", "deep", "gradient")


def add_scans_parser(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "scans",
        help="a worklist of a folder or a zip of scans: one JSON line per scan "
        "(verdict, label, agreement, cached explanations), then a summary",
    )
    sub.add_argument("path", nargs="?", help="a folder (its subfolders too) or a .zip of images and DICOM files")
    add_pacs_arguments(sub)
    sub.add_argument("--model", required=True, help="model name (see: python -m explainers models)")
    sub.add_argument(
        "--methods",
        default=",".join(COMPARE_METHODS),
        help=f"the Compare explanations counted as cached, at their default settings "
        f"(default {','.join(COMPARE_METHODS)})",
    )
    sub.add_argument("--top-k", type=int, default=None, help="classes per explanation (default: 3, as Compare)")
    sub.add_argument("--seed", type=int, default=0)


def cmd_scans(args: argparse.Namespace) -> int:
    from explainers.cache import ExplanationCache
    from explainers.worklist import Predictor, WorklistError, count_cached, summary
    from explainers.worklist_sources import from_path
    from models import get_spec, list_samples, load_classifier

    spec = get_spec(args.model)  # an unknown model is reported before anything is read
    if (args.path is None) == (args.pacs is None):
        raise UsageError("Give a folder or a .zip, or --pacs URL (not both).")
    path = Path(args.path) if args.path is not None else None
    if path is not None and not path.is_dir() and not path.is_file():
        raise UsageError(
            "Nothing exists at that path." if not path.exists() else "That path is neither a folder nor a .zip file."
        )
    classifier = load_classifier(spec.name)
    cache = ExplanationCache()
    predictor = Predictor(classifier, cache)
    try:
        if path is None:
            worklist, _ = pacs_worklist(spec, args, predictor)
        else:
            worklist = from_path(spec, path, (sample.path for sample in list_samples()), predictor)
    except WorklistError as error:
        raise UsageError(str(error)) from None
    methods = [name.strip() for name in args.methods.split(",") if name.strip()]
    count_cached(worklist, lambda scan: _requests(classifier, scan.image.digest, methods, args), cache)
    names = classifier.class_names
    for scan in worklist.scans:
        print(json.dumps(_row(scan, spec, names)))
    print(json.dumps({"summary": summary(worklist, names), "notes": worklist.notes}))
    return 0


def _row(scan: Any, spec: Any, names: Any) -> dict[str, Any]:
    """Every key on every line (null where it does not apply), so that each line reads the same way."""
    readable = scan.probs is not None
    return {
        "row": scan.row,
        "name": scan.name,
        "frame": None if scan.frame is None else scan.frame + 1,
        "verdict": spec.class_title(scan.verdict) if readable else None,
        "confidence": round(scan.confidence, 4) if readable else None,
        "label": spec.class_title(scan.label) if scan.label else None,
        "agrees": names[scan.verdict] == scan.label if readable and scan.label is not None else None,
        "in_domain": scan.domain_warning is None if readable else None,
        "cached": scan.explained if readable else None,
        "wanted": scan.wanted if readable else None,
        "error": scan.error,
    }


def _requests(classifier: Any, digest: str, methods: list[str], args: argparse.Namespace) -> list:
    """What the Compare page asks for at its defaults (a method that cannot explain this model is left out)."""
    from explainers.methods import ParameterError, get_method
    from explainers.request import build_request

    top_k = args.top_k or min(3, len(classifier.class_names))
    requests = []
    for name in methods:
        method = get_method(name)
        try:
            requests.append(
                build_request(
                    classifier,
                    digest,
                    method.name,
                    budget=method.default_budget,
                    params=method.page_defaults(),
                    seed=args.seed,
                    top_k=top_k,
                    output=classifier.spec.policy.output,
                )
            )
        except ParameterError:
            continue
    return requests
