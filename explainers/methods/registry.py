"""The one method registry: ``@register`` on a Method subclass in its own file adds it everywhere (the
pages' choices, ``python -m explainers methods``, ``explain --method``, the request's validation)."""

from __future__ import annotations

from typing import TypeVar

from explainers.methods.base import Method
from explainers.params import ParameterError

_METHODS: dict[str, Method] = {}
M = TypeVar("M", bound=type[Method])


def register(cls: M) -> M:
    """Class decorator: registers one instance of ``cls`` under ``cls.name`` (a duplicate name is an error)."""
    if cls.name in _METHODS:
        raise ValueError(f"a method named {cls.name!r} is already registered")
    if type(cls.version) is not int or cls.version < 1:  # part of every cache key: a plain, positive int
        raise ValueError(f"the method {cls.name!r} needs a positive integer version, not {cls.version!r}")
    _METHODS[cls.name] = cls()
    return cls


def unregister(name: str) -> None:
    """Removes a method (for tests that register one of their own)."""
    _METHODS.pop(name, None)


def all_methods() -> list[Method]:
    """Every registered method, in their ``order``, then by name."""
    return sorted(_METHODS.values(), key=lambda method: (method.order, method.name))


def method_titles() -> dict[str, str]:
    """Every registered method's title by name (for text that names methods)."""
    return {method.name: method.title for method in all_methods()}


def get_method(name: str) -> Method:
    try:
        return _METHODS[name]
    except KeyError:
        known = ", ".join(method.name for method in all_methods())
        raise ParameterError(f"Unknown method {name!r}; choose one of: {known}.") from None
