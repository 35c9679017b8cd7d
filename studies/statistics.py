"""A study's results: per-condition means with 95% t-intervals over participant means, forward-simulation
accuracy with Wilson intervals, and time per trial (:func:`summarise`; viz.study_plots draws them)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from studies.schema import NO_EXPLANATION, Study
from studies.store import StudyStore, as_number


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float | None, float | None]:
    """The t-interval of the mean; (None, None) with fewer than two values."""
    if len(values) < 2:
        return None, None
    from scipy import stats

    mean = statistics.fmean(values)
    half = float(stats.t.ppf((1 + confidence) / 2, len(values) - 1)) * statistics.stdev(values) / math.sqrt(len(values))
    return mean - half, mean + half


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Wilson's score interval of a proportion; (None, None) without trials."""
    if trials == 0:
        return None, None
    from statistics import NormalDist

    z = NormalDist().inv_cdf((1 + confidence) / 2)
    share = successes / trials
    denominator = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _condition_order(study: Study, seen: Sequence[str]) -> list[str]:
    order = list(study.conditions)
    order += [condition for condition in dict.fromkeys(seen) if condition not in order]
    return order


def _per_participant_means(
    rows: Sequence[Mapping[str, Any]], value: Callable[[Mapping[str, Any]], float | None]
) -> tuple[list[float], int]:
    """One mean per participant (their answers are not independent of each other) and the answer count."""
    by_participant: dict[str, list[float]] = {}
    for row in rows:
        number = value(row)
        if number is not None:
            by_participant.setdefault(row["participant"], []).append(number)
    return [statistics.fmean(values) for values in by_participant.values()], sum(map(len, by_participant.values()))


def summarise(study: Study, store: StudyStore) -> dict[str, Any]:
    """The study's results as plain data (lists of dicts, ready for tables and plotly):

    - ``participants``: started, finished, per-condition counts (between subjects) and one row per
      participant (number, trials done of total, finished);
    - ``questions``: per numeric question and condition: answers, participants, mean and 95% t-interval;
    - ``accuracy``: per forward-simulation question and condition: answers, correct, accuracy and 95% Wilson
      interval;
    - ``time``: per condition: trials, mean and median seconds and the 95% t-interval of the mean.

    Means and t-intervals are over participant means (one participant's answers are not independent);
    accuracy's interval is over answers.
    """
    participants = store.participants(study.id)
    rows = store.answer_rows(study.id)
    conditions = _condition_order(study, [row["condition"] for row in rows])
    completion = []
    for participant in participants:
        progress = store.progress(participant.id)
        completion.append(
            {
                "participant": participant.id,
                "number": participant.number,
                "done": progress.done,
                "total": progress.total,
                "finished": progress.finished,
            }
        )
    by_condition: dict[str, int] = {}
    if study.randomisation.design == "between":  # each participant's one condition: that of any unpinned trial
        free = {trial.id for trial in study.trials if trial.method is None}
        for participant in participants:
            condition = next((item.condition for item in participant.plan if item.trial_id in free), None)
            if condition is not None:
                by_condition[condition] = by_condition.get(condition, 0) + 1

    questions = []
    accuracy = []
    for question in study.questions:
        for condition in conditions:
            subset = [row for row in rows if row["question"] == question.id and row["condition"] == condition]
            if question.numeric:
                if not subset and question.only_with_explanation and condition == NO_EXPLANATION:
                    continue
                means, count = _per_participant_means(subset, lambda row: as_number(row["value"]))
                low, high = t_interval(means)
                questions.append(
                    {
                        "question": question.id,
                        "prompt": question.prompt,
                        "kind": question.kind,
                        "condition": condition,
                        "answers": count,
                        "participants": len(means),
                        "mean": statistics.fmean(means) if means else None,
                        "ci_low": low,
                        "ci_high": high,
                    }
                )
            elif question.kind == "forward_simulation":
                correct = sum(1 for row in subset if row["correct"])
                low, high = wilson_interval(correct, len(subset))
                accuracy.append(
                    {
                        "question": question.id,
                        "condition": condition,
                        "answers": len(subset),
                        "correct": correct,
                        "accuracy": correct / len(subset) if subset else None,
                        "ci_low": low,
                        "ci_high": high,
                    }
                )

    # One timing per answered trial: the rows of a trial share its seconds.
    trial_seconds: dict[tuple[str, int], tuple[str, float]] = {}
    for row in rows:
        if row["seconds"] is not None:
            trial_seconds[(row["participant"], row["trial_position"])] = (row["condition"], row["seconds"])
    timing = []
    for condition in conditions:
        per_trial: list[dict[str, Any]] = [
            {"participant": key[0], "seconds": seconds} for key, (c, seconds) in trial_seconds.items() if c == condition
        ]
        means, count = _per_participant_means(per_trial, lambda row: row["seconds"])
        low, high = t_interval(means)
        seconds = [row["seconds"] for row in per_trial]
        timing.append(
            {
                "condition": condition,
                "trials": count,
                "participants": len(means),
                "mean": statistics.fmean(means) if means else None,
                "median": statistics.median(seconds) if seconds else None,
                "ci_low": low,
                "ci_high": high,
            }
        )
    return {
        "study": study.id,
        "title": study.title,
        "conditions": conditions,
        "participants": {
            "started": len(participants),
            "finished": sum(p.finished for p in participants),
            "by_condition": by_condition,
            "rows": completion,
        },
        "questions": questions,
        "accuracy": accuracy,
        "time": timing,
    }
