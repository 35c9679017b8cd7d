"""The explanation methods: every module of this package that is not infrastructure holds one method and
registers it, so adding a method is adding one file here (or ``@register`` on a class anywhere)."""

from __future__ import annotations

import importlib
import pkgutil

from explainers.methods.base import Attribution, Method, PixelMethod, Solution, SuperpixelMethod
from explainers.methods.registry import all_methods, get_method, method_titles, register, unregister
from explainers.params import Param, ParameterError, superpixel_params
from explainers.progress import ProgressCallback

_INFRASTRUCTURE = {"base", "registry"}
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _INFRASTRUCTURE and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "Attribution",
    "Method",
    "Param",
    "ParameterError",
    "PixelMethod",
    "ProgressCallback",
    "Solution",
    "SuperpixelMethod",
    "all_methods",
    "get_method",
    "method_titles",
    "register",
    "superpixel_params",
    "unregister",
]
