"""What `python -m bench.trust` measured for the built-in models, shipped beside their cards
(``models/builtin/trust.json``): per method the randomisation check and the faithfulness on equal terms, and
the method recommended for the model with its reasons. Read once; a model that was not measured has none."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

TRUST_FILE = Path(__file__).resolve().parent / "builtin" / "trust.json"


@dataclass(frozen=True)
class MethodTrust:
    method: str
    rho_top: float  # the map's rank correlation after the top layer is randomised (explainers.sanity)
    passes: bool  # the randomisation check
    gap: float  # faithfulness on equal terms: least- minus most-relevant-first area
    seconds: float

    def sentence(self) -> str:
        verdict = "passes" if self.passes else "fails"
        return f"{verdict} the randomisation check (ρ {self.rho_top:.2f} after the top layer; beyond ±0.5 fails)"


@dataclass(frozen=True)
class ModelTrust:
    model: str
    measured: str  # the date and the samples
    methods: dict[str, MethodTrust]
    recommended: str
    why: str


@lru_cache(maxsize=1)
def _all() -> dict[str, ModelTrust]:
    if not TRUST_FILE.is_file():
        return {}
    data = json.loads(TRUST_FILE.read_text())
    return {
        model: ModelTrust(
            model=model,
            measured=entry["measured"],
            methods={name: MethodTrust(method=name, **row) for name, row in entry["methods"].items()},
            recommended=entry["recommended"],
            why=entry["why"],
        )
        for model, entry in data.items()
    }


def trust_of(model: str) -> ModelTrust | None:
    """The measurements of a built-in model, or None (not measured: a user's model, or none shipped)."""
    return _all().get(model)
