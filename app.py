"""SHAP Image Studio: entry point. Run with ``streamlit run app.py`` (see README's Quick start).

The model and image pickers live in this sidebar so that every page shares them. A participant's link
(``?study=<id>``) gets the study page alone: no sidebar, no navigation, none of the researcher's controls.
The pages sit in ``app_pages/``, not ``pages/``: Streamlit treats a folder named ``pages`` as a legacy
multipage app, whose first visit to a page's URL runs that page alone, without this file (see README).
"""

import logging
import uuid

import streamlit as st

from explainers import formats
from explainers.images import MAX_FILE_BYTES
from models import all_specs, default_sample, get_spec, samples_for
from storage.folders import ROOT
from ui import keys
from ui.access import require_sign_in, sign_out_button
from ui.compute import get_cache, warm_engine
from ui.state import available_models, current_selection, keep_settings, opened_scan, step_scan, uploaded_scan
from ui.study import participant_link_requested

# The favicon is a file of ours: a ":material/…:" page icon makes the browser fetch it from fonts.gstatic.com.
ICON = str(ROOT / "assets" / "icon.png")
log = logging.getLogger("shap_image_studio")


def run_page(page: st.Page) -> None:
    """Runs a page; an error of ours shows one sentence and an id, the traceback goes to the server's log."""
    try:
        page.run()
    except Exception:  # Streamlit's stop and rerun are not Exceptions, so they pass through
        error_id = uuid.uuid4().hex[:8]
        log.exception("error %s on page %s", error_id, getattr(page, "title", "?"))
        st.error(
            f"Something went wrong on our side (error {error_id}); the details are in the server's log. "
            "Reloading the page usually helps."
        )


if participant_link_requested():
    st.set_page_config(page_title="Study", page_icon=ICON, layout="centered", initial_sidebar_state="collapsed")
    run_page(st.navigation([st.Page("app_pages/study.py", title="Study", default=True)], position="hidden"))
    st.stop()

st.set_page_config(page_title="SHAP Image Studio", page_icon=ICON, layout="wide")
user = require_sign_in()
keep_settings()  # a page's settings survive visits to the other pages
warm_engine(tuple(spec.name for spec in available_models()[:1]))  # the default model, on the workers

pages = st.navigation(
    [
        st.Page("app_pages/explain.py", title="Explain", default=True),
        st.Page("app_pages/compare.py", title="Compare"),
        st.Page("app_pages/scans.py", title="Scans"),
        st.Page("app_pages/gallery.py", title="Gallery"),
        st.Page("app_pages/models.py", title="Models"),
        st.Page("app_pages/study_results.py", title="Study results"),
    ]
)


with st.sidebar:
    st.title("SHAP Image Studio")
    choices = [spec.name for spec in available_models()]
    st.session_state.setdefault(keys.MODEL, choices[0])
    st.selectbox("Model", choices, key=keys.MODEL, format_func=lambda name: get_spec(name).title)
    unavailable = len(all_specs()) - len(choices)
    if unavailable:
        st.caption(f"{unavailable} more models need weights on this machine: see the Models page.")
    spec = get_spec(st.session_state[keys.MODEL])
    # A second reader on Scans sees no sample, label or preview here before their read (ui/reads.py).
    reading_first = bool(st.session_state.get(keys.WORKLIST_READ_FIRST))
    if reading_first and pages.title == "Scans":
        st.caption("Read first is on: the image picker is hidden so that no label or verdict shows before a read.")
    else:
        st.radio(
            "Image",
            ["Sample", "Upload", "Scans"],
            key=keys.SOURCE,
            horizontal=True,
            help="Scans: the scan opened from the Scans page's worklist, with previous and next.",
        )
        if st.session_state[keys.SOURCE] == "Scans":
            opened = opened_scan()
            if opened is not None:
                worklist, index = opened
                readable = [scan.index for scan in worklist.scans if scan.image is not None]
                place = readable.index(index) + 1 if index in readable else 0
                if reading_first:  # the next scan opens on Scans, with the image alone, not with its verdict
                    st.caption(f"{place} of {len(readable)} in the worklist; open the next one from Scans.")
                else:
                    left, right = st.columns(2)
                    left.button("◀ Previous", on_click=step_scan, args=(-1,), key="scan_previous", width="stretch")
                    right.button("Next ▶", on_click=step_scan, args=(1,), key="scan_next", width="stretch")
                    st.caption(f"{place} of {len(readable)} in the worklist")
        elif st.session_state[keys.SOURCE] == "Sample":
            # One remembered sample per model domain: a new model starts on a sample of its own kind
            # (an MRI for the tumour model, a digit for digits) and switching back restores the last choice.
            samples = {sample.name: sample for sample in samples_for(spec)}
            st.selectbox(
                "Sample image",
                list(samples),
                index=list(samples).index(default_sample(spec).name),
                key=keys.sample(spec.policy.name),
                format_func=lambda name: f"{samples[name].domain}: {samples[name].title}",
            )
        else:
            st.file_uploader(
                f"{formats.listed(formats.pictures())} up to {MAX_FILE_BYTES // 2**20} MB, or a "
                f"{formats.listed(formats.scans())} scan",
                type=list(formats.extensions()),
                key=keys.UPLOAD,
            )
            scan = uploaded_scan()
            if scan is not None:  # a DICOM scan: its slice and display window
                if scan.frames > 1:
                    st.slider("Slice", 1, scan.frames, 1, key=keys.SLICE)
                st.selectbox(
                    "Window",
                    [window.name for window in scan.windows()],
                    key=keys.WINDOW,
                    help="The file's own window when it has one; an automatic one (the 0.5th to 99.5th "
                    "percentile) for MR, which has no fixed presets; presets for CT.",
                )
                summary = scan.summary
                st.caption(
                    f"DICOM {summary['modality']}, {summary['size']} pixels, {summary['frames']} "
                    f"frame{'s' * (summary['frames'] > 1)}. Nothing from its header is shown or kept."
                )
        selection = current_selection()
        if selection.error:
            st.warning(selection.error)
        elif selection.image is not None:
            st.image(selection.image.pixels, caption=selection.image_label, width="stretch")
    st.caption("Everything runs on this machine; no image leaves it.")
    if get_cache().warning:  # read-only or full: one sentence, on every page until the server restarts
        st.warning(get_cache().warning)
    sign_out_button(user)

pending = st.session_state.pop(keys.PENDING_PAGE, None)
if pending is not None:  # a button asked for another page (a callback cannot switch pages itself)
    st.switch_page(pending)
run_page(pages)
