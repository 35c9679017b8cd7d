"""Compare: the top-k classes (rows) × the chosen methods (columns) on one colour scale, with faithfulness
scores under every panel, a ranking, the methods' agreement, and downloads."""

import csv
import io
import zipfile

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from explainers.faithfulness import agreement, cached_faithfulness, over_segments, segment_totals
from explainers.masks import outside_share
from explainers.methods import ParameterError, all_methods, get_method
from explainers.request import build_request
from ui import keys
from ui.card import measured_accuracy
from ui.compute import explanation_if_ready, get_cache, get_engine, release_others, submit, watch
from ui.controls import COMPARE_DEFAULT_METHODS, background_choice, compare_settings_widgets, output_choice
from ui.resources import head_mask_of, superpixels_of
from ui.state import page_start
from viz.panels import agreement_table, colour_bar, hidden_note, image_panel, map_unit, overlay_panel, shown_limit, \
    shown_map
from viz.render import grid_png




def short_title(name: str) -> str:
    """A method's title without its details: "Kernel SHAP", not "kernel"."""
    return get_method(name).title.split(" (")[0]


selection, classifier = page_start("Compare methods")
spec = selection.spec

names = [method.name for method in all_methods()]
with st.container(border=True):
    left, middle, right = st.columns([3, 1, 1])
    chosen = left.multiselect("Methods", names, default=[name for name in COMPARE_DEFAULT_METHODS if name in names],
                              key=keys.COMPARE_METHODS, format_func=lambda name: get_method(name).title)
    top_k = middle.slider("Top-k classes (rows)", 1, min(5, spec.num_classes), min(3, spec.num_classes),
                          key=keys.COMPARE_TOP_K)
    opacity = right.slider("Opacity", 0.0, 1.0, 0.7, 0.05, key=keys.COMPARE_OPACITY)
    per_row = st.toggle("One colour scale per row", value=False, key=keys.COMPARE_PER_ROW,
                        help="Off: one scale for the whole grid, so equal colours mean equal values everywhere. "
                             "The scale fits the verdict's row (none of its panels saturates); other rows' "
                             "values beyond it saturate.")
    over_superpixels = st.toggle(
        "Pixel methods over superpixels", value=True, key=keys.COMPARE_SUPERPIXELS,
        help="On: the per-pixel maps of DeepSHAP and GradientSHAP are summed over the superpixel methods' "
             "superpixels, so every panel is on one basis and one colour scale means the same everywhere.")
    left, right = st.columns(2)
    output = output_choice(spec, left)
    hide_background = background_choice(spec, right)
    settings = {}
    with st.expander("Budget and settings per method"):
        st.caption("Each method's own budget and settings for this page; until one is changed here, it follows "
                   "the last choice on the Explain page. Kept when you visit other pages.")
        for name in chosen:
            st.markdown(f"**{short_title(name)}**")
            settings[name] = compare_settings_widgets(get_method(name))
    st.caption("Each method runs with " + "; ".join(
        f"{short_title(name)} {budget} {get_method(name).budget_meaning}" for name, (budget, _) in settings.items())
        + " (change them under “Budget and settings per method”).")
if not chosen:
    st.info("Choose at least one method.")
    st.stop()

cache = get_cache()
seed = int(st.session_state.get(keys.SEED, 0))
requests = {}
for name in chosen:
    budget, params = settings[name]
    try:
        requests[name] = build_request(classifier, selection.image, name, params=params, budget=budget, seed=seed,
                                       top_k=top_k, output=output)
    except ParameterError as error:
        st.error(f"{get_method(name).title}: {error}")
        st.stop()
results = {name: explanation_if_ready(request) for name, request in requests.items()}
missing = [name for name in chosen if results[name] is None]
engine = get_engine()
jobs = {name: engine.job(requests[name]) for name in missing}
active = [job for job in jobs.values() if job is not None and not job.done]


def _start(waiting: dict, image) -> None:
    """Submits every missing method that no job computes yet, at once: the workers compute them side by side."""
    for request in waiting.values():
        submit(request, image, score=True)  # its faithfulness scores too: the grid shows them


if not active:
    release_others("compare", [])  # settings changed: the jobs of the previous ones are no longer wanted
if missing:
    total = sum(requests[name].budget for name in missing)
    left, right = st.columns([3, 1])
    left.info(f"{len(missing)} of {len(chosen)} methods are not cached yet: "
              f"{', '.join(missing)} (budgets add up to {total}).")
    for name, job in jobs.items():
        if job is not None and job.done and job.error is not None and not job.cancelled:
            st.error(f"{get_method(name).title} failed: {job.error}")
    # Missing methods with no job yet (a method may already be computing for the Explain page or another user).
    waiting = {name: requests[name] for name in missing if jobs[name] is None or jobs[name].done}
    if waiting:
        right.button("Compute the missing methods", on_click=_start, args=(waiting, selection.image),
                     key="compare_run", type="primary")
    if active:  # one bar per job, Cancel; the page reruns as each one finishes, so its panels appear
        release_others("compare", active)
        watch(active)

ready = {name: results[name] for name in chosen if results[name] is not None}
if not ready:
    st.stop()

prepared = classifier.prepare(selection.image.pixels)
first = next(iter(ready.values()))
classes = first.classes[:top_k]
raw_rows = [[ready[name].values[list(ready[name].classes).index(c)] for name in ready] for c in classes]
# One basis: the first superpixel method's superpixels (else 50 SLIC superpixels) for the pixel methods.
basis = None
if over_superpixels and any(explanation.segments is None for explanation in ready.values()):
    basis = next((e.segments for e in ready.values() if e.segments is not None), None)
    if basis is None:
        basis = superpixels_of(first.image_digest, prepared, 50)
panel_segments = {name: basis if explanation.segments is None else explanation.segments
                  for name, explanation in ready.items()}
rows = [[over_segments(values, basis) if basis is not None and ready[name].segments is None else values
         for name, values in zip(ready, row)] for row in raw_rows]
# The colour limit: every panel of the verdict's row (the top class) keeps its own range unsaturated, with one
# scale for the grid (or one per row); other rows may saturate beyond it. Mixed units (pixel methods per pixel
# beside superpixels) cannot share a scale: each panel then has its own.
one_basis = all(segments is not None for segments in panel_segments.values())
mask = head_mask_of(first.image_digest, prepared) if hide_background else None
panel_maps = [[(values, panel_segments[name]) for name, values in zip(ready, row)] for row in rows]
if not one_basis:
    limits = [[shown_limit([cell], output, mask=mask) for cell in row] for row in panel_maps]
elif per_row:
    limits = [[shown_limit(row, output, mask=mask)] * len(ready) for row in panel_maps]
else:
    limits = [[shown_limit(panel_maps[0], output, mask=mask)] * len(ready)] * len(rows)

scores = {}
with st.spinner("Scoring faithfulness (deletion and insertion curves)…"):
    for name, explanation in ready.items():
        for c in classes:
            scores[name, int(c)] = cached_faithfulness(cache, classifier, explanation, int(c))

sent: set[str] = set()  # the picture, the hover geometry and the style sheet: sent once per page
for row, class_id in enumerate(classes):
    columns = st.columns(len(ready) + 1)  # one set per row keeps the rows aligned
    label = f"{spec.class_title(class_id)} · p = {first.probs[class_id]:.3f}"
    columns[0].html(image_panel(prepared, title=label, sent=sent))
    for column, (name, explanation) in enumerate(ready.items(), start=1):
        score = scores[name, int(class_id)]
        columns[column].html(overlay_panel(
            prepared, rows[row][column - 1], limit=limits[row][column - 1], opacity=opacity,
            title=short_title(name) if row == 0 else "\u00a0", segments=panel_segments[name],
            colorbar=per_row or not one_basis, output=output, mask=mask,
            errors=explanation.class_error_map(int(class_id)), sent=sent))
        columns[column].caption(
            f"deletion {score.deletion_auc:.2f} (random {score.random_deletion_auc:.2f}) · insertion "
            f"{score.insertion_auc:.2f} (random {score.random_insertion_auc:.2f}) · additivity "
            f"{explanation.additivity_error:.0e}")

unit = map_unit(output, True)
if not one_basis:
    scale = "one per panel (pixel methods per pixel, superpixel methods per region: their units differ)"
elif per_row:
    scale = ", ".join(f"{spec.class_title(c)} ±{row[0]:.2g} {unit}" for c, row in zip(classes, limits))
else:
    scale = f"±{limits[0][0]:.2g} {unit} for the whole grid"
    st.html(colour_bar(limits[0][0], unit))
basis_note = (f" Pixel methods are summed over the same {int(basis.max()) + 1} superpixels." if basis is not None
              else "")
quantity = "probability" if output == "probability" else "log-odds"
st.caption(f"Red raises the class's {quantity}, blue lowers it; each region is coloured by its value; colour scale "
           f"{scale}, fitted so that no panel of the verdict's row saturates (other rows may). Hover for each "
           f"superpixel's value.{basis_note}" + hidden_note(
               {short_title(name): outside_share(values, mask) for name, values in zip(ready, rows[0])}
               if mask is not None else {}))

st.subheader("Ranking")
ranking = sorted(({
    "method": short_title(name),
    "deletion AUC ↓": round(float(np.mean([scores[name, int(c)].deletion_auc for c in classes])), 3),
    "insertion AUC ↑": round(float(np.mean([scores[name, int(c)].insertion_auc for c in classes])), 3),
    "random deletion": round(float(np.mean([scores[name, int(c)].random_deletion_auc for c in classes])), 3),
    "random insertion": round(float(np.mean([scores[name, int(c)].random_insertion_auc for c in classes])), 3),
    "additivity error": f"{ready[name].additivity_error:.1e}",
    "seconds": round(ready[name].seconds, 1),
} for name in ready), key=lambda r: r["deletion AUC ↓"] - r["insertion AUC ↑"])
st.dataframe(ranking, hide_index=True)
# On request: the chart's library is large, and loading it took seconds of a cached comparison's first visit.
if st.toggle(f"Show the deletion and insertion curves for {spec.class_title(classes[0])}", key=keys.COMPARE_CURVES):
    curves = go.Figure()
    for name in ready:
        score = scores[name, int(classes[0])]
        curves.add_trace(go.Scatter(x=score.fractions, y=score.deletion, name=f"{name} deletion"))
        curves.add_trace(go.Scatter(x=score.fractions, y=score.insertion, name=f"{name} insertion",
                                    line={"dash": "dot"}))
    score = scores[next(iter(ready)), int(classes[0])]
    curves.add_trace(go.Scatter(x=score.fractions, y=score.random_deletion, name="random deletion",
                                line={"color": "grey"}))
    curves.add_trace(go.Scatter(x=score.fractions, y=score.random_insertion, name="random insertion",
                                line={"color": "grey", "dash": "dot"}))
    curves.update_layout(xaxis_title="fraction of features removed / inserted", yaxis_title="probability",
                         height=380, margin={"t": 10})
    st.plotly_chart(curves, key="cmp_curves")

segments = superpixels_of(first.image_digest, prepared, 50)
if len(ready) > 1:
    st.subheader("Agreement between methods")
    matrix = agreement(ready, int(classes[0]), segments)
    st.html(agreement_table(list(ready), matrix))
    st.caption(f"Spearman rank correlation of per-superpixel attributions for {spec.class_title(classes[0])} "
               f"({int(segments.max()) + 1} SLIC superpixels).")

st.subheader("Downloads")
# Each file is made when its button is clicked (deferred): a cached grid's page does not build them every run.


def grid_file() -> bytes:
    shown = [[shown_map(values, segments, output, mask) for values, segments in row] for row in panel_maps]
    return grid_png(prepared, [(short_title(name), [row[i] for row in shown]) for i, name in enumerate(ready)],
                    [spec.class_title(c) for c in classes], [row[0] for row in limits], opacity=opacity,
                    unit=map_unit(output, True), colorbar=one_basis)


def archive_file() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        for name, explanation in ready.items():
            buffer = io.BytesIO()
            explanation.save(buffer)
            bundle.writestr(f"{spec.name}_{name}_{explanation.image_digest}.npz", buffer.getvalue())
    return archive.getvalue()


def values_file() -> str:
    values_csv = io.StringIO()
    writer = csv.writer(values_csv)
    writer.writerow(["method", "class", "superpixel", "value"])
    for name in ready:
        for row, class_id in enumerate(classes):
            for index, value in enumerate(segment_totals(raw_rows[row][list(ready).index(name)], segments)):
                writer.writerow([name, spec.class_names[class_id], index, f"{value:.6g}"])
    return values_csv.getvalue()


def scores_file() -> str:
    scores_csv = io.StringIO()
    writer = csv.writer(scores_csv)
    writer.writerow(["method", "class", "deletion_auc", "insertion_auc", "random_deletion_auc",
                     "random_insertion_auc", "additivity_error"])
    for (name, class_id), score in scores.items():
        writer.writerow([name, spec.class_names[class_id], f"{score.deletion_auc:.4f}", f"{score.insertion_auc:.4f}",
                         f"{score.random_deletion_auc:.4f}", f"{score.random_insertion_auc:.4f}",
                         f"{ready[name].additivity_error:.3g}"])
    return scores_csv.getvalue()


def report_file() -> bytes:
    from viz.report import build_report

    return build_report(cache, classifier, selection.image, ready, top_k=top_k,
                        accuracy=measured_accuracy(classifier), hide_background=hide_background)


a, b, c, d, e = st.columns(5)
a.download_button("Grid (PNG)", grid_file, file_name=f"{spec.name}_comparison.png", mime="image/png")
b.download_button("Explanations (.npz, zip)", archive_file, file_name=f"{spec.name}_explanations.zip",
                  mime="application/zip")
c.download_button("Per-superpixel values (CSV)", values_file, file_name=f"{spec.name}_values.csv", mime="text/csv")
d.download_button("Scores (CSV)", scores_file, file_name=f"{spec.name}_scores.csv", mime="text/csv")
e.download_button("Report (PDF)", report_file, file_name=f"{spec.name}_{selection.image.digest[:8]}_report.pdf",
                  mime="application/pdf", help="The image, verdict, these maps on one scale, the scores and "
                                                "parameters; for research use only, not a diagnosis.")
