"""Compare: the top-k classes (rows) × the chosen methods (columns) on one colour scale, with faithfulness
scores under every panel, a ranking, the methods' agreement, and downloads. The work is the service's
(service.compare, service.downloads, service.report); this page reads its widgets and draws."""

from functools import partial

import numpy as np
import streamlit as st

from explainers.methods import all_methods, get_method
from service.compare import (
    SLIC_SEGMENTS,
    compare_grid,
    compare_requests,
    grid_caption,
    grid_scores,
    method_agreement,
    ranking,
    row_title,
    score_caption,
    settings_caption,
    short_title,
    verdict_curves,
)
from service.downloads import compare_downloads
from service.report import report_file
from ui import keys
from ui.card import measured_accuracy
from ui.compute import compare_explanations, get_cache
from ui.contrast import contrast_row
from ui.controls import (
    COMPARE_DEFAULT_METHODS,
    background_choice,
    compare_settings_widgets,
    output_choice,
    recommended_first,
)
from ui.resources import head_mask_of, superpixels_of
from ui.state import page_start
from viz.panels import agreement_table, colour_bar, image_panel, map_unit, overlay_panel
from viz.plots import curves_figure

selection, classifier = page_start("Compare methods")
spec, image = selection.spec, selection.image
assert image is not None  # page_start stops the page without an image

names = [method.name for method in all_methods()]
with st.container(border=True):
    left, middle, right = st.columns([3, 1, 1])
    chosen = left.multiselect(
        "Methods",
        names,
        default=recommended_first(spec.name, [name for name in COMPARE_DEFAULT_METHODS if name in names]),
        key=keys.COMPARE_METHODS,
        format_func=lambda name: get_method(name).title,
    )
    top_k = middle.slider(
        "Top-k classes (rows)", 1, min(5, spec.num_classes), min(3, spec.num_classes), key=keys.COMPARE_TOP_K
    )
    opacity = right.slider("Opacity", 0.0, 1.0, 0.7, 0.05, key=keys.COMPARE_OPACITY)
    per_row = st.toggle(
        "One colour scale per row",
        value=False,
        key=keys.COMPARE_PER_ROW,
        help="Off: one scale for the whole grid, so equal colours mean equal values everywhere. "
        "The scale fits the verdict's row (none of its panels saturates); other rows' "
        "values beyond it saturate.",
    )
    over_superpixels = st.toggle(
        "Pixel methods over superpixels",
        value=True,
        key=keys.COMPARE_SUPERPIXELS,
        help="On: the per-pixel maps of DeepSHAP and GradientSHAP are summed over the superpixel methods' "
        "superpixels, so every panel is on one basis and one colour scale means the same everywhere.",
    )
    left, right = st.columns(2)
    output = output_choice(spec, left)
    hide_background = background_choice(spec, right)
    settings = {}
    with st.expander("Budget and settings per method"):
        st.caption(
            "Each method's own budget and settings for this page; until one is changed here, it follows "
            "the last choice on the Explain page. Kept when you visit other pages."
        )
        for name in chosen:
            st.markdown(f"**{short_title(name)}**")
            settings[name] = compare_settings_widgets(get_method(name))
    st.caption(settings_caption(settings))
if not chosen:
    st.info("Choose at least one method.")
    st.stop()

plan = compare_requests(
    classifier, image, settings, top_k=top_k, seed=int(st.session_state.get(keys.SEED, 0)), output=output
)
if plan.refused:  # the first method that cannot run with its settings here
    name, sentence = next(iter(plan.refused.items()))
    st.error(f"{get_method(name).title}: {sentence}")
    st.stop()
ready = compare_explanations(plan.requests, image)
if not ready:
    st.stop()

prepared = classifier.prepare(image.pixels)
digest = next(iter(ready.values())).image_digest


def superpixels() -> np.ndarray:  # cached per image: the basis, the agreement and a download use them
    return superpixels_of(digest, prepared, SLIC_SEGMENTS)


grid = compare_grid(
    spec,
    prepared,
    ready,
    top_k,
    output=output,
    superpixels=superpixels,
    over_superpixels=over_superpixels,
    per_row=per_row,
    mask=head_mask_of(digest, prepared) if hide_background else None,
)
cache = get_cache()
with st.spinner("Scoring faithfulness (deletion and insertion curves)…"):
    scores = grid_scores(cache, classifier, grid)

sent: set[str] = set()  # the picture, the hover geometry and the style sheet: sent once per page
for row, class_id in enumerate(grid.classes):
    columns = st.columns(len(ready) + 1)  # one set per row keeps the rows aligned
    columns[0].html(image_panel(prepared, title=row_title(grid, row), sent=sent))
    for index, (name, explanation) in enumerate(ready.items()):
        columns[index + 1].html(
            overlay_panel(
                prepared,
                grid.maps[row][index],
                limit=grid.limits[row][index],
                opacity=opacity,
                title=short_title(name) if row == 0 else "\u00a0",
                segments=grid.segments[name],
                colorbar=per_row or not grid.one_basis,
                output=output,
                mask=grid.mask,
                errors=explanation.class_error_map(class_id),
                sent=sent,
            )
        )
        columns[index + 1].caption(score_caption(scores[name, class_id], explanation))
if grid.one_basis and not per_row:
    st.html(colour_bar(grid.limits[0][0], map_unit(output, True)))
st.caption(grid_caption(grid))
against = contrast_row(ready, spec, prepared, opacity, sent, keys.COMPARE_CONTRAST)

st.subheader("Ranking")
st.dataframe(ranking(grid, scores), hide_index=True)
# On request: the chart's library is large, and loading it took seconds of a cached comparison's first visit.
if st.toggle(
    f"Show the deletion and insertion curves for {spec.class_title(grid.classes[0])}", key=keys.COMPARE_CURVES
):
    st.plotly_chart(curves_figure(verdict_curves(grid, scores)), key="cmp_curves")

segments = superpixels()
if len(ready) > 1:
    st.subheader("Agreement between methods")
    matrix, agreement_caption = method_agreement(grid, segments)
    st.html(agreement_table(list(ready), matrix))
    st.caption(agreement_caption)

st.subheader("Downloads")
report = partial(
    report_file, cache, classifier, image, ready, top_k=top_k, hide_background=hide_background, contrast_against=against
)
files = compare_downloads(
    grid,
    scores,
    opacity=opacity,
    superpixels=segments,
    image_digest=image.digest,
    report=lambda: report(accuracy=measured_accuracy(classifier)),
)  # measured when asked
for column, file in zip(st.columns(len(files)), files, strict=True):
    column.download_button(file.label, file.make, file_name=file.file_name, mime=file.mime, help=file.help)
