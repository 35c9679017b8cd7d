"""The model card and the warnings that stand beside a verdict: the out-of-domain sentence, the research-use
notice of a clinical model, and the card itself (its accuracy measured on the bundled labelled samples)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from explainers.domain import domain_warning
from explainers.methods import method_titles
from explainers.predictions import Accuracy, accuracy
from models import Classifier, ModelSpec, labelled_samples
from models.trust import trust_of
from ui.compute import get_cache
from ui.resources import get_sample_image
from viz.card import RESEARCH_NOTICE, card_markdown


def measured_accuracy(classifier: Classifier) -> Accuracy:
    """Top-1 accuracy on the labelled samples of the model's own folder (each prediction cached: one forward pass
    per sample the first time, none afterwards), kept per model and weights for the server's life."""
    return _accuracy(classifier.name, classifier.weights_digest, classifier)


@st.cache_resource(show_spinner=False, max_entries=32)
def _accuracy(name: str, weights_digest: str, _classifier: Classifier) -> Accuracy:
    samples = labelled_samples(_classifier.spec)
    return accuracy(
        get_cache(), _classifier, [(get_sample_image(s.name), s.label) for s in samples if s.label is not None]
    )


def verdict_notes(spec: ModelSpec, image: Any, container: Any = st) -> bool:
    """Before a verdict: the out-of-domain warning when the image does not look like the model's domain, and the
    standing notice of a clinical model. Whether the image is in the domain (else the verdict is shown muted)."""
    warning = domain_warning(image, spec.policy.kind)
    if warning is not None:
        container.warning(warning, icon="⚠️")
    if spec.card.clinical:
        container.caption(f"**{RESEARCH_NOTICE}** {spec.title} is a research model; its verdict is not a finding.")
    return warning is None


def card_expander(classifier: Classifier, container: Any = st, expanded: bool = False) -> None:
    """The model card in an expander (its accuracy measured now, or read from the cached predictions)."""
    spec = classifier.spec
    with container.expander(f"About this model: {spec.title}", expanded=expanded):
        st.markdown(
            card_markdown(
                spec, measured_accuracy(classifier), classifier.weights_digest, trust_of(spec.name), method_titles()
            )
        )


@dataclass(frozen=True)
class AddedModel:
    added: bool
    message: str  # one sentence


def add_uploaded_model(card_name: str, card: bytes, files: list[tuple[str, bytes]]) -> AddedModel:
    """An uploaded card and its files, written under their own base names into a private temporary folder, then
    checked and added as ``models add`` does (models.installed.install)."""
    import re
    import tempfile
    from pathlib import Path

    from models.cards import CardError
    from models.catalog import install
    from models.own import ModelRefused

    def safe(name: str) -> str:
        base = Path(name).name
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,120}", base):
            raise CardError(f"The file name {base[:60]!r} is not allowed; use letters, digits, dots, - and _.")
        return base

    try:
        with tempfile.TemporaryDirectory(prefix="upload-model-") as folder:
            root = Path(folder)
            card_path = root / safe(card_name)
            card_path.write_bytes(card)
            for name, data in files:
                (root / safe(name)).write_bytes(data)
            result = install(card_path)
    except (CardError, ModelRefused) as error:
        return AddedModel(False, str(error))
    return AddedModel(
        True,
        f"{result['added']} was checked (peak memory {result['peak_bytes'] / 2**20:.0f} MB) "
        "and added; choose it in the sidebar.",
    )
