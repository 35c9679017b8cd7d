"""The one data-folder resolver: every folder the app reads or writes, by what it holds.

Each folder has an environment variable that moves it; otherwise it follows the XDG base-directory rules
(caches under ``$XDG_CACHE_HOME``, data that must survive a cache clear under ``$XDG_DATA_HOME``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

APP = "shap-image-studio"
ROOT = Path(__file__).resolve().parents[1]

FolderKind = Literal["cache", "models", "answers", "studies", "samples", "scans", "own_models"]


@dataclass(frozen=True)
class Folder:
    """How one folder is found: its variable, else a base (an XDG variable with its default) and a subfolder."""

    variable: str
    meaning: str
    xdg: str | None = None  # "XDG_CACHE_HOME" or "XDG_DATA_HOME"
    xdg_default: str = ""  # relative to the home folder
    parent: FolderKind | None = None  # or a subfolder of another kind's folder
    subfolder: str = ""
    bundled: str = ""  # or a folder of this repository


FOLDERS: dict[FolderKind, Folder] = {
    "cache": Folder(
        "EXPLAINERS_CACHE_DIR",
        "explanations and predictions, shared by every session and the CLI",
        xdg="XDG_CACHE_HOME",
        xdg_default=".cache",
    ),
    "models": Folder(
        "MODELS_CACHE_DIR",
        "per-machine runtime measurements and ONNX exports of the models",
        parent="cache",
        subfolder="models",
    ),
    # Not the cache: answers are data, and caches get deleted.
    "answers": Folder(
        "EXPLAINERS_STUDY_DIR",
        "user-study participants and answers, and second readers' reads (SQLite)",
        xdg="XDG_DATA_HOME",
        xdg_default=".local/share",
    ),
    "studies": Folder("EXPLAINERS_STUDIES_DIR", "study files (YAML or JSON)", bundled="assets/studies"),
    "samples": Folder(
        "EXPLAINERS_SAMPLES_DIR", "the bundled sample images, one subfolder per domain", bundled="assets/samples"
    ),
    # Users' own models (models/installed.py): one subfolder per model, its card, weights and validation stamp.
    "own_models": Folder(
        "EXPLAINERS_MODELS_DIR",
        "users' own models: a card, its weights and its check each",
        xdg="XDG_DATA_HOME",
        xdg_default=".local/share",
        subfolder="models",
    ),
    # The Scans page opens this folder and its subfolders, nothing outside it.
    "scans": Folder(
        "EXPLAINERS_SCANS_DIR",
        "the folder of scans the Scans page lists (its subfolders too)",
        bundled="assets/samples/mri",
    ),
}


def folder(kind: FolderKind) -> Path:
    """The folder for ``kind`` (see FOLDERS); not created here."""
    spec = FOLDERS[kind]
    configured = os.environ.get(spec.variable)
    if configured:
        return Path(configured).expanduser()
    if spec.parent is not None:
        return folder(spec.parent) / spec.subfolder
    if spec.bundled:
        return ROOT / spec.bundled
    base = os.environ.get(spec.xdg or "") or Path.home() / spec.xdg_default
    return Path(base) / APP / spec.subfolder
