"""Checking a study against the registries: its models, methods, method parameters, budgets, images and
class names exist and fit (this imports the models, so it takes a few seconds)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from storage.folders import ROOT
from studies.reader import Reader, clause, join, suggest
from studies.schema import NO_EXPLANATION, Study, Trial


def check_registries(study: Study, reader: Reader) -> None:
    """Adds to ``reader`` a problem for each model, method, parameter, budget, image or class name that the
    registries do not know or that does not fit."""
    # Here, not at the top: the models take seconds to import, and exporting answers reads a study unchecked.
    from explainers.images import ImageError, load_image
    from explainers.methods import ParameterError, all_methods, get_method
    from models import UnknownModelError, all_specs, get_spec

    methods = [method.name for method in all_methods()]
    choices = methods + [NO_EXPLANATION]
    for index, condition in enumerate(study.conditions):
        if condition != NO_EXPLANATION and condition not in methods:
            reader.problem(
                f"conditions[{index}]",
                f'is "{condition}", not a method; choose one of {", ".join(choices)}{suggest(condition, choices)}',
            )
    used: set[str] = {c for c in study.conditions if c in methods}

    def check_params(params: Mapping[str, Mapping[str, Any]], path: str) -> None:
        for method, values in params.items():
            if method not in methods:
                reader.problem(
                    join(path, method), f"is not a method; choose one of {', '.join(methods)}{suggest(method, methods)}"
                )
                continue
            for name, value in values.items():
                try:
                    get_method(method).param(name).coerce(value)
                except ParameterError as error:
                    reader.problem(join(join(path, method), name), f"is wrong: {clause(error)}")

    def check_budget(budget: Mapping[str, int], path: str, applies_to: set[str]) -> None:
        for method, amount in budget.items():
            targets = applies_to - set(budget) if method == "*" else {method}
            if method != "*" and method not in methods:
                reader.problem(
                    join(path, method),
                    f"is not a method; choose one of {', '.join(methods)} "
                    f'or "*" for every method{suggest(method, methods)}',
                )
                continue
            for target in sorted(targets):
                spec = get_method(target)
                if not spec.min_budget <= amount <= spec.max_budget:
                    where = path if method == "*" else join(path, method)
                    reader.problem(
                        where,
                        f"is {amount}, outside {target}'s range {spec.min_budget}–"
                        f"{spec.max_budget} {spec.budget_meaning}"
                        + (f"; give {target} its own budget" if method == "*" else ""),
                    )

    check_params(study.explanation.params, "explanation.params")
    for index, trial in enumerate(study.trials):
        path = f"trials[{index}]"
        if trial.method is not None:
            if trial.method != NO_EXPLANATION and trial.method not in methods:
                reader.problem(
                    join(path, "method"),
                    f'is "{trial.method}", not a method; choose one of '
                    f"{', '.join(choices)}{suggest(trial.method, choices)}",
                )
            elif trial.method != NO_EXPLANATION:
                used.add(trial.method)
        trial_methods = {m for m in study.conditions_for(trial) if m in methods}
        check_budget(trial.budget, join(path, "budget"), trial_methods)
        check_params(trial.params, join(path, "params"))
        try:
            spec = get_spec(trial.model)
        except UnknownModelError:
            models = [spec.name for spec in all_specs()]
            reader.problem(
                join(path, "model"),
                f'is "{trial.model}", not a model; choose one of {", ".join(models)}{suggest(trial.model, models)}',
            )
            spec = None
        if spec is not None:
            reason = spec.missing_reason()
            if reason is not None:
                reader.problem(join(path, "model"), f"{trial.model} is unavailable here: {reason}")
            _check_class(reader, trial, spec.class_names, path)
        if not trial.image_path.exists():
            reader.problem(
                join(path, "image"),
                f'is "{trial.image}", which does not exist (looked in '
                f"{study.path.parent if study.path else ROOT} and {ROOT})",
            )
        else:
            try:
                load_image(trial.image_path)
            except ImageError as error:
                reader.problem(join(path, "image"), f"cannot be used: {clause(error)}")
    check_budget(study.explanation.budget, "explanation.budget", used)


def _check_class(reader: Reader, trial: Trial, class_names: Sequence[str], path: str) -> None:
    count = len(class_names)
    if isinstance(trial.class_shown, int):
        if not 0 <= trial.class_shown < count:
            reader.problem(
                join(path, "class"), f"is {trial.class_shown}; class ids of {trial.model} run from 0 to {count - 1}"
            )
    elif trial.class_shown != "top" and resolve_class(trial.class_shown, class_names) is None:
        sample = ", ".join(class_names[:10]) + (", …" if count > 10 else "")
        reader.problem(
            join(path, "class"),
            f'is "{trial.class_shown}", not a class of {trial.model} ({sample}) '
            f'nor "top"{suggest(trial.class_shown, class_names)}',
        )
    if isinstance(trial.choices, int) and trial.choices > count:
        reader.problem(join(path, "choices"), f"is {trial.choices}, more than the {count} classes of {trial.model}")
    elif isinstance(trial.choices, tuple):
        for name in trial.choices:
            if resolve_class(name, class_names) is None:
                reader.problem(
                    join(path, "choices"), f'names "{name}", not a class of {trial.model}{suggest(name, class_names)}'
                )


def resolve_class(name: str | int, class_names: Sequence[str]) -> int | None:
    """A class id from an id, an exact name, or a name that matches one class ignoring case."""
    if isinstance(name, int):
        return name if 0 <= name < len(class_names) else None
    if name in class_names:
        return class_names.index(name)
    folded = [index for index, known in enumerate(class_names) if known.casefold() == name.casefold()]
    return folded[0] if len(folded) == 1 else None
