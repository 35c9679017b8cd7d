"""Which map to believe: each method's model-parameter randomisation check (Adebayo et al. 2018) on a model's
labelled samples.

For each sample the method explains the model's verdict; then the same class on copies of the model whose
weights are re-initialised cascading from the output (the top layer, the top quarter, half, all of them:
models.randomise) and, independently, one middle layer alone. The rank correlation of each map with the
original (explainers.sanity, signed) should fall: a method whose map keeps ρ > 0.5 once the top layer is noise explains
the image, not the model, and fails the check for that model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from explainers.images import InputImage
from explainers.request import explain
from explainers.sanity import FAILS_ABOVE, map_similarity, survives
from models import Classifier
from models.randomise import cascade, randomised, weighted_layers


@dataclass(frozen=True)
class Sanity:
    """One method on one model: the mean ρ over the samples at each stage of the cascade, and for one layer
    alone; ``passes`` when the mean ρ after the top layer is at most FAILS_ABOVE in size."""

    model: str
    method: str
    samples: int
    cascade: list[tuple[str, float]]  # (stage, mean ρ)
    one_layer: tuple[str, float]  # (the layer, mean ρ)
    seconds: float
    per_sample: list[list[float]] = field(default_factory=list)

    @property
    def after_top(self) -> float:
        return self.cascade[0][1]

    @property
    def passes(self) -> bool:
        return not survives(self.after_top)

    def sentence(self) -> str:
        verdict = "passes" if self.passes else "fails"
        return (
            f"{verdict} the randomisation check: with the top layer's weights replaced by noise its map keeps a "
            f"rank correlation of {self.after_top:.2f} with the real one (a map that explains the model should lose "
            f"it; above {FAILS_ABOVE} in size fails)"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def map_of(explanation: Any, class_id: int) -> np.ndarray:
    """The explanation's map of ``class_id`` (a superpixel method explains the top classes of the model it ran on,
    and keeps every class's values)."""
    if class_id in explanation.classes:
        return explanation.values[int(np.flatnonzero(explanation.classes == class_id)[0])]
    return explanation.for_classes(np.array([class_id]), ("",)).values[0]


def sanity_check(
    classifier: Classifier,
    images: list[InputImage],
    method: str,
    budget: int | None = None,
    params: dict[str, Any] | None = None,
    seed: int = 0,
) -> Sanity:
    """The randomisation check of ``method`` on ``classifier`` over ``images`` (each explained 2 + the cascade's
    stages times, at ``budget``)."""
    import time

    started = time.perf_counter()
    stages = cascade(classifier)
    layers = weighted_layers(classifier.module)
    middle = layers[len(layers) // 2]
    copies = [randomised(classifier, names, seed) for _, names in stages] + [randomised(classifier, [middle], seed)]
    rows = []
    for image in images:
        original = explain(classifier, image, method, top_k=1, max_evals=budget, seed=seed, params=params)
        verdict = [int(original.classes[0])]
        again = [
            explain(copy, image, method, max_evals=budget, seed=seed, params=params, classes=verdict) for copy in copies
        ]
        rows.append([map_similarity(original.values[0], map_of(e, verdict[0])) for e in again])
    means = np.mean(np.array(rows), axis=0)
    return Sanity(
        model=classifier.name,
        method=method,
        samples=len(images),
        cascade=[(label, round(float(rho), 3)) for (label, _), rho in zip(stages, means[:-1], strict=True)],
        one_layer=(middle, round(float(means[-1]), 3)),
        seconds=round(time.perf_counter() - started, 1),
        per_sample=[[round(float(v), 3) for v in row] for row in rows],
    )
