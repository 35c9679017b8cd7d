"""The bundled sample images: one folder per domain under ``storage.folder("samples")``, named by the models'
domain policies (``policy.sample_folder``), each file's true label read by the policy's label rule."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models.catalog import all_specs
from models.registry import ModelSpec
from storage import folder

SAMPLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


@dataclass(frozen=True)
class Sample:
    """A bundled sample image."""

    name: str  # e.g. "photos/chelsea"
    path: Path
    domain: str  # the domain of the models it suits (their policy's name): imagenet, mri, digits
    label: str | None  # the true label where the file name says it

    @property
    def title(self) -> str:
        return self.path.stem if self.label is None else f"{self.path.stem} ({self.label})"


def sample_folder(spec: ModelSpec) -> Path:
    return folder("samples") / spec.policy.sample_folder


def list_samples() -> list[Sample]:
    """Every sample image, folder by folder in the order the models were registered (photos first)."""
    samples: list[Sample] = []
    seen: set[str] = set()
    for spec in all_specs():
        policy = spec.policy
        if policy.sample_folder in seen:
            continue
        seen.add(policy.sample_folder)
        root = sample_folder(spec)
        paths = sorted(root.iterdir()) if root.is_dir() else []
        samples += [
            Sample(f"{policy.sample_folder}/{path.stem}", path, policy.name, spec.label_of(path.stem))
            for path in paths
            if path.suffix.lower() in SAMPLE_SUFFIXES and path.is_file()
        ]
    return samples


def samples_for(spec: ModelSpec) -> list[Sample]:
    """The samples of the model's own domain first, then the rest."""
    samples = list_samples()
    domain = spec.policy.name
    return [s for s in samples if s.domain == domain] + [s for s in samples if s.domain != domain]


def default_sample(spec: ModelSpec) -> Sample:
    """The sample a model starts on: its spec's default, else the first of its domain."""
    samples = samples_for(spec)
    wanted = f"{spec.policy.sample_folder}/{spec.policy.default_sample}"
    return next((s for s in samples if s.name == wanted), samples[0])


def get_sample(name: str) -> Sample:
    """The sample called ``name`` (e.g. "mri/Te-gl_0010"); KeyError with one sentence otherwise."""
    for sample in list_samples():
        if sample.name == name:
            return sample
    raise KeyError(f"There is no sample image named {name}.")


def labelled_samples(spec: ModelSpec) -> list[Sample]:
    """The samples of the model's own folder whose file name gives one of its classes (what its card's accuracy
    is measured on)."""
    return [
        s
        for s in list_samples()
        if s.path.parent == sample_folder(spec) and s.label is not None and s.label in spec.class_names
    ]
