"""Parsing a study file: YAML or JSON, with the line of every field (studies.reader then reads it field by field)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from storage.yaml_strict import Refused, strict_loader
from studies.schema import Problem, StudyError


def _field_path(parts: Sequence[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


# A study file is a page or two; anything this big is a mistake or an attack, and PyYAML is slow on it.
MAX_STUDY_BYTES = 1_000_000
# The example study nests four levels deep; PyYAML's composer recurses once per level.
MAX_DEPTH = 20


def _strict_loader() -> type:
    return strict_loader("study files", MAX_DEPTH, "the file nests deeper than {depth} levels; a study needs a few")


def _load_yaml(text: str) -> tuple[Any, Any]:
    """The document and its root node, through the strict loader (raises Refused or a YAMLError)."""
    loader = _strict_loader()(text)
    try:
        root = loader.get_single_node()
        if loader.first_anchor is not None:
            line, anchor = loader.first_anchor
            raise Refused(line, f"YAML anchors (&{anchor}) are not allowed in study files; write each value out")
        return (loader.construct_document(root) if root is not None else None), root
    finally:
        loader.dispose()


def _yaml_lines(root: Any) -> tuple[dict[str, int], list[tuple[str, int, int]]]:
    """Field path → line for every key and list item, and the keys given twice (path, line, first line).

    PyYAML keeps the last of two equal keys silently; a researcher would rather hear about it.
    """
    import yaml

    lines: dict[str, int] = {}
    duplicates: list[tuple[str, int, int]] = []

    def walk(node: Any, parts: tuple[str | int, ...]) -> None:  # at most MAX_DEPTH deep, aliases refused
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                line = key_node.start_mark.line + 1
                path = _field_path(parts + (key,))
                if key in seen:
                    duplicates.append((path, line, seen[key]))
                else:
                    seen[key] = line
                    lines[path] = line
                walk(value_node, parts + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines[_field_path(parts + (index,))] = item.start_mark.line + 1
                walk(item, parts + (index,))

    if root is not None:
        walk(root, ())
    return lines, duplicates


def _depth(data: Any) -> int:
    """How deeply lists and mappings nest (without recursion: a JSON file can nest a thousand levels)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_document(text: str, name: str, suffix: str) -> tuple[Any, dict[str, int], list[Problem]]:
    """The document, line numbers of its fields (where known) and problems found while parsing."""
    problems: list[Problem] = []
    if len(text) > MAX_STUDY_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_STUDY_BYTES:
        raise StudyError(
            [
                Problem(
                    name,
                    None,
                    "",
                    f"the file is over {MAX_STUDY_BYTES // 1_000_000} MB; a study file is a page or two of text",
                )
            ]
        )
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise StudyError(
                [Problem(name, error.lineno, "", f"the file is not valid JSON ({error.msg} at column {error.colno})")]
            ) from None
        except RecursionError:  # nested a thousand levels deep
            data, too_deep = None, True
        else:
            too_deep = _depth(data) > MAX_DEPTH
        if too_deep:
            raise StudyError(
                [Problem(name, None, "", f"the file nests deeper than {MAX_DEPTH} levels; a study needs a few")]
            )
        try:  # JSON is YAML, so PyYAML can often say where each field is; without it, fields are named only
            lines, _ = _yaml_lines(_load_yaml(text)[1])
        except Exception:  # noqa: BLE001 - line numbers are a courtesy; the JSON itself is valid
            lines = {}
        return data, lines, problems
    if suffix not in (".yaml", ".yml"):
        raise StudyError(
            [Problem(name, None, "", "the file is not a study file; write the study as .yaml, .yml or .json")]
        )
    try:
        import yaml
    except ImportError:
        raise StudyError(
            [
                Problem(
                    name,
                    None,
                    "",
                    "the file cannot be read because PyYAML is not installed; "
                    "install requirements.txt or write the study as JSON",
                )
            ]
        ) from None
    try:
        data, root = _load_yaml(text)
        lines, duplicates = _yaml_lines(root)
    except Refused as refused:
        raise StudyError([Problem(name, refused.line, "", refused.message)]) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        what = error.problem or error.context or "a syntax error"
        raise StudyError([Problem(name, line, "", f"the file is not valid YAML ({what})")]) from None
    except yaml.YAMLError as error:
        raise StudyError(
            [Problem(name, None, "", f"the file is not valid YAML ({' '.join(str(error).split())})")]
        ) from None
    for path, line, first in duplicates:
        problems.append(Problem(name, line, path, f"is given twice (first on line {first}); keep one"))
    return data, lines, problems
