"""Another library's error text inside one of our sentences."""

from __future__ import annotations

# Enough to name what went wrong; a library's message can be a page long (a traceback, a dump of the input).
ONE_LINE_LIMIT = 200


def one_line(error: BaseException, limit: int = ONE_LINE_LIMIT) -> str:
    """The exception's text on one line, without a final full stop (ours ends the sentence), cut at ``limit``
    characters; its type's name when it has no text."""
    text = " ".join(str(error).split()).rstrip(".") or type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
