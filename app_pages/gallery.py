"""Gallery: the cached explanations this user may see (their own and the samples'; all of them on an open,
single-user app), filterable by model, image and method; opens without computing; deletes an entry."""

from collections.abc import Callable

import streamlit as st

from models import UnknownModelError, get_spec
from ui import keys
from ui.access import signed_in_user
from ui.compute import get_cache
from viz.panels import image_panel, overlay_panel, shown_limit

st.header("Gallery")
cache, user = get_cache(), signed_in_user()
entries = [entry for entry in cache.entries() if entry.visible_to(user)]
if user is None:
    stats = cache.stats()
    st.caption(
        f"{stats['entries']} cached explanations, {stats['bytes'] / 2**20:.1f} MB in {stats['folder']} "
        "(shared with the command line; set EXPLAINERS_CACHE_DIR to move it)."
    )
else:
    st.caption(f"{len(entries)} cached explanations: yours and the bundled samples'. Other users' are not listed.")
deleted = st.session_state.pop(keys.GALLERY_DELETE, None)
if deleted:
    st.success(f"Deleted {deleted}.")
if not entries:
    st.info(
        "Nothing is cached yet: explanations computed on the Explain or Compare pages, or with "
        "`python -m explainers explain`, appear here."
    )
    st.stop()

left, middle, right = st.columns(3)
model = left.selectbox("Model", ["all"] + sorted({e.model for e in entries}), key=keys.GALLERY_MODEL)
images = sorted({e.image_name for e in entries if model in ("all", e.model)})
image = middle.selectbox("Image", ["all"] + images, key=keys.GALLERY_IMAGE)
method = right.selectbox("Method", ["all"] + sorted({e.method for e in entries}), key=keys.GALLERY_METHOD)
shown = [
    e for e in entries if model in ("all", e.model) and method in ("all", e.method) and image in ("all", e.image_name)
]
st.dataframe(
    [
        {
            "model": e.model,
            "image": e.image_name,
            "method": e.method,
            "budget": e.request.get("max_evals"),
            "seed": e.request.get("seed"),
            "seconds": round(e.seconds, 1),
            "size (kB)": round(e.bytes / 1024, 1),
        }
        for e in shown
    ],
    hide_index=True,
)
if not shown:
    st.stop()

labels = {e.key: f"{e.model} · {e.image_name} · {e.method} · budget {e.request.get('max_evals')}" for e in shown}
key = st.selectbox("Open", list(labels), format_func=labels.__getitem__, key=keys.GALLERY_OPEN)
entry = next(entry for entry in shown if entry.key == key)
if user is None or not entry.shared:  # a sample's entry is everyone's: only an open app's user removes it
    if st.button(
        "Delete this entry",
        key="gallery_delete_button",
        help="Removes it from the cache on this machine; it is computed again when asked for.",
    ):
        if cache.delete(key) or cache.get_by_key(key) is None:
            st.session_state[keys.GALLERY_DELETE] = labels[key]
            st.session_state.pop(keys.GALLERY_OPEN, None)
            st.rerun()
        st.error(cache.warning or "This entry could not be deleted; try again.")
explanation = cache.get_by_key(key)
if explanation is None:
    st.warning("This entry could not be read and was removed from the cache; compute it again.")
    st.stop()
opacity = st.slider("Opacity", 0.0, 1.0, 0.7, 0.05, key=keys.GALLERY_OPACITY)
in_words: Callable[[str], str]
try:  # class names in words where the model is still registered ("no tumour", not "notumor")
    in_words = get_spec(explanation.model).class_title
except UnknownModelError:
    in_words = str
limit = shown_limit([(values, explanation.segments) for values in explanation.values], explanation.output)
columns = st.columns(min(len(explanation.classes), 3) + 1)
sent: set[str] = set()  # the picture and style sheet, sent once per page
columns[0].html(image_panel(explanation.image, title="image", sent=sent))
for index, class_id in enumerate(explanation.classes[:3]):
    columns[index + 1].html(
        overlay_panel(
            explanation.image,
            explanation.values[index],
            limit=limit,
            opacity=opacity,
            title=f"{in_words(explanation.class_names[index])} · p = {explanation.probs[class_id]:.3f}",
            segments=explanation.segments,
            output=explanation.output,
            sent=sent,
        )
    )
st.caption(
    f"{explanation.method} on {explanation.model}: {explanation.n_evals} model evaluations, "
    f"{explanation.seconds:.1f} s when computed, additivity error {explanation.additivity_error:.1e}."
)
