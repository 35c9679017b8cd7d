"""Models: every registered model, whether it can run here, how to make it available, and its card (intended use,
classes in words, where the weights and training data come from, accuracy measured here on the bundled samples)."""

import streamlit as st

from explainers.methods import method_titles
from explainers.predictions import Accuracy
from models import ModelUnavailableError, all_specs, labelled_samples
from models.installed import PROBLEMS
from models.trust import trust_of
from ui.card import add_uploaded_model, measured_accuracy
from ui.resources import get_classifier
from viz.card import RESEARCH_NOTICE, card_markdown

st.header("Models")
st.caption(
    "Every model runs on this machine from weights that ship with the app or its packages; "
    "nothing is downloaded. Each card's accuracy is measured here, on the labelled samples that ship."
)

specs = all_specs()
for folder_name, problem in PROBLEMS:  # filled by all_specs() above, the first lookup
    st.warning(f"The model in {folder_name} is not offered: {problem}")
st.dataframe(
    [
        {
            "model": spec.title,
            "name": spec.name,
            "status": "available" if spec.available else "unavailable",
            "task": spec.card.task,
            "input": f"{spec.input_size[0]}×{spec.input_size[1]}",
            "classes": spec.num_classes,
            "licence": spec.card.licence,
        }
        for spec in specs
    ],
    hide_index=True,
)

for spec in specs:
    reason = spec.missing_reason()
    with st.expander(
        f"{'✅' if reason is None else '⛔'} {spec.title}", expanded=reason is None and spec.card.clinical
    ):
        if reason is not None:
            st.warning(f"Unavailable: {reason}.")
            st.markdown(
                card_markdown(
                    spec,
                    None if labelled_samples(spec) else Accuracy(0, 0, {}),
                    None,
                    trust_of(spec.name),
                    method_titles(),
                )
            )
            continue
        if spec.card.clinical:
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
        st.markdown(
            f"**Name** `{spec.name}`  \n"
            + card_markdown(spec, measured, classifier.weights_digest, trust_of(spec.name), method_titles())
        )

st.subheader("Add a model of your own")
st.caption(
    "A model card (YAML: the weights' file name, safetensors for a torchvision or project architecture, or "
    "ONNX; the classes; the preprocessing; see README's “Your own model”) and its files. Pickled .pt, .pth, "
    ".bin and .ckpt files are refused before anything reads them; the weights are then loaded and run once "
    "in a separate process with a memory limit. Larger files: `python -m explainers models add CARD.yaml`."
)
with st.form("add_model", clear_on_submit=True):
    card_upload = st.file_uploader("Model card (.yaml)", type=["yaml", "yml"], key="own_model_card")
    file_uploads = st.file_uploader(
        "Its weights (.safetensors or .onnx) and classes file, if any",
        type=["safetensors", "onnx", "txt"],
        accept_multiple_files=True,
        key="own_model_files",
    )
    submitted = st.form_submit_button("Check and add")
if submitted:
    if card_upload is None or not file_uploads:
        st.warning("Upload the card and its weights together.")
    else:
        with st.spinner("Checking the model in a separate process…"):
            outcome = add_uploaded_model(
                card_upload.name, card_upload.getvalue(), [(upload.name, upload.getvalue()) for upload in file_uploads]
            )
        (st.success if outcome.added else st.error)(outcome.message)
