"""The contrastive map under an explanation: "why the verdict rather than B", drawn from the explanation's
stored evaluations (explainers.contrast), with no model call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import streamlit as st

from explainers.contrast import REPLAYABLE, Contrast, ContrastError, contrast_of
from explainers.explanation import Explanation
from service.compare import short_title
from ui import keys
from viz.panels import overlay_panel, shown_limit

NONE = -1


def _identity(explanation: Explanation) -> str:
    """What a contrast depends on: the explanation's evaluations, method, settings and seed."""
    import hashlib

    assert explanation.evaluated is not None and explanation.evaluated_probs is not None
    digest = hashlib.sha256(explanation.evaluated.tobytes() + explanation.evaluated_probs.tobytes())
    return f"{explanation.method}:{explanation.seed}:{sorted(explanation.params.items())}:{digest.hexdigest()[:24]}"


@st.cache_data(show_spinner=False, max_entries=64)
def _contrast(identity: str, a: int, b: int, _explanation: Explanation) -> Contrast:
    """The contrast once per explanation and pair (the replayed solve takes up to a second; every rerun of the
    page would otherwise pay it again)."""
    return contrast_of(_explanation, a, b)


def contrast_section(
    explanation: Explanation, spec: Any, image: np.ndarray, container: Any, opacity: float, sent: set[str]
) -> None:
    """A class picker and, once a class is picked, the map of log p(verdict) − log p(class) beside its caption.
    Nothing for a method whose explanations keep no evaluations (the pixel methods, Owen)."""
    if explanation.method not in REPLAYABLE or explanation.evaluated_classes is None:
        return
    verdict = int(explanation.classes[0])
    others = [int(c) for c in explanation.evaluated_classes if int(c) != verdict]
    title = spec.class_title(spec.class_names[verdict])
    against = container.selectbox(
        f"Why {title} rather than…",
        [NONE, *others],
        format_func=lambda c: "(no contrast)" if c == NONE else spec.class_title(spec.class_names[c]),
        key=keys.CONTRAST,
        help="The map of log p(verdict) − log p(the other class), from this explanation's own evaluations (no "
        "model call): red regions push the model towards the verdict and away from the other class.",
    )
    if against == NONE:
        return
    try:
        contrast = _contrast(_identity(explanation), verdict, int(against), explanation)
    except ContrastError as error:
        container.info(str(error))
        return
    other = spec.class_title(spec.class_names[int(against)])
    limit = shown_limit([(contrast.values, explanation.segments)], "log-odds")
    column = container.columns(3)[0]
    column.html(
        overlay_panel(
            image,
            contrast.values,
            limit=limit,
            opacity=opacity,
            title=f"Why {title} rather than {other}",
            segments=explanation.segments,
            output="log-odds",
            unit="log-ratio per region",
            sent=sent,
        )
    )
    container.caption(
        f"Red pushes towards {title} and away from {other}, blue the other way. The map plus its base value "
        f"({contrast.base_value:+.2f}, every superpixel hidden) adds up to log p({title}) − log p({other}) = "
        f"{contrast.total:+.2f} for the whole image (gap {contrast.additivity_error:.1e}); no model evaluation."
    )


def contrast_row(
    explanations: Mapping[str, Explanation], spec: Any, image: np.ndarray, opacity: float, sent: set[str], key: str
) -> int | None:
    """Compare's contrast: one class picker, then a row of maps of log p(verdict) − log p(class) on one scale,
    one per method that keeps its evaluations (the others say why not). Returns the class picked, or None."""
    replayable = {
        name: explanation
        for name, explanation in explanations.items()
        if name in REPLAYABLE and explanation.evaluated_classes is not None
    }
    if not replayable:
        st.caption(
            "Contrastive maps (why the verdict rather than another class) are drawn from the evaluations of "
            f"{', '.join(REPLAYABLE)}; add one of them to this comparison to see one."
        )
        return None
    first = next(iter(replayable.values()))
    verdict = int(first.classes[0])
    title = spec.class_title(spec.class_names[verdict])
    stored = first.evaluated_classes
    assert stored is not None  # kept by every replayable explanation (checked above)
    others = [int(c) for c in stored if int(c) != verdict]
    against = st.selectbox(
        f"Why {title} rather than…",
        [NONE, *others],
        format_func=lambda c: "(no contrast)" if c == NONE else spec.class_title(spec.class_names[c]),
        key=key,
        help="Maps of log p(verdict) − log p(the other class) from each explanation's own evaluations (no model "
        "call), on one scale: red regions push the model towards the verdict and away from the other class.",
    )
    if against == NONE:
        return None
    contrasts, refused = {}, {}
    for name, explanation in replayable.items():
        try:
            contrasts[name] = _contrast(_identity(explanation), verdict, int(against), explanation)
        except ContrastError as error:
            refused[name] = str(error)
    other = spec.class_title(spec.class_names[int(against)])
    if not contrasts:
        st.info(next(iter(refused.values())))
        return int(against)
    limit = shown_limit([(c.values, explanations[name].segments) for name, c in contrasts.items()], "log-odds")
    columns = st.columns(len(explanations) + 1)
    columns[0].markdown(f"**Why {title} rather than {other}**")
    for index, name in enumerate(explanations, start=1):
        if name not in contrasts:
            reason = refused.get(name, "it keeps no evaluations of its own to draw one from")
            columns[index].caption(f"{short_title(name)}: no contrastive map ({reason.rstrip('.')}).")
            continue
        columns[index].html(
            overlay_panel(
                image,
                contrasts[name].values,
                limit=limit,
                opacity=opacity,
                title=short_title(name),
                segments=explanations[name].segments,
                output="log-odds",
                unit="log-ratio per region",
                sent=sent,
            )
        )
        columns[index].caption(f"adds up within {contrasts[name].additivity_error:.1e}")
    total = next(iter(contrasts.values())).total
    st.caption(
        f"Red pushes towards {title} and away from {other}, blue the other way, on one scale (±{limit:.3g} "
        f"log-ratio per region). For the whole image log p({title}) − log p({other}) = {total:+.2f}; drawn from "
        "the explanations' own evaluations, with no model call."
    )
    return int(against)
