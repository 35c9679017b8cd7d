"""Method parameters as data (:class:`Param`): the pages' controls, the command line's flags and the provenance
are built from them; and the parameters several methods share (the superpixel settings, budget "auto")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from explainers.superpixels import FILLS

Placement = Literal["main", "settings"]


class ParameterError(ValueError):
    """A method parameter out of range or of the wrong kind; the message is one sentence."""


@dataclass(frozen=True)
class Param:
    """One parameter of a method. The page controls, the command-line flags and the provenance are all built
    from it: ``placement`` says where the Explain page shows it ("main": beside the budget, shared by every
    method that has it; "settings": in the method's settings), ``flag`` gives it a command-line flag of its
    own (``--segments``) beside the generic ``--param NAME=VALUE``."""

    name: str
    kind: Literal["int", "float", "choice", "bool"]
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()
    placement: Placement = "settings"
    label: str = ""  # the control's label; the name when empty
    flag: str | None = None
    # What the pages start with where it differs from ``default`` (what the command line and the API use): budget
    # "auto" on the pages, so a page stops when its map is good enough, while a script spends what it asks for.
    page_default: Any = None

    @property
    def shown_default(self) -> Any:
        """The value a page's control starts at."""
        return self.default if self.page_default is None else self.page_default

    @property
    def title(self) -> str:
        return self.label or self.name

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
            raise ParameterError(
                f"{self.name} must be {'an integer' if self.kind == 'int' else 'a number'}, not {value!r}."
            ) from None
        if self.kind == "choice" and coerced not in self.choices:
            raise ParameterError(f"{self.name} must be one of {', '.join(self.choices)}, not {coerced!r}.")
        if self.kind in ("int", "float"):
            if (self.low is not None and coerced < self.low) or (self.high is not None and coerced > self.high):
                raise ParameterError(f"{self.name} must be between {self.low:g} and {self.high:g}, not {coerced}.")
        return coerced


# Budget "auto" for the sampling methods that can watch their own error (kernel, permutation).
TARGET_PARAM = Param(
    "target_error",
    "float",
    0.0,
    "Budget auto: stop as soon as the top class's relative "
    "standard error (‖standard errors‖ ÷ ‖values‖) is at most this, e.g. 0.05 for 5 %; the "
    "budget is then the most it may spend. 0: spend the whole budget.",
    low=0.0,
    high=1.0,
    step=0.01,
    placement="main",
    label="Budget auto: target error",
    flag="--target-error",
    # The pages stop once the top class's map is within 25 %: at the default 500 evaluations the bundled photos'
    # maps reach 0.15 to 0.6, so the easy ones stop early and the hard ones spend the budget as before
    # (bench/auto_budget.md measures what it saves).
    page_default=0.25,
)

SEGMENT_PARAMS = ("segments", "compactness", "sigma", "fill", "fill_constant")


def superpixel_params(default_segments: int = 50, max_segments: int = 200) -> tuple[Param, ...]:
    """The parameters every superpixel method shares (the segment slider acts on all of them)."""
    return (
        Param(
            "segments",
            "int",
            default_segments,
            "How many SLIC superpixels to aim for (SLIC may give a few more or fewer).",
            low=2,
            high=max_segments,
            step=1,
            placement="main",
            label="Superpixel segments",
            flag="--segments",
        ),
        Param(
            "compactness",
            "float",
            10.0,
            "SLIC's balance of colour against space: higher gives squarer superpixels.",
            low=0.01,
            high=100.0,
            step=0.5,
        ),
        Param("sigma", "float", 1.0, "Gaussian smoothing before SLIC, in pixels.", low=0.0, high=10.0, step=0.5),
        Param(
            "fill",
            "choice",
            "auto",
            "What a hidden superpixel shows: its mean colour, a blurred copy of the "
            "image, or a constant grey (auto: the model's default, e.g. mean colour for photos, black for "
            "MRIs and digits).",
            choices=FILLS,
        ),
        Param(
            "fill_constant", "float", 0.0, "Grey level (0–255) for the constant fill.", low=0.0, high=255.0, step=1.0
        ),
    )
