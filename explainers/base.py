"""What every explanation method shares: parameters declared as data, progress, and model-call counting."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol

import numpy as np

from explainers.explanation import Explanation

# done, total: counted in model evaluations (images through the network).
ProgressCallback = Callable[[int, int], None]


class ParameterError(ValueError):
    """A method parameter out of range or of the wrong kind; the message is one sentence."""


@dataclass(frozen=True)
class Param:
    """One parameter of a method; the UI and the command line build their controls from it."""

    name: str
    kind: Literal["int", "float", "choice", "bool"]
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()

    def coerce(self, value: Any) -> Any:
        """The value as this parameter's type, or ParameterError naming the parameter and its range."""
        try:
            if self.kind == "int":
                coerced: Any = int(value)
                if float(value) != coerced:
                    raise ValueError
            elif self.kind == "float":
                coerced = float(value)
            elif self.kind == "bool":
                coerced = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
            else:
                coerced = str(value)
        except (TypeError, ValueError):
            raise ParameterError(f"{self.name} must be {'an integer' if self.kind == 'int' else 'a number'}, "
                                 f"not {value!r}.") from None
        if self.kind == "choice" and coerced not in self.choices:
            raise ParameterError(f"{self.name} must be one of {', '.join(self.choices)}, not {coerced!r}.")
        if self.kind in ("int", "float"):
            if (self.low is not None and coerced < self.low) or (self.high is not None and coerced > self.high):
                raise ParameterError(f"{self.name} must be between {self.low:g} and {self.high:g}, not {coerced}.")
        return coerced


class ExplainFunction(Protocol):
    def __call__(self, classifier: Any, image: np.ndarray, *, top_k: int, max_evals: int, seed: int,
                 progress: ProgressCallback | None, **params: Any) -> Explanation: ...


@dataclass(frozen=True)
class Method:
    """An explanation method: one verb (``explain``) and its own parameters as data."""

    name: str
    title: str
    summary: str  # one line for the UI
    paper: str
    explain: ExplainFunction
    params: tuple[Param, ...] = ()
    uses_segments: bool = False
    # The meaning of the shared budget slider for this method.
    budget_meaning: str = "model evaluations"
    default_budget: int = 500
    min_budget: int = 10
    max_budget: int = 10_000
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Why this method cannot explain a given classifier, or None when it can.
    unsupported: Callable[[Any], str | None] = lambda classifier: None

    def param(self, name: str) -> Param:
        for param in self.params:
            if param.name == name:
                return param
        raise ParameterError(f"The method {self.name} has no parameter {name!r}; it has: "
                             f"{', '.join(p.name for p in self.params) or 'none'}.")

    def resolve(self, params: dict[str, Any]) -> dict[str, Any]:
        """Every parameter, defaults filled in and values checked."""
        resolved = {param.name: param.default for param in self.params}
        for name, value in params.items():
            resolved[name] = self.param(name).coerce(value)
        return resolved


class CountingModel:
    """Wraps ``classifier.predict``: counts evaluations and reports progress."""

    def __init__(self, classifier: Any, total: int, progress: ProgressCallback | None):
        self.classifier = classifier
        self.total = total
        self.progress = progress
        self.evaluations = 0

    def __call__(self, images: np.ndarray) -> np.ndarray:
        outputs = self.classifier.predict(images)
        self.evaluations += len(images)
        if self.progress is not None:
            self.progress(min(self.evaluations, self.total), self.total)
        return outputs
