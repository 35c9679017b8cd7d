"""The study file's reader: it reads the parsed document field by field, names what each field should be, and
collects every problem as one sentence naming its line. Loading (studies.loading) and the checks against the
registries (studies.checks) both write their problems through it."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from studies.schema import Problem, field_line


def suggest(value: str, known: Sequence[str]) -> str:
    """'; did you mean "x"?' for the closest known name, else nothing."""
    close = difflib.get_close_matches(value, list(known), n=1)
    return f'; did you mean "{close[0]}"?' if close else ""


class Reader:
    """Reads the parsed document field by field, collecting every problem with its line."""

    def __init__(self, name: str, lines: Mapping[str, int]):
        self.name, self.lines = name, lines
        self.problems: list[Problem] = []

    def line(self, path: str) -> int | None:
        return field_line(self.lines, path)

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.name, self.line(path), path, message))

    def mapping(self, value: Any, path: str, fields: Sequence[str], what: str) -> dict[str, Any]:
        """The value as a mapping with only known fields (unknown ones are reported with a suggestion)."""
        if not isinstance(value, dict):
            self.problem(
                path,
                f"{'' if path else 'the study '}must be a mapping of fields ({', '.join(fields)}), "
                f"not {describe(value)}",
            )
            return {}
        for key in value:
            if str(key) not in fields:
                self.problem(
                    join(path, str(key)),
                    f"is not a field of {what} (the fields are {', '.join(fields)}){suggest(str(key), fields)}",
                )
        return {str(key): item for key, item in value.items() if str(key) in fields}

    def text(self, data: Mapping[str, Any], key: str, path: str, *, required: bool = False, default: str = "") -> str:
        if key not in data or data[key] is None:
            if required:
                self.problem(path, f"needs a {key}" if path else f"the study needs a {key}")
            return default
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.problem(join(path, key), f"must be text, not {describe(value)}")
            return default
        value = str(value).strip()
        if required and not value:
            self.problem(join(path, key), "is empty")
        return value

    def integer(
        self,
        data: Mapping[str, Any],
        key: str,
        path: str,
        default: int,
        low: int | None = None,
        high: int | None = None,
    ) -> int:
        if key not in data or data[key] is None:
            return default
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(join(path, key), f"must be a whole number, not {describe(value)}")
            return default
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.problem(join(path, key), f"must be {bounds}, not {value}")
            return default
        return value

    def boolean(self, data: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        if key not in data or data[key] is None:
            return default
        if not isinstance(data[key], bool):
            self.problem(join(path, key), f"must be true or false, not {describe(data[key])}")
            return default
        return data[key]

    def one_of(self, data: Mapping[str, Any], key: str, path: str, choices: Sequence[str], default: str) -> str:
        if key not in data or data[key] is None:
            return default
        value = str(data[key])
        if value not in choices:
            self.problem(join(path, key), f'is "{value}"; choose one of {", ".join(choices)}{suggest(value, choices)}')
            return default
        return value

    def sequence(self, data: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> list[Any]:
        if key not in data or data[key] is None:
            if required:
                self.problem(path, f"needs a list of {key}" if path else f"the study needs a list of {key}")
            return []
        value = data[key]
        if not isinstance(value, list):
            self.problem(join(path, key), f"must be a list, not {describe(value)}")
            return []
        if required and not value:
            self.problem(join(path, key), "is empty; give at least one")
        return value


def join(path: str, key: str | int) -> str:
    """The field path of ``key`` inside ``path``: "trials[2]", "trials[2].model"."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def clause(sentence: Any) -> str:
    """Another module's sentence, to continue ours: first letter lowered, final full stop dropped."""
    text = str(sentence).strip().rstrip(".")
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def describe(value: Any) -> str:
    """A value as a mistake names it: "nothing", "a list", '"seven"'."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f'"{value}"'
    return f"{value!r}"
