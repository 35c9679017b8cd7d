"""The child that parses a text document a person brought (a model card, a study file) first, under the
sandbox's memory and time limits (:func:`storage.sandbox.probe`), before the server parses it with its own
stricter reader. YAML through a SafeLoader that stops at the first alias (a "billion laughs" expands them without
end) and past 64 levels of nesting; JSON through the standard library. Light on purpose: it imports neither torch
nor the model registry, so it starts in a fraction of a second."""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64


class Refused(Exception):
    """An alias or nesting past MAX_DEPTH: the document is refused before it expands."""


def parse(text: str, arguments: dict[str, Any]) -> None:
    if str(arguments.get("suffix", ".yaml")) == ".json":
        json.loads(text)
        return
    import yaml

    class Strict(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                raise Refused("alias")
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise Refused("depth")
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    loader = Strict(text)
    try:
        loader.get_single_data()
    finally:
        loader.dispose()


if __name__ == "__main__":
    from storage.sandbox import serve_parser

    serve_parser(parse)
