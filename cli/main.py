"""Command line: ``python -m explainers models | methods | predict | explain | precompute | cache | study``.

The last line of stdout of ``predict`` and ``explain`` is one JSON object (a contract the tests and the
benchmark rely on). A mistake of the user's is one sentence on stderr and exit code 2. The method flags come
from the methods' parameter data (``Param.flag``), so a new method's flagged parameter appears here by itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from cli.common import EXIT_USAGE, TerminalProgress, UsageError, load_inputs
from cli.precompute import add_precompute_parser, cmd_precompute
from cli.report import add_report_parser, cmd_report
from cli.scans import add_scans_parser, cmd_scans
from cli.study import add_study_parser, cmd_study
from explainers import formats


def _parse_params(pairs: Sequence[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--param expects NAME=VALUE, not {pair!r}.")
        params[name.strip()] = value.strip()
    return params


def flagged_params() -> dict[str, list[Any]]:
    """Command-line flag → the parameters (of every method) that it sets."""
    from explainers.methods import all_methods

    flags: dict[str, list[Any]] = {}
    for method in all_methods():
        for param in method.params:
            if param.flag:
                flags.setdefault(param.flag, []).append(param)
    return flags


def _flag_params(method: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The parameters set by their own flags, for this method; a flag it has no use for is a note (a shared
    setting such as --segments) or a mistake."""
    from explainers.methods import all_methods

    params = {}
    for flag, params_of_flag in flagged_params().items():
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is None:
            continue
        name = params_of_flag[0].name
        if any(param.name == name for param in method.params):
            params[name] = value
        elif params_of_flag[0].placement == "main":
            print(f"note: {method.name} does not use {name}; {flag} is ignored.", file=sys.stderr)
        else:
            users = [m.name for m in all_methods() if any(p.name == name for p in m.params)]
            raise UsageError(f"{method.name} has no {name} choice; {flag} applies to {', '.join(users)}.")
    return params


def cmd_models(args: argparse.Namespace) -> int:
    from models import all_specs
    from models.catalog import install
    from models.installed import PROBLEMS

    if args.action == "add":
        from models.cards import CardError
        from models.own import ModelRefused

        if not args.card:
            raise UsageError("models add needs the card: python -m explainers models add CARD.yaml")
        try:
            print(json.dumps(install(args.card)))
        except (CardError, ModelRefused) as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_USAGE
        return 0
    for spec in all_specs():
        reason = spec.missing_reason()
        status = "available" if reason is None else f"unavailable: {reason}"
        print(f"{spec.name}\t{status}")
    for name, reason in PROBLEMS:
        print(f"{name}\tnot registered: {reason}")
    return 0


def cmd_methods(_: argparse.Namespace) -> int:
    from explainers.methods import all_methods

    for method in all_methods():
        print(
            f"{method.name}\t{method.title}; version {method.version}; budget: {method.budget_meaning} "
            f"({method.min_budget}–{method.max_budget}, default {method.default_budget})"
        )
        for param in method.params:
            allowed = ", ".join(param.choices) if param.choices else f"{param.low:g}–{param.high:g}"
            flag = f" (or {param.flag})" if param.flag else ""
            print(f"  --param {param.name}=VALUE{flag}\t{param.help} [{allowed}; default {param.default}]")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from explainers.explanation import top_classes

    classifier, image = load_inputs(args.model, args.image, args.weights, args.frame)
    probs = classifier.predict(classifier.prepare(image.pixels))[0]
    classes = top_classes(probs, min(args.top_k, len(probs)))
    print(
        json.dumps(
            {
                "model": classifier.name,
                "weights": classifier.weights,
                "classes": [int(c) for c in classes],
                "labels": [classifier.class_names[c] for c in classes],
                "probs": [float(probs[c]) for c in classes],
            }
        )
    )
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from explainers.cache import ExplanationCache
    from explainers.contrast import class_index, contrast_record
    from explainers.methods import get_method
    from explainers.request import build_request, run_cached

    method = get_method(args.method)
    params = {**_parse_params(args.param), **_flag_params(method, args)}
    classifier, image = load_inputs(args.model, args.image, args.weights, args.frame)
    spec_names = classifier.class_names
    if args.contrast is not None:
        class_index(spec_names, args.contrast)  # a wrong class is told before any work
    request = build_request(
        classifier,
        image,
        method.name,
        params=params,
        budget=args.max_evals,
        seed=args.seed,
        top_k=args.top_k,
        output=args.output,
    )
    progress = None if args.quiet else TerminalProgress()
    cache = None if args.no_cache else ExplanationCache()
    explanation, cached = run_cached(cache, request, image, classifier, progress)
    if args.out:
        explanation.save(args.out)
    contrast = {} if args.contrast is None else {"contrast": contrast_record(explanation, spec_names, args.contrast)}
    print(
        json.dumps(
            {
                "model": explanation.model,
                "weights": classifier.weights,
                "method": explanation.method,
                "classes": [int(c) for c in explanation.classes],
                "labels": list(explanation.class_names),
                "probs": [float(explanation.probs[c]) for c in explanation.classes],
                "output": explanation.output,
                "outputs": [float(v) for v in explanation.outputs()],
                "base_values": [float(b) for b in explanation.base_values],
                "n_evals": explanation.n_evals,
                "seconds": round(explanation.seconds, 4),
                "additivity_error": explanation.additivity_error,
                # The largest over the explained classes of ‖standard errors‖ / ‖values‖ (null: not a sampled method).
                "relative_error": explanation.relative_error,
                "params": explanation.params,
                "seed": explanation.seed,
                "image_digest": explanation.image_digest,
                "cached": cached,
                "out": args.out,
                **contrast,
            }
        )
    )
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from explainers.cache import ExplanationCache

    cache = ExplanationCache()
    if args.action == "clear":
        removed = cache.clear()
        print(json.dumps({"cleared": removed, "folder": str(cache.folder)}))
    elif args.action == "list":  # one JSON line per entry, most recently used first
        for entry in cache.entries():
            print(
                json.dumps(
                    {
                        "key": entry.key,
                        "model": entry.model,
                        "image": entry.image_name,
                        "method": entry.method,
                        "budget": entry.request.get("max_evals"),
                        "owner": entry.owner or "everyone (sample)",
                        "bytes": entry.bytes,
                    }
                )
            )
    elif args.action == "delete":
        if not args.keys:
            raise UsageError(
                "Name the entries to delete: python -m explainers cache delete KEY … (keys from `cache list`)."
            )
        deleted = [key for key in args.keys if cache.delete(key)]
        missing = sorted(set(args.keys) - set(deleted))
        print(json.dumps({"deleted": deleted, "not_found": missing}))
        if cache.warning:
            raise UsageError(cache.warning)
        return 1 if missing else 0
    else:
        print(json.dumps(cache.stats()))
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    """``users hash NAME``: the line to add under [access.users] in .streamlit/secrets.toml."""
    import getpass

    from signin import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass(f"Password for {args.name}: ")
        if getpass.getpass("Again: ") != password:
            raise UsageError("The two passwords differ; nothing was written.")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise UsageError("Choose a password of at least 8 characters.")
    print(f'{args.name} = "{hash_password(password)}"')
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m explainers", description="Shapley-value explanations of image classifiers."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    models = commands.add_parser("models", help="list the models and whether each is available; add one's own")
    models.add_argument(
        "action",
        nargs="?",
        choices=("list", "add"),
        default="list",
        help="list (default), or add CARD.yaml: check a model card and its weights, then register it",
    )
    models.add_argument("card", nargs="?", help="for add: the model card (YAML)")
    commands.add_parser("methods", help="list the explanation methods and their parameters")

    def add_model_and_image(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--model", required=True, help="model name (see: python -m explainers models)")
        sub.add_argument("--image", required=True, help=f"{formats.listed(suffix=True)} file")
        sub.add_argument("--frame", type=int, default=1, help="the frame (slice) of a multi-frame DICOM file, from 1")
        sub.add_argument("--top-k", type=int, default=3, help="how many of the most probable classes")
        sub.add_argument(
            "--weights",
            choices=("pretrained", "random"),
            default="pretrained",
            help="'random' builds the architecture with random weights (an architecture check)",
        )

    predict = commands.add_parser("predict", help="classify an image")
    add_model_and_image(predict)

    explain = commands.add_parser("explain", help="explain an image's top-k classes")
    add_model_and_image(explain)
    from explainers.methods import all_methods

    explain.add_argument(
        "--method", default="partition", help=f"{', '.join(m.name for m in all_methods())} (default: partition)"
    )
    explain.add_argument(
        "--max-evals",
        type=int,
        default=None,
        help="the method's budget: model evaluations for perturbation methods, samples for "
        "gradient, background size for deep",
    )
    explain.add_argument("--seed", type=int, default=0)
    explain.add_argument(
        "--output",
        choices=("probability", "log-odds"),
        default=None,
        help="what the values add up to: each class's probability or its log-odds (default: the model's, see `models`)",
    )
    for flag, params in flagged_params().items():
        first = params[0]
        choices = tuple(dict.fromkeys(choice for param in params for choice in param.choices)) or None
        kind = {"int": int, "float": float}.get(first.kind, str)
        names = ", ".join(sorted({m.name for m in _methods_with(first.name)}))  # the methods that take it
        explain.add_argument(
            flag,
            type=kind,
            default=None,
            choices=choices,
            help=f"{first.help} ({names}; the same as --param {first.name}=VALUE)".replace("%", "%%"),
        )
    explain.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a method parameter, e.g. --param blur_kernel=64 (repeatable)",
    )
    explain.add_argument(
        "--contrast",
        metavar="CLASS",
        default=None,
        help="also the map of log p(verdict) − log p(CLASS), a class name or number: why the verdict rather "
        "than CLASS (superpixel methods, from their evaluations: no model call)",
    )
    explain.add_argument("--out", default=None, help="write the explanation to this .npz file")
    explain.add_argument("--quiet", action="store_true", help="no progress bar")
    explain.add_argument(
        "--no-cache",
        action="store_true",
        help="compute even if cached, and do not store (cache: $EXPLAINERS_CACHE_DIR)",
    )

    add_precompute_parser(commands)
    add_report_parser(commands)

    cache = commands.add_parser("cache", help="the explanation cache shared with the dashboard")
    cache.add_argument(
        "action",
        choices=("stats", "list", "delete", "clear"),
        help="stats; list (one JSON line per entry); delete KEY …; clear (everything)",
    )
    cache.add_argument("keys", nargs="*", metavar="KEY", help="for delete: the entries' keys, from `cache list`")

    add_study_parser(commands)
    add_scans_parser(commands)

    users = commands.add_parser("users", help="sign-in: hash a password for .streamlit/secrets.toml")
    users.add_argument("action", choices=("hash",))
    users.add_argument("name", help="the user name to sign in with")
    return parser


def _methods_with(name: str) -> list[Any]:
    from explainers.methods import all_methods

    return [method for method in all_methods() if any(param.name == name for param in method.params)]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from explainers.contrast import ContrastError
    from explainers.explanation import ExplanationFileError
    from explainers.images import ImageError
    from explainers.methods import ParameterError
    from models import ModelUnavailableError, UnknownModelError

    handlers = {
        "models": cmd_models,
        "methods": cmd_methods,
        "predict": cmd_predict,
        "explain": cmd_explain,
        "precompute": cmd_precompute,
        "report": cmd_report,
        "cache": cmd_cache,
        "study": cmd_study,
        "users": cmd_users,
        "scans": cmd_scans,
    }
    try:
        return handlers[args.command](args)
    except (
        UsageError,
        ImageError,
        ParameterError,
        UnknownModelError,
        ModelUnavailableError,
        ExplanationFileError,
        ContrastError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:  # e.g. --out into a folder that does not exist
        print(f"error: {error.strerror or error}: {error.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_USAGE
