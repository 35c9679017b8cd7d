"""The contrastive map under an explanation: "why the verdict rather than B", drawn from the explanation's
stored evaluations (explainers.contrast), with no model call."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from explainers.contrast import REPLAYABLE, Contrast, ContrastError, contrast_of
from explainers.explanation import Explanation
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
            sent=sent,
        )
    )
    container.caption(
        f"Red pushes towards {title} and away from {other}, blue the other way. The map plus its base value "
        f"({contrast.base_value:+.2f}, every superpixel hidden) adds up to log p({title}) − log p({other}) = "
        f"{contrast.total:+.2f} for the whole image (gap {contrast.additivity_error:.1e}); no model evaluation."
    )
