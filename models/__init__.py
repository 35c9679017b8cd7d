"""Model registry and loaders: a name in, a ready-to-call classifier out. Never imports streamlit."""

from models.classifier import Classifier, ModelUnavailableError, load_classifier, resize_for
from models.registry import ModelSpec, UnknownModelError, all_specs, get_spec
from models.samples import Sample, default_sample, get_sample, labelled_samples, list_samples, samples_for
from models import zoo as _zoo  # noqa: F401  (registers the models)
from models.installed import register_installed

register_installed()  # users' own models, from $EXPLAINERS_MODELS_DIR

__all__ = [
    "Classifier",
    "ModelSpec",
    "ModelUnavailableError",
    "UnknownModelError",
    "Sample",
    "all_specs",
    "default_sample",
    "get_sample",
    "labelled_samples",
    "list_samples",
    "samples_for",
    "get_spec",
    "load_classifier",
    "resize_for",
]
