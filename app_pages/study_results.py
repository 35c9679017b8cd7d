"""Study results for the researcher: locked by a password; then participants, per-condition answers with 95%
intervals, forward-simulation accuracy, time per trial, the participant link and the CSV export."""

import pandas as pd
import streamlit as st

import storage
from studies import NO_EXPLANATION, StudyError, answers_csv, configured_password, is_ready, results_access, summarise
from ui.access import checked_password
from ui.compute import get_cache
from ui.study import get_store, participant_url, read_study, study_files
from viz.study_plots import accuracy_figure, completion_figure, questions_figure, time_figure

st.header("Study results")

if configured_password(st.secrets) is None:
    access = results_access(None, st.secrets)
    st.warning(access.message)
    st.stop()
given = st.text_input("Results password", type="password", key="study_password")
if not given:
    st.info(results_access(given, st.secrets).message)
    st.stop()
# Each new password typed is one attempt, slowed and limited per client (ui.access); a rerun with the same
# password is not another attempt.
checked = st.session_state.get("study_password_checked")
if checked is None or checked[0] != given:
    attempt = results_access(given, st.secrets)
    granted, limited = checked_password(given, lambda _: attempt.granted)
    checked = (given, granted, limited or attempt.message)
    st.session_state["study_password_checked"] = checked
if not checked[1]:
    st.error(checked[2] if "Too many" in checked[2] else results_access(given, st.secrets).message)
    st.stop()

files = study_files()
if not files:
    st.info(f"There are no study files in {storage.folder('studies')}; see README's “User studies”.")
    st.stop()
study_id = st.selectbox(
    "Study", list(files), key="study_results_study", format_func=lambda name: f"{name} ({files[name].name})"
)
try:
    study = read_study(files[study_id])
except StudyError as error:
    st.error(str(error))
    st.stop()

readiness = is_ready(study, get_cache())
st.markdown(
    f"**{study.title}**: {len(study.trials)} trials; conditions "
    + ", ".join("no explanation" if c == NO_EXPLANATION else c for c in study.conditions)
    + "."
)
if readiness.ready:
    st.success(readiness.message + " Share this link with participants:")
else:
    st.warning(readiness.message.split("; run:")[0] + ". Participants see “not open yet” until you run:")
    st.code(f"python -m explainers study precompute {files[study_id]}", language="bash")
    st.caption("The participant link, for when it is open:")
st.code(participant_url(study), language=None)

store = get_store()
results = summarise(study, store)
started, finished = results["participants"]["started"], results["participants"]["finished"]
columns = st.columns(3)
columns[0].metric("Participants", started)
columns[1].metric("Finished", finished)
columns[2].metric("Trials answered", sum(row["done"] for row in results["participants"]["rows"]))
if not started:
    st.info("Nobody has taken part yet.")
    st.stop()

st.plotly_chart(completion_figure(results), key="study_completion")
st.plotly_chart(questions_figure(results), key="study_questions")
left, right = st.columns(2)
left.plotly_chart(accuracy_figure(results), key="study_accuracy")
right.plotly_chart(time_figure(results), key="study_time")
with st.expander("The numbers"):
    st.dataframe(pd.DataFrame(results["questions"]), hide_index=True)
    st.dataframe(pd.DataFrame(results["accuracy"]), hide_index=True)
    st.dataframe(pd.DataFrame(results["time"]), hide_index=True)
st.download_button(
    "Download the answers (CSV, one row per answer)",
    answers_csv(store, study.id),
    file_name=f"{study.id}_answers.csv",
    mime="text/csv",
    key="study_download",
)
