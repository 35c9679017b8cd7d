"""User studies: a study file, each participant's randomised plan, durable answers, and the results.

A researcher writes a study in YAML or JSON (see ``assets/studies/example_study.yaml``); :func:`load_study`
checks it and names the line and field of every mistake. :func:`precompute` fills the explanation cache for
every trial and condition before the study opens, so a participant never waits. :class:`StudyStore` keeps
participants and answers in SQLite (WAL, one transaction per submitted trial, ``synchronous=FULL``), so
nothing committed is lost when many participants answer at once or the server is killed. :func:`summarise`
turns the answers into per-condition means with confidence intervals; ``viz.study_plots`` draws them.

The flow of a participant page::

    study = load_study(path)
    facts = load_facts(study, cache)            # None until `python -m explainers study precompute`
    participant = store.create_participant(study, facts)        # after consent; or store.get_participant
    position = store.progress(participant.id).next_position     # None when finished
    planned = participant.plan[position]         # trial, blinded condition, options, cache key
    store.mark_shown(participant.id, position)   # starts the trial's clock (kept across reloads)
    explanation = study_explanation(cache, planned)             # None for the no-explanation control
    questions = questions_for(study, planned)                   # read-first studies: "read", then "rest"
    store.record_trial_answers(study, participant.id, position, {"forward": "7", "confidence": 5, ...})

The modules, by concern: schema (the dataclasses and errors), parsing, reader, sections and loading (the study
file), checks (against the registries), facts (what the model says of each trial), design (randomisation and
plans), precompute (the facts and the explanations into the cache), store and answers (participants and their
answers), statistics (the results) and access (the results password).
Studies import explainers and models; neither imports studies, and nothing here imports streamlit.
"""

from studies.access import (
    LOCKED_MESSAGE,
    PASSWORD_ENV,
    PASSWORD_SECRET,
    Access,
    check_password,
    configured_password,
    results_access,
)
from studies.checks import resolve_class
from studies.design import (
    Assignment,
    PlannedTrial,
    assignment,
    condition_label,
    participant_plan,
    questions_for,
    reads_first,
)
from studies.facts import StudyFacts, TrialFacts, facts_key, load_facts
from studies.loading import find_studies, load_study, parse_study
from studies.precompute import (
    PrecomputeReport,
    Readiness,
    StudyProgress,
    compute_facts,
    is_ready,
    precompute,
    study_explanation,
    trial_image,
)
from studies.schema import (
    DEFAULT_OPTION_COUNT,
    DEFAULT_QUESTIONS,
    DESIGNS,
    MAX_LISTED_CLASSES,
    MAX_TEXT_ANSWER,
    NO_EXPLANATION,
    NUMERIC_KINDS,
    ORDERS,
    OTHER_OPTION,
    QUESTION_KINDS,
    AnswerError,
    ExplanationSettings,
    Problem,
    Question,
    Randomisation,
    Study,
    StudyError,
    Trial,
)
from studies.statistics import summarise, t_interval, wilson_interval
from studies.store import (
    EXPORT_COLUMNS,
    ID_LENGTH,
    STORE_SCHEMA_VERSION,
    Participant,
    RecordedTrial,
    StudyStore,
    TrialProgress,
    answers_csv,
    clean_answers,
    is_correct,
    new_participant_id,
    normalise_id,
)

__all__ = [
    "DEFAULT_OPTION_COUNT",
    "DEFAULT_QUESTIONS",
    "DESIGNS",
    "EXPORT_COLUMNS",
    "ID_LENGTH",
    "LOCKED_MESSAGE",
    "MAX_LISTED_CLASSES",
    "MAX_TEXT_ANSWER",
    "NO_EXPLANATION",
    "NUMERIC_KINDS",
    "ORDERS",
    "OTHER_OPTION",
    "PASSWORD_ENV",
    "PASSWORD_SECRET",
    "QUESTION_KINDS",
    "STORE_SCHEMA_VERSION",
    "Access",
    "AnswerError",
    "Assignment",
    "ExplanationSettings",
    "Participant",
    "PlannedTrial",
    "PrecomputeReport",
    "Problem",
    "Question",
    "Randomisation",
    "Readiness",
    "RecordedTrial",
    "Study",
    "StudyError",
    "StudyFacts",
    "StudyProgress",
    "StudyStore",
    "Trial",
    "TrialFacts",
    "TrialProgress",
    "answers_csv",
    "assignment",
    "check_password",
    "clean_answers",
    "compute_facts",
    "condition_label",
    "configured_password",
    "facts_key",
    "find_studies",
    "is_correct",
    "is_ready",
    "load_facts",
    "load_study",
    "new_participant_id",
    "normalise_id",
    "parse_study",
    "participant_plan",
    "precompute",
    "questions_for",
    "reads_first",
    "resolve_class",
    "results_access",
    "study_explanation",
    "summarise",
    "t_interval",
    "trial_image",
    "wilson_interval",
]
