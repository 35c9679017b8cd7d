"""What the model says of a study, fixed before it opens (:class:`StudyFacts`): each trial's prediction, the
class shown, the options and the cache key of every condition's explanation. Precompute stores them
(studies.precompute); the design (studies.design) builds each participant's plan from them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from studies.schema import Study


@dataclass(frozen=True)
class TrialFacts:
    """The model's verdict on a trial's image and where each condition's explanation is cached."""

    trial_id: str
    model: str
    weights_digest: str
    image_digest: str
    prediction_id: int
    prediction: str
    probability: float
    class_shown_id: int
    class_shown: str
    reveal_class: bool  # the page may name the class shown; not when it is the prediction (the answer)
    options: tuple[str, ...]  # forward simulation's answers
    shuffle_options: bool  # top-k options are shuffled per participant so their order does not give rank away
    keys: Mapping[str, str]  # condition → cache key of its explanation


@dataclass(frozen=True)
class StudyFacts:
    """Every trial's facts, for one version of the study (its digest): an edited study needs new ones."""

    study_id: str
    study_digest: str
    trials: Mapping[str, TrialFacts]

    def to_json(self) -> dict[str, Any]:
        return {
            "study_id": self.study_id,
            "study_digest": self.study_digest,
            "trials": {
                trial_id: {**facts.__dict__, "options": list(facts.options), "keys": dict(facts.keys)}
                for trial_id, facts in self.trials.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StudyFacts:
        trials = {
            trial_id: TrialFacts(**{**values, "options": tuple(values["options"])})
            for trial_id, values in data["trials"].items()
        }
        return cls(data["study_id"], data["study_digest"], trials)


def facts_key(study: Study) -> str:
    """Where the facts are stored in the cache (beside the explanations, so that they travel together)."""
    return f"study-facts:{study.id}:{study.digest}"


def load_facts(study: Study, cache: Any) -> StudyFacts | None:
    """The facts that :func:`studies.precompute.precompute` stored for this version of the study, or None
    (never computes)."""
    stored = cache.get_json(facts_key(study))
    return None if stored is None else StudyFacts.from_json(stored)
