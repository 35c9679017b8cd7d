"""Widgets built from a method's parameters declared as data (explainers.methods.Param), placed by
``Param.placement``, keyed by ui.keys."""

from __future__ import annotations

from typing import Any

import streamlit as st

from explainers.methods import Method, Param
from explainers.outputs import OUTPUT_HELP, OUTPUTS
from models.trust import trust_of
from ui import keys

# The methods the Compare page (and the Scans page's worklist) compare unless chosen otherwise.
COMPARE_DEFAULT_METHODS = ["partition", "permutation", "kernel", "deep", "gradient"]


def recommended_first(model: str, methods: list[str]) -> list[str]:
    """``methods`` with the model's recommended method (models.trust) first, added if it was not there."""
    trust = trust_of(model)
    if trust is None:
        return methods
    return [trust.recommended, *(name for name in methods if name != trust.recommended)]


def recommended_method(model: str, names: list[str]) -> int:
    """The index in ``names`` of the model's recommended method (the Explain page's default), else 0."""
    trust = trust_of(model)
    return names.index(trust.recommended) if trust is not None and trust.recommended in names else 0


def param_widget(param: Param, key: str, container: Any = st, on_change: Any = None) -> Any:
    label, extra = param.title, {"help": param.help, "key": key, "on_change": on_change}
    if param.kind == "choice":
        return container.selectbox(label, param.choices, index=param.choices.index(param.shown_default), **extra)
    if param.kind == "bool":
        return container.toggle(label, value=bool(param.shown_default), **extra)
    number = int if param.kind == "int" else float
    # A missing bound is an open range (Param.coerce checks none there either): a number input without it.
    low = None if param.low is None else number(param.low)
    high = None if param.high is None else number(param.high)
    step = number(param.step or (1 if param.kind == "int" else 0.1))
    if param.kind == "int" and param.placement == "main" and low is not None and high is not None:
        # the shared settings are sliders, as the budget is
        return container.slider(label, low, high, int(param.shown_default), step=step, **extra)
    return container.number_input(
        label, min_value=low, max_value=high, value=number(param.shown_default), step=step, **extra
    )


def method_params(method: Method, placement: str, container: Any = st) -> dict[str, Any]:
    """One control per parameter of the method placed at ``placement``; returns the chosen values."""
    return {
        param.name: param_widget(param, keys.param(method.name, param.name, param.placement), container)
        for param in method.params
        if param.placement == placement
    }


def chosen_settings(method: Method) -> tuple[int, dict[str, Any]]:
    """(budget, parameters) for a method as last chosen on the Explain page (its defaults otherwise)."""
    budget = int(st.session_state.get(keys.budget(method.name), method.default_budget))
    params = {
        param.name: st.session_state.get(keys.param(method.name, param.name, param.placement), param.shown_default)
        for param in method.params
    }
    return budget, params


def compare_settings(method: Method) -> tuple[int, dict[str, Any]]:
    """(budget, parameters) Compare runs ``method`` with: its own once changed there, else the Explain page's."""
    budget, params = chosen_settings(method)
    if not st.session_state.get(keys.compare_own(method.name)):
        return budget, params
    state = st.session_state
    return (
        int(state.get(keys.compare_budget(method.name), budget)),
        {name: state.get(keys.compare_param(method.name, name), value) for name, value in params.items()},
    )


def compare_settings_widgets(method: Method, container: Any = st) -> tuple[int, dict[str, Any]]:
    """Compare's budget and parameters for one method; until one is changed here they follow the Explain page."""
    if not st.session_state.get(keys.compare_own(method.name)):
        budget, params = chosen_settings(method)
        st.session_state[keys.compare_budget(method.name)] = budget
        for name, value in params.items():
            st.session_state[keys.compare_param(method.name, name)] = value

    def own() -> None:
        st.session_state[keys.compare_own(method.name)] = True

    columns = container.columns(3)
    if method.min_budget < method.max_budget:
        columns[0].slider(
            f"Budget ({method.budget_meaning})",
            method.min_budget,
            method.max_budget,
            method.default_budget,
            key=keys.compare_budget(method.name),
            on_change=own,
        )
    else:
        columns[0].caption(f"Budget: {method.min_budget} {method.budget_meaning} (fixed)")
    for index, param in enumerate(method.params, start=1):
        param_widget(param, keys.compare_param(method.name, param.name), columns[index % 3], on_change=own)
    return compare_settings(method)


def output_choice(spec: Any, container: Any = st) -> str:
    """The space the maps add up in for this model (its spec's default until changed; one key per model, so
    Explain and Compare ask for the same explanations)."""
    labels = {"probability": "Probability", "log-odds": "Log-odds"}
    return container.radio(
        "Values add up to",
        OUTPUTS,
        index=OUTPUTS.index(spec.policy.output),
        horizontal=True,
        format_func=labels.get,
        key=keys.output(spec.name),
        help=OUTPUT_HELP,
    )


def chosen_output(spec: Any) -> str:
    """The output space last chosen for this model (its default otherwise)."""
    return st.session_state.get(keys.output(spec.name), spec.policy.output)


def background_choice(spec: Any, container: Any = st) -> bool:
    """Where the model's domain policy has a head mask (MRIs), whether the maps leave out the background outside
    the head (off by default: on the
    bundled glioma Te-gl_0010, 11 % (Permutation SHAP) to 59 % (Partition SHAP) of a class's attribution lies
    there, measured with the default budgets, which a default should not hide; one key for Explain and Compare);
    other models always show everything."""
    if not spec.policy.head_mask:
        return False
    return container.toggle(
        "Hide the background outside the head",
        value=False,
        key=keys.HEAD_MASK,
        help="The maps leave out the black background around the head (found by a threshold "
        "and the largest region). The caption then says how much of each method's "
        "attribution lies there, so nothing is hidden silently.",
    )
