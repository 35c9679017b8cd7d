"""The catalogue: the models the registry offers, loaded from their cards on the first lookup (importing
:mod:`models` registers nothing and reads no folder): the built-in cards in file-name order, then the user's
(models.installed). Adding a torchvision classifier is one more card in models/builtin/."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from models import installed
from models.cards import read_card
from models.registry import ModelSpec, register, registered, restore
from models.zoo import spec_from_card

BUILTIN_CARDS = Path(__file__).resolve().parent / "builtin"

_LOCK = threading.RLock()  # Streamlit sessions are threads: the first lookups may come at once
_STATE = {"cards": "unread"}  # then "loading" (by the thread holding _LOCK), then "loaded"


def load_builtin() -> list[str]:
    """Registers the built-in models from their cards, in file-name order (the default model first); returns
    their names. A card that cannot be read here is our own error, raised as it is."""
    names = []
    for path in sorted(BUILTIN_CARDS.glob("*.yaml")):
        names.append(register(spec_from_card(read_card(path, reserved=set(registered()), builtin=True))).name)
    return names


def ensure_loaded() -> None:
    """Registers the built-in models, then the user's (models.installed), the first time it is called in this
    process; later calls return at once, as does a call made while loading from the loading thread itself."""
    if _STATE["cards"] == "loaded":
        return
    with _LOCK:
        if _STATE["cards"] != "unread":  # loaded meanwhile, or this thread is loading (the lock is reentrant)
            return
        _STATE["cards"] = "loading"
        before = registered()
        try:
            load_builtin()
            installed.register_installed()
        except BaseException:
            restore(before)
            _STATE["cards"] = "unread"
            raise
        _STATE["cards"] = "loaded"


def all_specs() -> list[ModelSpec]:
    """Every registered model, in registration order (the default models first)."""
    ensure_loaded()
    return list(registered().values())


class UnknownModelError(KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:
        return str(self.args[0])


def get_spec(name: str) -> ModelSpec:
    ensure_loaded()
    models = registered()
    try:
        return models[name]
    except KeyError:
        known = ", ".join(models)
        raise UnknownModelError(f"Unknown model {name!r}; choose one of: {known}.") from None


def register_installed() -> list[str]:
    """The user's models added since this process loaded the catalogue (a worker asks before each job)."""
    ensure_loaded()
    return installed.register_installed()


def install(card_path: Path | str) -> dict[str, Any]:
    """``models add``: checks a card and its model, copies them into the models folder and registers the model
    (models.installed.install); its name may be none already offered."""
    ensure_loaded()
    return installed.install(card_path)
