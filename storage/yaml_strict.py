"""The YAML loader for files people bring (model cards, study files): a SafeLoader that raises at the first alias,
before anything is expanded (a 1 KB "billion laughs" otherwise expands to gigabytes), and past a nesting depth.
Anchors alone expand nothing; the first one is remembered so a caller may refuse it too, once composed."""

from __future__ import annotations

from functools import cache
from typing import Any


class Refused(Exception):
    """A YAML construct the file may not use, with the line where it starts."""

    def __init__(self, line: int | None, message: str):
        super().__init__(message)
        self.line, self.message = line, message


@cache
def strict_loader(files: str, max_depth: int, nesting: str) -> type:
    """A loader class for ``files`` ("model cards"): its alias sentence names them; past ``max_depth`` levels it
    refuses with ``nesting`` (a sentence with ``{depth}`` in it)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def __init__(self, stream: str):
            super().__init__(stream)
            self.depth = 0
            self.first_anchor: tuple[int, str] | None = None

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            line = event.start_mark.line + 1
            if isinstance(event, yaml.AliasEvent):
                raise Refused(line, f"YAML aliases (*{event.anchor[:40]}) are not allowed in {files}")
            if getattr(event, "anchor", None) and self.first_anchor is None:
                self.first_anchor = (line, event.anchor[:40])
            self.depth += 1
            if self.depth > max_depth:
                raise Refused(line, nesting.format(depth=max_depth))
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return StrictLoader
