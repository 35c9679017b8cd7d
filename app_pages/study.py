"""A participant's page of a user study, opened by the link ``?study=<id>`` (app.py then shows nothing else).

Consent, an anonymous id to resume with, then the trials one at a time in the participant's randomised order,
blinded (the method is never named). Explanations come only from the cache; each trial's answers are stored
the moment it is submitted.
"""

import streamlit as st

from studies import (
    AnswerError,
    Participant,
    Study,
    StudyFacts,
    is_ready,
    load_facts,
    normalise_id,
    questions_for,
    reads_first,
    study_explanation,
    trial_image,
)
from ui.compute import get_cache
from ui.study import PID_PARAM, STUDY_PARAM, answer_key, echoed, find_study, get_store, question_widget
from viz.panels import image_panel, overlay_panel, shown_limit

# No ensure_navigation(): app.py alone opens this page (the link is the app's root URL), and the buttons act in
# callbacks, before the script runs, so that no rerun can drop a click.
NOT_OPEN = "This study is not open yet; please try again later."

study_id = st.query_params.get(STUDY_PARAM, "")
found = find_study(study_id)
if found is None:
    shown = echoed(study_id)  # never the link's text as it came: st.info renders Markdown
    st.info(
        (f"There is no study called “{shown}” here" if shown else "There is no study with that link")
        + "; please check the link you were given."
    )
    st.stop()
# Names that are never None, for the callbacks below (mypy does not carry a check into a function).
study: Study = found
st.title(study.title)
cache = get_cache()
stored_facts = load_facts(study, cache)
if stored_facts is None or not is_ready(study, cache).ready:
    st.info(NOT_OPEN)
    st.stop()
facts: StudyFacts = stored_facts
store = get_store()


def remember(participant_id: str) -> None:
    st.session_state[f"study_pid_{study.id}"] = participant_id
    st.query_params[PID_PARAM] = participant_id  # a reload (or the same link later) resumes


def resume() -> None:
    typed = (st.session_state.get("study_resume_id") or "").strip()
    if typed:
        remember(normalise_id(typed))


participant_id = st.query_params.get(PID_PARAM) or st.session_state.get(f"study_pid_{study.id}")
known = store.get_participant(study.id, participant_id) if participant_id else None
if participant_id and known is None:
    shown = echoed(normalise_id(participant_id), "participant")
    st.warning(f"There is no participant {shown or 'with that id'} in this study; check the id, or start afresh below.")
    del st.query_params[PID_PARAM]
    st.session_state.pop(f"study_pid_{study.id}", None)

if known is None:
    if st.session_state.get(f"study_declined_{study.id}"):
        st.info(
            "Thank you for your time. You have not taken part, and nothing about you was recorded; you may "
            "close this page."
        )
        st.stop()
    st.markdown(study.consent)
    agree, decline = st.columns(2)
    agree.button(
        "I agree, start the study",
        type="primary",
        key="study_consent",
        on_click=lambda: remember(store.create_participant(study, facts).id),
    )
    decline.button(
        "I do not agree",
        key="study_decline",
        on_click=lambda: st.session_state.update({f"study_declined_{study.id}": True}),
    )
    with st.expander("Taken part before? Resume with your participant id"):
        st.text_input("Participant id", key="study_resume_id", placeholder="e.g. K7Q2M9XD")
        st.button("Resume", key="study_resume", on_click=resume)
    st.stop()
participant: Participant = known

progress = store.progress(participant.id)
next_position = progress.next_position
if next_position is None:  # finished
    st.success("You have answered every image. Thank you for taking part!")
    st.caption(f"Your participant id is **{participant.id}**; quote it if you want your answers deleted.")
    st.stop()
position: int = next_position

planned = participant.plan[position]
st.caption(f"Your participant id is **{participant.id}**; enter it on this study's page to resume.")
st.subheader(f"Image {position + 1} of {progress.total}")
st.progress(progress.done / progress.total)
if study.instructions:
    with st.expander("Instructions", expanded=position == 0):
        st.markdown(study.instructions)

explanation = study_explanation(cache, planned)
if planned.explained and explanation is None:  # the cache lost it since is_ready: never compute here
    st.info(NOT_OPEN)
    st.stop()
store.mark_shown(participant.id, position)  # the trial's clock starts at its first showing, kept across reloads
image = trial_image(study, planned)
image_column, explanation_column = st.columns(2)
sent: set[str] = set()  # the picture and style sheet, sent once per page
image_column.html(image_panel(image, title="The image", sent=sent))
if reads_first(study, planned) and not store.read_recorded(participant.id, position):
    # Read first: the participant's own read, with the image alone, is stored before the explanation appears.
    def record_read() -> None:
        read = questions_for(study, planned, "read")
        answers = {question.id: st.session_state.get(answer_key(planned, question)) for question in read}
        try:
            store.record_read(study, participant.id, position, answers)
        except AnswerError as error:
            st.session_state["study_answer_error"] = str(error)

    explanation_column.info("Your own read first: the explanation appears once you have answered.")
    with st.form(f"study_read_{position}"):
        for question in questions_for(study, planned, "read"):
            question_widget(question, planned)
        error = st.session_state.pop("study_answer_error", None)
        if error:
            st.error(error)
        st.form_submit_button("Record my read", type="primary", on_click=record_read)
    st.stop()
if explanation is not None:
    values = explanation.values[0]
    title = "Explanation" + (f" of “{planned.class_shown}”" if planned.reveal_class else "")
    # Every method drawn per pixel (no superpixel outlines or per-region hover that would tell the methods apart).
    explanation_column.html(
        overlay_panel(
            image,
            values,
            limit=shown_limit([(values, None)], explanation.output),
            output=explanation.output,
            title=title,
            sent=sent,
        )
    )
    explanation_column.caption("Red areas pushed the model towards the class, blue areas away from it.")

questions = questions_for(study, planned, "rest")  # every question, but a read-first trial's read


def submit() -> None:
    """Stores the trial's answers in one transaction; the next run shows the next trial (or why not)."""
    answers = {question.id: st.session_state.get(answer_key(planned, question)) for question in questions}
    try:
        store.record_trial_answers(study, participant.id, position, answers)
    except AnswerError as error:
        st.session_state["study_answer_error"] = str(error)


with st.form(f"study_trial_{position}"):
    for question in questions:
        question_widget(question, planned)
    error = st.session_state.pop("study_answer_error", None)
    if error:
        st.error(error)
    st.form_submit_button("Submit and continue", type="primary", on_click=submit)
