"""A model's card as rows of (heading, text): one source for the Models page, the card beside the verdict and the
report. ``spec`` is a ``models.ModelSpec`` (typed loosely: viz does not import models)."""

from __future__ import annotations

from typing import Any

RESEARCH_NOTICE = "For research use only; not a diagnosis."
OUT_OF_DOMAIN = "but this input is not what it was trained on"


def verdict_text(model: str, verdict: str, probability: str, in_domain: bool, markdown: bool = True) -> str:
    """The verdict in one line: "**model** says **verdict** (probability)"; out of its domain, muted: "model
    says verdict (probability), but this input is not what it was trained on", unbolded and grey (the warning
    goes first)."""
    if in_domain:
        return (
            f"**{model}** says **{verdict}** ({probability})" if markdown else f"{model} says {verdict} ({probability})"
        )
    muted = f"{model} says {verdict} ({probability}), {OUT_OF_DOMAIN}"
    return f":gray[{muted}]" if markdown else muted


def classes_in_words(spec: Any, limit: int = 12) -> str:
    titles = list(spec.class_titles)
    return ", ".join(titles[:limit]) + (f" … ({len(titles)} in all)" if len(titles) > limit else "")


def accuracy_text(spec: Any, accuracy: Any | None) -> str:
    """The measured accuracy in words, per class where there are few classes."""
    if accuracy is None:
        return "not measured: the model cannot run here"
    if not accuracy.total:
        return "not measured: no bundled sample of this model's domain carries a label"
    text = f"{accuracy} on the bundled labelled samples"
    if len(accuracy.per_class) <= 10:
        text += (
            " ("
            + ", ".join(
                f"{spec.class_title(name)} {right}/{seen}" for name, (right, seen) in sorted(accuracy.per_class.items())
            )
            + ")"
        )
    return text + "; a handful of images, not a validation"


def card_rows(spec: Any, accuracy: Any | None = None, weights_digest: str | None = None) -> list[tuple[str, str]]:
    rows = [
        ("Intended use", spec.card.intended_use or "not stated"),
        ("Classes", classes_in_words(spec)),
        ("Weights", spec.card.source + (f" (digest {weights_digest})" if weights_digest else "")),
        ("Training data", spec.card.training_data or "not stated"),
        ("Accuracy here", accuracy_text(spec, accuracy)),
        ("Input", spec.preprocessing),
        ("Licence", spec.card.licence),
    ]
    if spec.card.clinical:
        rows.append(("Notice", RESEARCH_NOTICE))
    return rows


def card_markdown(spec: Any, accuracy: Any | None = None, weights_digest: str | None = None) -> str:
    return "  \n".join(f"**{heading}** {text}" for heading, text in card_rows(spec, accuracy, weights_digest))
