"""Widgets built from a method's parameters declared as data (explainers.methods.Param), placed by
``Param.placement``, keyed by ui.keys."""

from __future__ import annotations

from typing import Any

import streamlit as st

from explainers.methods import Method, Param
from explainers.outputs import OUTPUT_HELP, OUTPUTS
from ui import keys


# The methods the Compare page (and the Scans page's worklist) compare unless chosen otherwise.
COMPARE_DEFAULT_METHODS = ["partition", "permutation", "kernel", "deep", "gradient"]


def param_widget(param: Param, key: str, container: Any = st) -> Any:
    label = param.title
    if param.kind == "choice":
        return container.selectbox(label, param.choices, index=param.choices.index(param.default),
                                   help=param.help, key=key)
    if param.kind == "bool":
        return container.toggle(label, value=bool(param.default), help=param.help, key=key)
    if param.kind == "int":
        if param.placement == "main":  # the shared settings are sliders, as the budget is
            return container.slider(label, int(param.low), int(param.high), int(param.default),
                                    step=int(param.step or 1), help=param.help, key=key)
        return container.number_input(label, min_value=int(param.low), max_value=int(param.high),
                                      value=int(param.default), step=int(param.step or 1), help=param.help,
                                      key=key)
    return container.number_input(label, min_value=float(param.low), max_value=float(param.high),
                                  value=float(param.default), step=float(param.step or 0.1), help=param.help,
                                  key=key)


def method_params(method: Method, placement: str, container: Any = st) -> dict[str, Any]:
    """One control per parameter of the method placed at ``placement``; returns the chosen values."""
    return {param.name: param_widget(param, keys.param(method.name, param.name, param.placement), container)
            for param in method.params if param.placement == placement}


def chosen_settings(method: Method) -> tuple[int, dict[str, Any]]:
    """(budget, parameters) for a method as last chosen on the Explain page (its defaults otherwise)."""
    budget = int(st.session_state.get(keys.budget(method.name), method.default_budget))
    params = {param.name: st.session_state.get(keys.param(method.name, param.name, param.placement), param.default)
              for param in method.params}
    return budget, params


def output_choice(spec: Any, container: Any = st) -> str:
    """The space the maps add up in for this model (its spec's default until changed; one key per model, so
    Explain and Compare ask for the same explanations)."""
    labels = {"probability": "Probability", "log-odds": "Log-odds"}
    return container.radio("Values add up to", OUTPUTS, index=OUTPUTS.index(spec.output), horizontal=True,
                           format_func=labels.get, key=keys.output(spec.name), help=OUTPUT_HELP)


def chosen_output(spec: Any) -> str:
    """The output space last chosen for this model (its default otherwise)."""
    return st.session_state.get(keys.output(spec.name), spec.output)
