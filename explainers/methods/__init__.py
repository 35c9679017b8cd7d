"""The method registry: every explanation method behind one signature and one result type."""

from __future__ import annotations

from explainers.methods.base import Method, Param, ParameterError, ProgressCallback
from explainers.methods.partition import PARAMS as _PARTITION_PARAMS, explain_partition

_METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.name in _METHODS:
        raise ValueError(f"a method named {method.name!r} is already registered")
    _METHODS[method.name] = method
    return method


def all_methods() -> list[Method]:
    return list(_METHODS.values())


def get_method(name: str) -> Method:
    try:
        return _METHODS[name]
    except KeyError:
        raise ParameterError(f"Unknown method {name!r}; choose one of: {', '.join(_METHODS)}.") from None


register(Method(
    name="partition",
    title="Partition SHAP (shap, blur masker)",
    summary="Owen values over shap's hierarchy of image rectangles; hidden regions are blurred.",
    paper="Lundberg & Lee 2017, A Unified Approach to Interpreting Model Predictions (shap's Partition explainer)",
    explain=explain_partition,
    params=_PARTITION_PARAMS,
    default_budget=300,
    min_budget=20,
    max_budget=5000,
    notes=("shap's masker splits the image into rectangles, so the segment count does not apply to it.",),
))

__all__ = ["Method", "Param", "ParameterError", "ProgressCallback", "all_methods", "get_method", "register"]
