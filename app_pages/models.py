"""Models: every registered model, whether it can run here, and how to make it available."""

import streamlit as st

from models import all_specs

st.header("Models")
st.caption("Every model runs on this machine from weights that ship with the app or its packages; "
           "nothing is downloaded.")

specs = all_specs()
st.dataframe(
    [{
        "model": spec.title,
        "name": spec.name,
        "status": "available" if spec.available else "unavailable",
        "task": spec.task,
        "input": f"{spec.input_size[0]}×{spec.input_size[1]}",
        "classes": spec.num_classes,
        "licence": spec.licence,
    } for spec in specs],
    hide_index=True,
)

for spec in specs:
    reason = spec.missing_reason()
    with st.expander(f"{'✅' if reason is None else '⛔'} {spec.title}"):
        if reason is not None:
            st.warning(f"Unavailable: {reason}.")
        st.markdown(f"**Name** `{spec.name}`  \n**Task** {spec.task}  \n**Preprocessing** {spec.preprocessing}  \n"
                    f"**Source** {spec.source}  \n**Licence** {spec.licence}")
        shown = ", ".join(spec.class_names[:12]) + (" …" if spec.num_classes > 12 else "")
        st.caption(f"Classes: {shown}")
