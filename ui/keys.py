"""Every session-state key the pages and the controls share, in one place (tests set them too)."""

from __future__ import annotations

# The sidebar (app.py): shared by every page.
MODEL = "model_name"
SOURCE = "image_source"  # "Sample" or "Upload"
UPLOAD = "upload"
DECODED_UPLOADS = "_decoded_uploads"


def auto_compute(domain: str) -> str:
    """The Explain page's "compute automatically" switch, one per model domain."""
    return f"auto_compute_{domain}"


# The Scans page: where its scans come from, its worklist, filters, selection and "explain all" jobs.
WORKLIST_SOURCE = "worklist_source"
WORKLIST_FOLDER = "worklist_folder"
WORKLIST_UPLOADS = "worklist_uploads"
WORKLIST = "_worklist"
WORKLIST_KEY = "_worklist_key"
WORKLIST_CLASSES = "worklist_classes"
WORKLIST_DISAGREES = "worklist_disagrees"
WORKLIST_LOW = "worklist_low"
WORKLIST_UNEXPLAINED = "worklist_unexplained"
WORKLIST_TABLE = "worklist_table"
WORKLIST_JOBS = "_worklist_jobs"
WORKLIST_READ_FIRST = "worklist_read_first"  # second reader: each scan opens with the image alone
WORKLIST_UNREAD = "worklist_unread"
READER = "reader_name"  # the second reader's name, kept with their reads
READ_CLASS = "read_class"  # the read's widgets (one scan at a time)
READ_CONFIDENCE = "read_confidence"
READ_ERROR = "_read_error"
READ_VIEW = "_read_view"  # the opened scan's picture for the reader: (digest, pixels), decoded once
WORKLIST_INDEX = "worklist_index"  # the scan opened from the worklist (the sidebar's "Scans" source)
PENDING_PAGE = "_pending_page"  # a page to switch to, asked for by a button's callback
SLICE = "scan_slice"  # the frame (from 1) of a multi-frame DICOM upload
WINDOW = "scan_window"  # the display window of a DICOM upload, by name

# Explain.
EXPLAIN_METHOD = "explain_method"
TOP_K = "top_k"
OPACITY = "opacity"
SEED = "seed"
OUTLINES = "outlines"
HEAD_MASK = "hide_background"  # MRI models: the maps leave out the background outside the head (Explain, Compare)
EXPLAINED_CLASS = "explained_class"


def output(model: str) -> str:
    """The output space (probability or log-odds) chosen for a model."""
    return f"output_{model}"


# Compare.
COMPARE_METHODS = "compare_methods"
COMPARE_TOP_K = "compare_top_k"
COMPARE_OPACITY = "compare_opacity"
COMPARE_SUPERPIXELS = "compare_superpixels"
COMPARE_PER_ROW = "compare_per_row"
COMPARE_CURVES = "compare_curves"


def compare_budget(method: str) -> str:
    """Compare's own budget for a method (until it is changed there, the Explain page's)."""
    return f"compare_budget_{method}"


def compare_param(method: str, name: str) -> str:
    return f"compare_param_{method}_{name}"


def compare_own(method: str) -> str:
    """Set once a method's settings were changed on Compare: from then on they are its own."""
    return f"_compare_own_{method}"


# Gallery.
GALLERY_MODEL = "gallery_model"
GALLERY_IMAGE = "gallery_image"
GALLERY_METHOD = "gallery_method"
GALLERY_OPEN = "gallery_open"
GALLERY_OPACITY = "gallery_opacity"
GALLERY_DELETE = "gallery_delete"


def sample(domain: str) -> str:
    """The sample picker: one per model domain, each remembering its choice."""
    return f"sample_{domain}"


def budget(method: str) -> str:
    return f"budget_{method}"


def param(method: str, name: str, placement: str = "settings") -> str:
    """A method parameter's control: "main" ones sit beside the budget (e.g. ``segments_kernel``), the others
    in the method's settings (``param_kernel_fill``)."""
    return f"{name}_{method}" if placement == "main" else f"param_{method}_{name}"


# Settings kept across pages (ui.state.keep_settings): Streamlit forgets a widget's value when a page without it
# runs, so these are carried over on every run. (Pickers whose choices depend on the model or image are not.)
# The sidebar's model and source too: a button that opens another page (st.switch_page from app.py) ends the run
# that drew them, and Streamlit then dropped the chosen model (seen in Chromium: a scan opened in Compare from the
# Scans page came up under the default model).
KEPT = (
    MODEL,
    SOURCE,
    EXPLAIN_METHOD,
    TOP_K,
    OPACITY,
    SEED,
    OUTLINES,
    HEAD_MASK,
    COMPARE_METHODS,
    COMPARE_TOP_K,
    COMPARE_OPACITY,
    COMPARE_SUPERPIXELS,
    COMPARE_PER_ROW,
    COMPARE_CURVES,
    WORKLIST_SOURCE,
    WORKLIST_DISAGREES,
    WORKLIST_LOW,
    WORKLIST_UNEXPLAINED,
    WORKLIST_READ_FIRST,
    READER,
    GALLERY_OPACITY,
)
KEPT_PREFIXES = ("budget_", "param_", "output_", "auto_compute_", "compare_budget_", "compare_param_", "sample_")

# ui.state.fresh_slot: which model and image a page's placeholder last showed (the prefix, then the slot's name).
DRAWN_PREFIX = "drawn_"

# ui.compute: request keys this session cancelled (or whose job failed), which wait for a button.
STOPPED_JOBS = "stopped_jobs"
# ui.compute.release_others: the jobs each page's results slot waits for, in this session.
SLOT_JOBS = "slot_jobs"

# The Explain page's contrastive map: the class the verdict is contrasted with ("" : none).
CONTRAST = "contrast_against"
COMPARE_CONTRAST = "compare_contrast_against"  # Compare's contrast row (and the report it downloads)
