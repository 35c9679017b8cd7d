"""A method's settings as the user last chose them on the Explain page (its defaults otherwise)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from explainers.methods import get_method


def method_settings(name: str) -> tuple[int, dict[str, Any]]:
    """(budget, parameters) for a method, read from the Explain page's widgets when they exist."""
    method = get_method(name)
    budget = int(st.session_state.get(f"budget_{name}", method.default_budget))
    params = {param.name: st.session_state.get(f"param_{name}_{param.name}", param.default)
              for param in method.params if param.name != "segments"}
    if method.uses_segments:
        params["segments"] = int(st.session_state.get(f"segments_{name}", method.param("segments").default))
    return budget, params
