"""The model card and the warnings that stand beside a verdict: the out-of-domain sentence, the research-use
notice of a clinical model, and the card itself (its accuracy measured on the bundled labelled samples)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from explainers.domain import domain_warning
from explainers.predictions import Accuracy, accuracy
from models import Classifier, ModelSpec, labelled_samples
from ui.compute import get_cache
from ui.resources import get_sample_image
from viz.card import RESEARCH_NOTICE, card_markdown


def measured_accuracy(classifier: Classifier) -> Accuracy:
    """Top-1 accuracy on the labelled samples of the model's own folder (each prediction cached: one forward pass
    per sample the first time, none afterwards)."""
    samples = labelled_samples(classifier.spec)
    return accuracy(get_cache(), classifier, [(get_sample_image(s.name), s.label) for s in samples])


def verdict_notes(spec: ModelSpec, image: Any, container: Any = st) -> None:
    """Beside a verdict: the out-of-domain warning when the image does not look like the model's domain, and the
    standing notice of a clinical model."""
    warning = domain_warning(image, spec.input_kind)
    if warning is not None:
        container.warning(warning, icon="⚠️")
    if spec.clinical:
        container.caption(f"**{RESEARCH_NOTICE}** {spec.title} is a research model; its verdict is not a finding.")


def card_expander(classifier: Classifier, container: Any = st, expanded: bool = False) -> None:
    """The model card in an expander (its accuracy measured now, or read from the cached predictions)."""
    spec = classifier.spec
    with container.expander(f"About this model: {spec.title}", expanded=expanded):
        st.markdown(card_markdown(spec, measured_accuracy(classifier), classifier.weights_digest))
