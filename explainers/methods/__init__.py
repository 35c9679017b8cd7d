"""The method registry: every explanation method behind one signature and one result type."""

from __future__ import annotations

from explainers.base import Method, Param, ParameterError, ProgressCallback
from explainers.methods import deep, exact, gradient, kernel, owen, partition, permutation

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
    explain=partition.explain_partition,
    params=partition.PARAMS,
    default_budget=300,
    min_budget=20,
    max_budget=5000,
    notes=("shap's masker splits the image into rectangles, so the segment count does not apply to it.",),
))

register(Method(
    name="permutation",
    title="Permutation SHAP (shap, superpixels)",
    summary="Antithetic permutations of SLIC superpixels; one permutation costs 2·S + 1 evaluations.",
    paper="Štrumbelj & Kononenko 2014, Explaining prediction models and individual predictions with feature "
          "contributions (shap's Permutation explainer)",
    explain=permutation.explain_permutation,
    params=permutation.PARAMS,
    uses_segments=True,
    default_budget=500,
    min_budget=5,
    max_budget=20_000,
))

register(Method(
    name="kernel",
    title="Kernel SHAP (superpixels)",
    summary="Weighted linear regression on sampled coalitions of SLIC superpixels (no L1 selection).",
    paper="Lundberg & Lee 2017, A Unified Approach to Interpreting Model Predictions",
    explain=kernel.explain_kernel,
    params=kernel.PARAMS,
    uses_segments=True,
    default_budget=500,
    min_budget=5,
    max_budget=20_000,
))

register(Method(
    name="exact",
    title="Exact Shapley values (superpixels)",
    summary="Every coalition of at most 14 superpixels evaluated: the reference for the sampling methods.",
    paper="Shapley 1953, A Value for n-Person Games",
    explain=exact.explain_exact,
    params=exact.PARAMS,
    uses_segments=True,
    budget_meaning="model evaluations, at least 2^segments",
    default_budget=4096,
    min_budget=4,
    max_budget=2 ** exact.MAX_PLAYERS,
    notes=(f"Needs 2^S evaluations for S superpixels, so it is offered up to {exact.MAX_PLAYERS} superpixels.",),
))

register(Method(
    name="owen",
    title="Owen values (superpixel hierarchy)",
    summary="Owen values over a tree of SLIC superpixels merged by adjacency and colour, refined where the "
            "output changes most; the values add up exactly at any budget.",
    paper="Owen 1977, Values of games with a priori unions; Lundberg & Lee 2017, A Unified Approach to "
          "Interpreting Model Predictions (shap's Partition explainer)",
    explain=owen.explain_owen,
    params=owen.PARAMS,
    uses_segments=True,
    default_budget=300,
    min_budget=10,
    max_budget=20_000,
    notes=("Unlike partition, whose rectangles ignore the segment count, the hierarchy is built from the "
           "superpixels: neighbours with similar colour merge first.",),
))

register(Method(
    name="deep",
    title="DeepSHAP (DeepLIFT rescale)",
    summary="DeepLIFT's rescale rule through the network, averaged over background references.",
    paper="Lundberg & Lee 2017 (DeepSHAP); Shrikumar et al. 2017, Learning Important Features Through "
          "Propagating Activation Differences",
    explain=deep.explain_deep,
    params=deep.PARAMS,
    unsupported=deep.unsupported_reason,
    budget_meaning="background references",
    default_budget=8,
    min_budget=1,
    max_budget=128,
))

register(Method(
    name="gradient",
    title="GradientSHAP (expected gradients)",
    summary="Gradients at random points between background references and the image, times the difference; "
            "optionally of an intermediate layer's input.",
    paper="Erion et al. 2021, Improving performance of deep learning models with axiomatic attribution priors "
          "and expected gradients (shap's GradientExplainer)",
    explain=gradient.explain_gradient,
    params=gradient.PARAMS,
    budget_meaning="samples",
    default_budget=64,
    min_budget=1,
    max_budget=2048,
))

__all__ = ["Method", "Param", "ParameterError", "ProgressCallback", "all_methods", "get_method", "register"]
