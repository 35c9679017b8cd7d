"""The child that parses a text document a person brought (a model card, a study file) first, under the
sandbox's memory and time limits (:func:`storage.sandbox.probe`), before the server parses it with its own
stricter reader. YAML through :mod:`storage.yaml_strict`'s loader (no aliases, at most 64 levels deep); JSON
through the standard library. Light on purpose: it imports neither torch nor the model registry, so it starts in
a fraction of a second."""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64


def parse(text: str, arguments: dict[str, Any]) -> None:
    if str(arguments.get("suffix", ".yaml")) == ".json":
        json.loads(text)
        return
    from storage.yaml_strict import strict_loader

    loader = strict_loader("these files", MAX_DEPTH, "nested deeper than {depth} levels")(text)
    try:
        loader.get_single_data()
    finally:
        loader.dispose()


if __name__ == "__main__":
    from storage.sandbox import serve_parser

    serve_parser(parse)
