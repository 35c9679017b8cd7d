"""Explain: one model, one image, one method; an overlay per top-k class."""

import io

import streamlit as st

from explainers.methods import ParameterError, all_methods, get_method
from explainers.plots import image_figure, overlay_figure, probability_figure, symmetric_limit
from models import ModelUnavailableError
from ui.compute import explanation_for
from ui.controls import method_params
from ui.resources import get_classifier
from ui.state import current_selection

selection = current_selection()
spec = selection.spec
st.header(f"Explain · {spec.title}")

if selection.image is None:
    st.info(selection.error or "Choose an image in the sidebar.")
    st.stop()

try:
    classifier = get_classifier(spec.name)
except ModelUnavailableError as error:
    st.error(str(error))
    st.stop()

methods = {method.name: method for method in all_methods()}
with st.container(border=True):
    left, middle, right = st.columns(3)
    method = get_method(left.selectbox("Method", list(methods), format_func=lambda name: methods[name].title,
                                       key="explain_method"))
    budget = middle.slider(f"Evaluation budget ({method.budget_meaning})", method.min_budget,
                           method.max_budget, method.default_budget, key=f"budget_{method.name}")
    top_k = right.slider("Top-k classes", 1, min(10, spec.num_classes), min(3, spec.num_classes), key="top_k")
    left, middle, right = st.columns(3)
    segments = left.slider("Superpixel segments", 4, 200, 50, key="segments", disabled=not method.uses_segments,
                           help=None if method.uses_segments else " ".join(method.notes))
    opacity = middle.slider("Overlay opacity", 0.0, 1.0, 0.7, 0.05, key="opacity")
    seed = int(right.number_input("Seed", 0, 2**31 - 1, 0, key="seed"))
    for note in method.notes:
        st.caption(note)
    with st.expander(f"{method.title}: settings"):
        st.caption(f"{method.summary} Paper: {method.paper}.")
        params = method_params(method)
    if method.uses_segments:
        params["segments"] = segments

prepared = classifier.prepare(selection.image)
try:
    explanation = explanation_for(classifier, selection.image, method.name, top_k=top_k, max_evals=budget,
                                  seed=seed, params=params)
except ParameterError as error:
    st.error(str(error))
    st.stop()

verdict = explanation.class_names[0]
probability = float(explanation.probs[explanation.classes[0]])
summary = f"**{spec.title}** says **{verdict}** ({probability:.1%})"
if selection.true_label is not None:
    agrees = selection.true_label == verdict
    summary += f"; the file name says **{selection.true_label}** {'✓' if agrees else '✗ (disagrees)'}"
st.markdown(summary + ".")

image_column, probability_column = st.columns([1, 2])
image_column.plotly_chart(image_figure(prepared, title=f"{selection.image_label} as the model sees it"),
                          key="input_image")
probability_column.plotly_chart(
    probability_figure(list(explanation.class_names), [float(explanation.probs[c]) for c in explanation.classes]),
    key="probabilities")

limit = symmetric_limit(list(explanation.values))
columns = st.columns(min(top_k, 3))
for index, class_id in enumerate(explanation.classes):
    figure = overlay_figure(
        prepared, explanation.values[index], limit=limit, opacity=opacity,
        title=f"{explanation.class_names[index]} · p = {explanation.probs[class_id]:.3f}",
        segments=explanation.segments)
    columns[index % len(columns)].plotly_chart(figure, key=f"overlay_{index}")
st.caption("Red raises the class's probability, blue lowers it; every panel shares one colour scale "
           f"(±{limit:.3g}). Each map plus its base value adds up to the model's probability.")

with st.expander("Details and download"):
    st.write({
        "method": explanation.method,
        "model evaluations": explanation.n_evals,
        "seconds": round(explanation.seconds, 2),
        "additivity error": f"{explanation.additivity_error:.2e}",
        "base values (everything hidden)": [round(float(b), 4) for b in explanation.base_values],
        "parameters": explanation.params,
        "seed": explanation.seed,
    })
    buffer = io.BytesIO()
    explanation.save(buffer)
    st.download_button("Download explanation (.npz)", buffer.getvalue(),
                       file_name=f"{spec.name}_{explanation.method}_{explanation.image_digest}.npz",
                       mime="application/octet-stream")
