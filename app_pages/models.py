"""Models: every registered model, whether it can run here, how to make it available, and its card (intended use,
classes in words, where the weights and training data come from, accuracy measured here on the bundled samples)."""

import streamlit as st

from explainers.predictions import Accuracy
from models import ModelUnavailableError, all_specs, labelled_samples
from ui.card import measured_accuracy
from ui.resources import get_classifier
from viz.card import RESEARCH_NOTICE, card_markdown

st.header("Models")
st.caption("Every model runs on this machine from weights that ship with the app or its packages; "
           "nothing is downloaded. Each card's accuracy is measured here, on the labelled samples that ship.")

specs = all_specs()
st.dataframe(
    [{
        "model": spec.title,
        "name": spec.name,
        "status": "available" if spec.available else "unavailable",
        "task": spec.task,
        "input": f"{spec.input_size[0]}×{spec.input_size[1]}",
        "classes": spec.num_classes,
        "licence": spec.licence,
    } for spec in specs],
    hide_index=True,
)

for spec in specs:
    reason = spec.missing_reason()
    with st.expander(f"{'✅' if reason is None else '⛔'} {spec.title}", expanded=reason is None and spec.clinical):
        if reason is not None:
            st.warning(f"Unavailable: {reason}.")
            st.markdown(card_markdown(spec, None if labelled_samples(spec) else Accuracy(0, 0, {})))
            continue
        if spec.clinical:
            st.error(RESEARCH_NOTICE, icon="⚕️")
        if not labelled_samples(spec):  # nothing to measure on: the model need not load
            st.markdown(f"**Name** `{spec.name}`  \n" + card_markdown(spec, Accuracy(0, 0, {})))
            continue
        try:
            classifier = get_classifier(spec.name)
        except ModelUnavailableError as error:
            st.warning(str(error))
            continue
        with st.spinner(f"Measuring {spec.title} on its {len(labelled_samples(spec))} labelled samples…"):
            measured = measured_accuracy(classifier)
        st.markdown(f"**Name** `{spec.name}`  \n" + card_markdown(spec, measured, classifier.weights_digest))
