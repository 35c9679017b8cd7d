"""``python -m explainers study check | precompute | export``: the user-study subcommand (see the package
``studies`` for the study file)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import studies
from cli.common import EXIT_USAGE, TerminalProgress, UsageError


def add_study_parser(commands: Any) -> None:
    """Adds ``study`` and its actions to the subparsers object of the main parser."""
    study = commands.add_parser("study", help="user studies: check a study file, precompute it, export answers")
    study_actions = study.add_subparsers(dest="action", required=True)
    check = study_actions.add_parser("check", help="validate a study file and say whether it is precomputed")
    check.add_argument("study_file", help="the study's .yaml or .json file")
    precompute = study_actions.add_parser(
        "precompute", help="compute every explanation of a study into the cache (resumable: cached ones are skipped)"
    )
    precompute.add_argument("study_file", help="the study's .yaml or .json file")
    precompute.add_argument("--quiet", action="store_true", help="no progress")
    export = study_actions.add_parser("export", help="write a study's answers as CSV, one row per answer")
    export.add_argument("study_file", help="the study's .yaml or .json file")
    export.add_argument("--out", default=None, help="the CSV file to write (default: stdout)")
    export.add_argument(
        "--db", default=None, help="the answers database (default: $EXPLAINERS_STUDY_DIR/studies.sqlite3)"
    )


def cmd_study(args: argparse.Namespace) -> int:
    """``study check | precompute | export``; a mistake in the study file is a UsageError."""
    from explainers.cache import ExplanationCache

    try:
        if args.action == "check":
            return _study_check(args)
        definition = studies.load_study(args.study_file, verify=args.action == "precompute")
        if args.action == "precompute":
            progress = None if args.quiet else TerminalProgress().step
            report = studies.precompute(definition, ExplanationCache(), progress=progress)
            print(
                json.dumps(
                    {
                        "study": definition.id,
                        "explanations": report.computed + report.cached,
                        "computed": report.computed,
                        "cached": report.cached,
                        "seconds": round(report.seconds, 2),
                    }
                )
            )
            return 0
        store = studies.StudyStore(args.db)
        if args.out in (None, "-"):
            store.export_csv(definition.id, sys.stdout)
        else:
            rows = store.export_csv(definition.id, args.out)
            print(
                json.dumps(
                    {
                        "study": definition.id,
                        "answers": rows,
                        "participants": len(store.participants(definition.id)),
                        "out": args.out,
                    }
                )
            )
        return 0
    except studies.StudyError as error:
        raise UsageError(str(error)) from None


def _study_check(args: argparse.Namespace) -> int:
    """Every problem of the file, one per line; else a summary and whether the cache is ready."""
    from explainers.cache import ExplanationCache

    try:
        definition = studies.load_study(args.study_file)
    except studies.StudyError as error:
        for problem in error.problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    readiness = studies.is_ready(definition, ExplanationCache())
    print(
        f"{definition.title} ({definition.id}): {len(definition.trials)} trials, conditions "
        f"{', '.join(definition.conditions)}, {definition.randomisation.design} subjects, trial order "
        f"{definition.randomisation.order}, seed {definition.randomisation.seed}"
    )
    for trial in definition.trials:
        print(
            f"  {trial.id}: {trial.model}, {trial.image}, class {trial.class_shown}"
            + (f", always {trial.method}" if trial.method else "")
        )
    print("  questions: " + ", ".join(f"{q.id} ({q.kind})" for q in definition.questions))
    print(readiness.message)
    print(
        json.dumps(
            {
                "study": definition.id,
                "trials": len(definition.trials),
                "conditions": list(definition.conditions),
                "ready": readiness.ready,
                "missing": len(readiness.missing),
            }
        )
    )
    return 0
