"""Precomputing a study before it opens: the model's verdict on every trial (studies.facts), every
explanation a participant may see filled into the cache, and the reads the pages make without ever
evaluating a model (:func:`is_ready`, :func:`study_explanation`, :func:`trial_image`).

The models, the methods and the job engine are imported inside the functions that use them: they take
seconds to import, and ``import studies`` must stay quick for the pages and the command line's help.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explainers.progress import ProgressCallback
from studies.checks import resolve_class
from studies.design import PlannedTrial
from studies.facts import StudyFacts, TrialFacts, facts_key, load_facts
from studies.reader import clause
from studies.schema import (
    DEFAULT_OPTION_COUNT,
    MAX_LISTED_CLASSES,
    NO_EXPLANATION,
    OTHER_OPTION,
    Study,
    StudyError,
    Trial,
)

# precompute's progress: (explanations done, explanations in all, what comes next); may return a callback
# (an explainers.progress.Progress, say) that counts the next explanation's model evaluations.
StudyProgress = Callable[[int, int, str], "ProgressCallback | None"]


# -- what the model says: facts fixed before the study opens ------------------------------------------------------


def _options(trial: Trial, class_names: Sequence[str], probs: Any) -> tuple[tuple[str, ...], bool]:
    from explainers.explanation import top_classes

    if isinstance(trial.choices, tuple):
        ids = [resolve_class(name, class_names) for name in trial.choices]
        if None in ids:  # checks.check_registries refuses such a study before anything is precomputed
            raise ValueError(f"The choices {trial.choices} are not all classes of the model.")
        names = tuple(class_names[i] for i in ids if i is not None)
        return (names + (OTHER_OPTION,) if len(names) < len(class_names) else names), False
    if trial.choices is None and len(class_names) <= MAX_LISTED_CLASSES:
        return tuple(class_names), False
    count = trial.choices or DEFAULT_OPTION_COUNT
    return tuple(class_names[int(c)] for c in top_classes(probs, count)), True


def _unexplainable(study: Study, index: int, condition: str, error: Exception) -> StudyError:
    return StudyError([study.problem(f"trials[{index}]", f"cannot be explained with {condition}: {clause(error)}")])


def _request(study: Study, index: int, condition: str, classifier: Any, image: Any, shown: int) -> Any:
    """The request for one trial's explanation in one condition; StudyError naming the trial if it is wrong."""
    from explainers.methods import ParameterError
    from explainers.request import build_request

    trial = study.trials[index]
    try:
        return build_request(
            classifier,
            image,
            condition,
            budget=study.budget_for(trial, condition),
            seed=study.explanation.seed,
            params=study.params_for(trial, condition),
            top_k=1,
            classes=[shown],
        )
    except ParameterError as error:
        raise _unexplainable(study, index, condition, error) from None


def compute_facts(study: Study, load: Callable[[str], Any] | None = None) -> StudyFacts:
    """Predicts every trial's image (one forward pass each) and derives the class shown, the options and
    each explanation's cache key. ``load`` maps a model name to a classifier (default: load_classifier)."""
    from explainers.images import load_image
    from models import load_classifier

    load = load or load_classifier
    classifiers: dict[str, Any] = {}
    trials: dict[str, TrialFacts] = {}
    for index, trial in enumerate(study.trials):
        if trial.model not in classifiers:
            classifiers[trial.model] = load(trial.model)
        classifier = classifiers[trial.model]
        image = load_image(trial.image_path)
        probs = classifier.predict(classifier.prepare(image.pixels))[0]
        prediction = int(probs.argmax())
        names = classifier.class_names
        shown = prediction if trial.class_shown == "top" else resolve_class(trial.class_shown, names)
        if shown is None:
            raise StudyError(
                [study.problem(f"trials[{index}].class", f'is "{trial.class_shown}", not a class of {trial.model}')]
            )
        options, shuffle = _options(trial, names, probs)
        keys = {}
        for condition in study.conditions_for(trial):
            if condition != NO_EXPLANATION:
                keys[condition] = _request(study, index, condition, classifier, image, shown).key
        trials[trial.id] = TrialFacts(
            trial_id=trial.id,
            model=trial.model,
            weights_digest=classifier.weights_digest,
            image_digest=image.digest,
            prediction_id=prediction,
            prediction=names[prediction],
            probability=float(probs[prediction]),
            class_shown_id=int(shown),
            class_shown=names[shown],
            reveal_class=trial.class_shown != "top",
            options=options,
            shuffle_options=shuffle,
            keys=keys,
        )
    return StudyFacts(study.id, study.digest, trials)


# -- precomputing the explanations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrecomputeReport:
    facts: StudyFacts
    computed: int  # explanations computed now
    cached: int  # explanations already in the cache
    seconds: float


def precompute(
    study: Study,
    cache: Any,
    *,
    progress: StudyProgress | None = None,
    load: Callable[[str], Any] | None = None,
    engine: Any | None = None,
) -> PrecomputeReport:
    """Fills ``cache`` with every explanation the study can show, skipping those already there (so a run
    that was stopped resumes where it stopped), and stores the study's facts (see :func:`load_facts`).

    The explanations are jobs on ``engine`` (default: a job engine of its own, embedded or at
    $EXPLAINERS_SCHEDULER), all submitted at once so every worker is busy; ``engine`` must store into ``cache``.
    ``progress(done, total, label)`` is called before each explanation is awaited and once at the end; it may
    return a callback that is fed that explanation's model evaluations.
    """
    from explainers.images import load_image
    from jobs import JobFailed
    from jobs.engine import batch_engine
    from models import load_classifier

    started = time.perf_counter()
    load = load or load_classifier
    classifiers: dict[str, Any] = {}

    def classifier_for(model: str) -> Any:
        if model not in classifiers:
            classifiers[model] = load(model)
        return classifiers[model]

    facts = compute_facts(study, classifier_for)
    cache.put_json(facts_key(study), facts.to_json())  # before the explanations, so is_ready can count them
    runner = engine if engine is not None else batch_engine(cache=cache)
    planned = []
    for index, trial in enumerate(study.trials):
        for condition in study.conditions_for(trial):
            if condition == NO_EXPLANATION:
                continue
            shown = facts.trials[trial.id]
            image = load_image(trial.image_path)
            request = _request(study, index, condition, classifier_for(trial.model), image, shown.class_shown_id)
            label = f"{condition} on {trial.id} ({trial.model}, {Path(trial.image).name}, class {shown.class_shown})"
            job = None if cache.get(request) is not None else runner.submit(request, image, batch=True)
            planned.append((index, condition, label, job))
    computed = cached = 0
    try:
        for done, (index, condition, label, job) in enumerate(planned):
            evaluations = progress(done, len(planned), label) if progress is not None else None
            if job is None:
                cached += 1
                continue
            while not job.wait(0.2):
                state = job.progress.state
                if evaluations is not None and job.reported:
                    evaluations(state.done, state.total)
            try:
                job.result()
            except JobFailed as error:
                raise _unexplainable(study, index, condition, error) from None
            computed += 1
    finally:
        for *_, job in planned:
            if job is not None and not job.done:
                job.cancel()
        if engine is None:  # our own, not the caller's
            runner.close()
    if progress is not None:
        progress(len(planned), len(planned), "done")
    return PrecomputeReport(facts, computed, cached, time.perf_counter() - started)


# -- what the pages read (never computing) ----------------------------------------------------------------------


@dataclass(frozen=True)
class Readiness:
    ready: bool
    total: int  # explanations the study needs
    missing: tuple[tuple[str, str], ...]  # (trial id, condition) not in the cache
    message: str  # one sentence for the researcher


def is_ready(study: Study, cache: Any) -> Readiness:
    """Whether every explanation of the study is in the cache (never evaluates a model)."""
    facts = load_facts(study, cache)
    total = sum(1 for trial in study.trials for c in study.conditions_for(trial) if c != NO_EXPLANATION)
    command = f"python -m explainers study precompute {study.path or study.id}"
    if facts is None:
        return Readiness(
            False,
            total,
            tuple((t.id, c) for t in study.trials for c in study.conditions_for(t) if c != NO_EXPLANATION),
            f"The study {study.id} has not been precomputed (or was edited since); run: {command}",
        )
    missing = tuple(
        (trial_id, condition)
        for trial_id, trial_facts in facts.trials.items()
        for condition, key in trial_facts.keys.items()
        if key not in cache
    )
    if missing:
        return Readiness(
            False,
            total,
            missing,
            f"{len(missing)} of {total} explanations of the study {study.id} are not in the cache; run: {command}",
        )
    return Readiness(True, total, (), f"All {total} explanations of the study {study.id} are ready.")


def study_explanation(cache: Any, planned: PlannedTrial) -> Any | None:
    """The trial's precomputed explanation narrowed to the class shown; None in the control or when the
    cache lost it (see :func:`is_ready`)."""
    if planned.explanation_key is None:
        return None
    explanation = cache.get_by_key(planned.explanation_key)
    if explanation is None:
        return None
    return explanation.for_classes([planned.class_shown_id], (planned.class_shown,))


def trial_image(study: Study, planned: PlannedTrial) -> Any:
    """The trial's image as the model sees it (at its input size), for drawing."""
    from explainers.images import load_image
    from models import get_spec, resize_for

    return resize_for(get_spec(planned.model), load_image(study.trial(planned.trial_id).image_path).pixels)
