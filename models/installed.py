"""Users' own models in the registry (issue 15): ``models add`` checks a card (models.cards), judges its weights
by their bytes (models.weights_files), loads and runs them in a child process (models.own.validate), then copies
the card and its files into its own folder under ``$EXPLAINERS_MODELS_DIR`` with a stamp of the weights' digest.
At the registry's first lookup (models.registry.ensure_loaded) every such folder is registered beside the built-in
models: available while its weights still match
the stamp, otherwise unavailable with the reason and the fix. A card that cannot be read is listed in
:data:`PROBLEMS` with its sentence.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

from models.cards import CardError, ModelCard, read_card
from models.networks import weights_file_of
from models.own import validate
from models.registry import register, registered
from models.weights_files import file_digest
from models.zoo import spec_from_card
from storage import folder

CARD_NAME, STAMP_NAME = "card.yaml", "validated.json"
PROBLEMS: list[tuple[str, str]] = []  # (folder name, one sentence) of cards that could not be registered
_SEEN: set[str] = set()  # the folders already registered (or found wrong) in this process


def models_folder() -> Path:
    return folder("own_models")


def _stamp_problem(card: ModelCard) -> str | None:
    stamp = card.path.parent / STAMP_NAME
    try:
        recorded = json.loads(stamp.read_text())["weights_digest"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"it has not passed its check: run python -m explainers models add {card.path}"
    if card.weights is None or not card.weights.is_file() or file_digest(card.weights) != recorded:
        return f"its weights changed since they were checked: run python -m explainers models add {card.path}"
    return None


def register_installed() -> list[str]:
    """Registers the models under the models folder that this process has not seen yet (a worker calls it again
    for a model added since it started); returns their names."""
    names: list[str] = []
    taken = set(registered())
    root = models_folder()
    if not root.is_dir():
        return names
    for sub in sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith(".")):
        if sub.name in _SEEN:
            continue
        _SEEN.add(sub.name)
        try:
            card = read_card(sub / CARD_NAME, reserved=taken)
        except CardError as error:
            PROBLEMS.append((sub.name, str(error)))
            continue
        register(spec_from_card(card, unavailable=partial(_stamp_problem, card)))
        taken.add(card.name)
        names.append(card.name)
    return names


def install(card_path: Path | str) -> dict[str, Any]:
    """Checks a card and its model, then copies them into the models folder and registers the model; raises
    CardError or models.own.ModelRefused with one sentence. Returns what the command line prints. The registry
    must be loaded (models.catalog.install sees to it), so that the name is checked against every model's."""
    card = read_card(card_path, reserved=set(registered()))
    checked = validate(card)
    weights = weights_file_of(card)
    root = models_folder()
    target = root / card.name
    if target.exists():
        raise CardError(f"The models folder already holds {card.name}; choose another name.")
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{card.name}-", dir=root))
    try:
        shutil.copyfile(card.path, staging / CARD_NAME)
        for path in {weights, *([card.classes_file] if card.classes_file else [])}:
            relative = path.relative_to(card.path.parent)
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, staging / relative)
        stamp = {
            "weights_digest": file_digest(weights),
            "peak_bytes": checked.peak_bytes,
            "seconds": round(checked.seconds, 2),
            "checked": _dt.datetime.now(_dt.UTC).isoformat(),
        }
        (staging / STAMP_NAME).write_text(json.dumps(stamp, indent=2) + "\n")
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    register_installed()
    return {
        "added": card.name,
        "folder": str(target),
        "classes": len(card.classes),
        "format": card.format,
        "peak_bytes": checked.peak_bytes,
        "seconds": round(checked.seconds, 2),
    }
