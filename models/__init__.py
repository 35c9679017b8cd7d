"""Model registry and loaders: a name in, a ready-to-call classifier out. Never imports streamlit.

Importing it registers nothing: the first lookup reads the cards (models.catalog.ensure_loaded)."""

from models.catalog import UnknownModelError, all_specs, ensure_loaded, get_spec
from models.classifier import Classifier, ModelUnavailableError, load_classifier, resize_for
from models.domains import DomainPolicy
from models.registry import ModelSpec
from models.samples import Sample, default_sample, get_sample, labelled_samples, list_samples, samples_for

__all__ = [
    "Classifier",
    "DomainPolicy",
    "ModelSpec",
    "ModelUnavailableError",
    "UnknownModelError",
    "Sample",
    "all_specs",
    "default_sample",
    "ensure_loaded",
    "get_sample",
    "labelled_samples",
    "list_samples",
    "samples_for",
    "get_spec",
    "load_classifier",
    "resize_for",
]
