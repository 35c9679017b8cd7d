"""Explain: one model, one image, one method; an overlay per explained class."""

import io

import numpy as np
import streamlit as st

from explainers.masks import outside_share
from explainers.methods import ParameterError, all_methods, get_method
from explainers.predictions import cached_prediction
from explainers.request import build_request
from explainers.superpixels import segment_boundaries
from ui import keys
from ui.card import card_expander, verdict_notes
from ui.compute import explanation_for, get_cache
from ui.contrast import contrast_section
from ui.controls import background_choice, method_params, output_choice, recommended_method
from ui.resources import head_mask_of
from ui.state import page_start
from viz.card import verdict_text
from viz.panels import (
    PATCH_PIXELS,
    hidden_note,
    image_panel,
    map_unit,
    overlay_panel,
    percent,
    probability_bars,
    shown_limit,
)

# The verdict, the controls and the results: made before the model loads, so a new image empties the previous
# verdict and maps at once.
selection, classifier, layout = page_start("Explain", layout=True)
spec, image = selection.spec, selection.image
if image is None:  # page_start has stopped the page already; this says so to the type checker
    st.stop()
prepared = classifier.prepare(image.pixels)

methods = {method.name: method for method in all_methods()}
with layout.controls.container(border=True):
    left, middle, right = st.columns(3)
    method = get_method(
        left.selectbox(
            "Method",
            list(methods),
            index=recommended_method(spec.name, list(methods)),  # bench.trust's choice for this model
            format_func=lambda name: methods[name].title,
            key=keys.EXPLAIN_METHOD,
        )
    )
    if method.min_budget < method.max_budget:
        budget = middle.slider(
            f"Evaluation budget ({method.budget_meaning})",
            method.min_budget,
            method.max_budget,
            method.default_budget,
            key=keys.budget(method.name),
            help="With budget auto (a target error above 0) the most it may spend: it stops once the map is that good.",
        )
    else:  # a method whose cost is fixed
        budget = method.min_budget
        middle.caption(f"Budget: {budget} {method.budget_meaning} (fixed for this method)")
    top_k = right.slider("Top-k classes", 1, min(10, spec.num_classes), min(3, spec.num_classes), key=keys.TOP_K)
    left, middle, right = st.columns(3)
    params = method_params(method, "main", left)
    if not params:
        left.slider(
            "Superpixel segments",
            2,
            200,
            50,
            key="segments_unused",
            disabled=True,
            help=" ".join(method.notes) or "This method does not use superpixels.",
        )
    opacity = middle.slider("Overlay opacity", 0.0, 1.0, 0.7, 0.05, key=keys.OPACITY)
    seed = int(right.number_input("Seed", 0, 2**31 - 1, 0, key=keys.SEED))
    left, middle, right = st.columns([1, 1, 2])
    outlines = left.toggle("Superpixel outlines", value=False, key=keys.OUTLINES, disabled=not method.uses_segments)
    output = output_choice(spec, left)
    # Clinical scans: the verdict at once, each explanation on request (a slider change would start a job of
    # minutes); photos and digits explain themselves. A cached explanation always shows at once.
    hide_background = background_choice(spec, middle)
    automatic = middle.toggle(
        "Compute automatically",
        value=spec.policy.compute_automatically,
        key=keys.auto_compute(spec.policy.name),
        help="On: every change of the settings starts its explanation. Off: the verdict comes "
        "at once and an explanation starts with its button (cached ones show at once).",
    )
    # The verdict: stored, or one forward pass (then stored), before any explanation.
    probs = cached_prediction(get_cache(), classifier, image)
    order = np.argsort(-probs, kind="stable")
    chosen = right.selectbox(
        "Explained classes",
        ["top-k"] + [spec.class_names[c] for c in order],
        key=keys.EXPLAINED_CLASS,
        help="The top-k classes, or one class of your choice.",
        format_func=lambda name: name if name == "top-k" else spec.class_title(name),
    )
    for note in method.notes:
        st.caption(note)
    with st.expander(f"{method.title}: settings"):
        st.caption(f"{method.summary} Paper: {method.paper}.")
        params.update(method_params(method, "settings"))

# The verdict and the image first, from this image's own forward pass: nothing of the previous image stays
# on screen while its explanation is computed.
# Out of the model's domain, the warning comes first and the verdict is muted.
verdict_area = layout.verdict.container()
verdict_id = int(order[0])
verdict = spec.class_names[verdict_id]
in_domain = verdict_notes(spec, image, verdict_area)
summary = verdict_text(spec.title, spec.class_title(verdict), percent(probs[verdict_id]), in_domain)
if selection.true_label is not None:
    agrees = selection.true_label == verdict
    summary += f"; the file name says **{spec.class_title(selection.true_label)}** {'✓' if agrees else '✗ (disagrees)'}"
verdict_area.markdown(summary + ".")

image_column, probability_column = verdict_area.columns([1, 2])
sent: set[str] = set()  # what this run's panels sent (the picture, the style sheet): once per page
image_column.html(image_panel(prepared, title=f"{selection.image_label} as the model sees it", sent=sent))
shown = order[:top_k]
probability_column.html(probability_bars([spec.class_title(c) for c in shown], [float(probs[c]) for c in shown]))
card_expander(classifier, probability_column)

results = layout.results
classes = None if chosen == "top-k" else [spec.class_names.index(chosen)]
try:
    request = build_request(
        classifier,
        image,
        method.name,
        params=params,
        budget=budget,
        seed=seed,
        top_k=top_k,
        classes=classes,
        output=output,
    )
    with results:
        explanation = explanation_for(request, image, automatic=automatic)
except ParameterError as error:
    results.error(str(error))
    st.stop()
if explanation is None:  # a job computes it: its progress is drawn, and the page reruns when it is done
    st.stop()

output = explanation.output
mask = head_mask_of(image.digest, prepared) if hide_background else None
limit = shown_limit([(values, explanation.segments) for values in explanation.values], output, mask=mask)
boundaries = segment_boundaries(explanation.segments) if outlines and explanation.segments is not None else None
columns = results.columns(3)  # always thirds: each panel the size of the image beside the verdict
for index, class_id in enumerate(explanation.classes):
    columns[index % len(columns)].html(
        overlay_panel(
            prepared,
            explanation.values[index],
            limit=limit,
            opacity=opacity,
            title=f"{spec.class_title(explanation.class_names[index])} · p = {explanation.probs[class_id]:.3f}",
            segments=explanation.segments,
            outlines=boundaries,
            output=output,
            mask=mask,
            errors=explanation.error_map(index),
            sent=sent,
        )
    )
quantity = "probability" if output == "probability" else "log-odds"
colour = (
    "each superpixel is coloured by its value"
    if explanation.segments is not None
    else f"colours are per {PATCH_PIXELS} pixels"
)
uncertain = (
    " and its standard error; dotted regions have an uncertain sign (0 inside the 90 % interval)"
    if explanation.segment_errors is not None
    else ""
)
results.caption(
    f"Red raises the class's {quantity}, blue lowers it; {colour}, and every panel shares one scale "
    f"(±{limit:.3g} {map_unit(output, explanation.segments is not None)}); hover for a region's total"
    f"{uncertain}. "
    f"Each map plus its base value adds up to the model's {quantity} "
    f"(largest gap here: {explanation.additivity_error:.1e})."
    + hidden_note(
        {method.title: max(outside_share(values, mask) for values in explanation.values)} if mask is not None else {}
    )
)

contrast_section(explanation, spec, prepared, results, opacity, sent)

with results.expander("Details and download"):
    st.write(
        {
            "method": explanation.method,
            "model evaluations": explanation.n_evals,
            "seconds": round(explanation.seconds, 2),
            "values add up to": explanation.output,
            "additivity error": f"{explanation.additivity_error:.2e}",
            "base values (everything hidden)": [round(float(b), 4) for b in explanation.base_values],
            "parameters": explanation.params,
            "seed": explanation.seed,
        }
    )
    saved = explanation  # the closure below sees the checked (not None) explanation

    def npz_file() -> bytes:  # made when the button is clicked
        buffer = io.BytesIO()
        saved.save(buffer)
        return buffer.getvalue()

    st.download_button(
        "Download explanation (.npz)",
        npz_file,
        file_name=f"{spec.name}_{explanation.method}_{explanation.image_digest}.npz",
        mime="application/octet-stream",
    )
