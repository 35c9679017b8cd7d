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


def trust_rows(trust: Any | None, titles: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """The card's lines from bench.trust's measurements (models.trust): the recommended method and why, and
    which methods fail the randomisation check (``titles``: the methods' titles by name)."""
    if trust is None:
        return []

    def title(name: str) -> str:
        return (titles or {}).get(name, name)

    failing = [title(name) for name, row in trust.methods.items() if not row.passes]
    return [
        ("Recommended method", f"{title(trust.recommended)}: it {trust.why} (measured {trust.measured})."),
        (
            "Randomisation check",
            ("fails for " + ", ".join(failing) + ": their maps barely change when the model's top layer is noise")
            if failing
            else f"every measured method passes ({len(trust.methods)})",
        ),
    ]


def card_rows(
    spec: Any,
    accuracy: Any | None = None,
    weights_digest: str | None = None,
    trust: Any | None = None,
    titles: dict[str, str] | None = None,
) -> list[tuple[str, str]]:
    rows = [
        ("Intended use", spec.card.intended_use or "not stated"),
        ("Classes", classes_in_words(spec)),
        ("Weights", spec.card.source + (f" (digest {weights_digest})" if weights_digest else "")),
        ("Training data", spec.card.training_data or "not stated"),
        ("Accuracy here", accuracy_text(spec, accuracy)),
        ("Input", spec.preprocessing),
        ("Licence", spec.card.licence),
    ]
    rows += trust_rows(trust, titles)
    if spec.card.clinical:
        rows.append(("Notice", RESEARCH_NOTICE))
    return rows


def card_markdown(
    spec: Any,
    accuracy: Any | None = None,
    weights_digest: str | None = None,
    trust: Any | None = None,
    titles: dict[str, str] | None = None,
) -> str:
    rows = card_rows(spec, accuracy, weights_digest, trust, titles)
    return "  \n".join(f"**{heading}** {text}" for heading, text in rows)
