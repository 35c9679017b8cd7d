"""Widgets built from a method's parameters declared as data (explainers.methods.Param)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from explainers.methods import Method, Param


def param_widget(param: Param, key: str) -> Any:
    if param.kind == "choice":
        return st.selectbox(param.name, param.choices, index=param.choices.index(param.default), help=param.help,
                            key=key)
    if param.kind == "bool":
        return st.toggle(param.name, value=bool(param.default), help=param.help, key=key)
    if param.kind == "int":
        return st.number_input(param.name, min_value=int(param.low), max_value=int(param.high),
                               value=int(param.default), step=int(param.step or 1), help=param.help, key=key)
    return st.number_input(param.name, min_value=float(param.low), max_value=float(param.high),
                           value=float(param.default), step=float(param.step or 0.1), help=param.help, key=key)


def method_params(method: Method, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """One control per parameter of the method (but those in ``skip``); returns the chosen values."""
    return {param.name: param_widget(param, key=f"param_{method.name}_{param.name}")
            for param in method.params if param.name not in skip}
