"""The Scans page's worklist sources beyond a widget: a PACS over DICOMweb (searched with filters, its instances
retrieved into the decode sandbox as they are listed) and writing a scan's results back to it; and keeping a new
worklist (a new one drops the previous selection)."""

from __future__ import annotations

import datetime as _dt
import time
from typing import Any

import streamlit as st

from explainers.pacs import Pacs, PacsConfig, PacsError, pacs_config
from explainers.worklist import Predictor, Scan, Worklist, WorklistError
from explainers.worklist_sources import from_pacs
from service.pacs_results import results_datasets
from ui import keys

PACS_SOURCE = "A PACS (DICOMweb)"


def keep_worklist(worklist: Worklist, key: Any) -> None:
    """The page's worklist from now on; the row selected in the previous one means nothing in this one."""
    st.session_state[keys.WORKLIST], st.session_state[keys.WORKLIST_KEY] = worklist, key
    for stale in (keys.WORKLIST_TABLE, keys.READ_VIEW):
        st.session_state.pop(stale, None)


def configured_pacs() -> PacsConfig | None:
    """The PACS from ``.streamlit/secrets.toml`` (``[pacs]`` url, username, password), else the environment
    ($EXPLAINERS_PACS_URL, $EXPLAINERS_PACS_USER, $EXPLAINERS_PACS_PASSWORD); None when there is none."""
    try:
        section = dict(st.secrets.get("pacs", {}))
    except Exception:  # noqa: BLE001 - st.secrets raises when there is no secrets file at all
        section = {}
    try:
        return pacs_config(section.get("url"), section.get("username"), section.get("password"))
    except PacsError as error:
        st.error(str(error))
        return None


@st.cache_resource(show_spinner=False)
def _pacs(config: PacsConfig) -> Pacs:
    return Pacs(config)


def pacs_worklist(spec: Any, config: PacsConfig, predictor: Predictor, container: Any) -> tuple[Any, Worklist | None]:
    """The search form and, once searched, the worklist of what it found (None until then); WorklistError in one
    sentence when the PACS cannot answer."""
    pacs = _pacs(config)
    with container.form("pacs_search", border=True):
        a, b, c, d = st.columns(4)
        since = a.date_input("Studies from", value=_dt.date.today() - _dt.timedelta(days=30), key="pacs_from")
        until = b.date_input("to", value=_dt.date.today(), key="pacs_to")
        modality = c.text_input("Modality", value="MR", key="pacs_modality", max_chars=16)
        words = d.text_input("Series description", key="pacs_description", max_chars=64)
        searched = st.form_submit_button(f"Search {config.address}", type="primary")
    filters = (
        since.strftime("%Y%m%d") if isinstance(since, _dt.date) else "",
        until.strftime("%Y%m%d") if isinstance(until, _dt.date) else "",
        modality.strip().upper(),
        words.strip(),
    )
    key = ("pacs", spec.name, config.address, filters)
    if not searched and st.session_state.get(keys.WORKLIST_KEY) != key:
        return key, None
    if st.session_state.get(keys.WORKLIST_KEY) == key and not searched:
        return key, st.session_state[keys.WORKLIST]
    try:
        with st.spinner(f"Searching {config.address} and retrieving its images…"):
            started = time.perf_counter()
            series = pacs.search(*filters)
            worklist = from_pacs(spec, pacs, series, predictor)
            worklist.notes.insert(
                0, f"{len(series)} series found on the PACS, listed in {time.perf_counter() - started:.1f} s."
            )
    except PacsError as error:
        raise WorklistError(str(error)) from None
    return key, worklist


def series_of(scan: Scan) -> str:
    """A PACS scan's series as the worklist shows it (its date and description: never a UID or a patient's data),
    so that the same picture in two studies can be told apart."""
    remote = scan.image.origin.remote if scan.image is not None else None
    if remote is None:
        return ""
    series = remote.instance.series
    return " · ".join(part for part in (series.date, series.description or series.modality) if part)


def write_back(scan: Scan, requests: list, cache: Any, classifier: Any, top_k: int) -> None:
    """A button that writes a PACS scan's results back into its study, once its Compare explanations are cached."""
    remote = scan.image.origin.remote if scan.image is not None else None
    if remote is None:
        return
    explanations = {request.method: cache.get(request) for request in requests}
    missing = [name for name, explanation in explanations.items() if explanation is None]
    clicked = st.button(
        "Write the results to the PACS",
        disabled=bool(missing),
        help="Into this scan's study, as new series: a Secondary Capture of the overlays, the PDF report and a "
        "Structured Report. "
        + (f"Explain it first (Compare, or Explain all): {len(missing)} explanations are missing." if missing else ""),
        key="pacs_write",
    )
    if not clicked:
        return
    started = time.perf_counter()
    try:
        with st.spinner("Writing the results to the PACS…"):
            image = scan.image.load() if scan.image is not None else None
            assert image is not None
            written = remote.pacs.store(
                results_datasets(cache, classifier, image, explanations, remote.instance, top_k=top_k)
            )
    except (PacsError, ValueError) as error:
        st.error(str(error))
        return
    st.success(
        f"{written} objects written to the scan's study in {time.perf_counter() - started:.1f} s: a Secondary "
        "Capture of the overlays, the PDF report and a Structured Report (research use, not a diagnosis)."
    )
