"""Domain policies: what a model's kind of input means for the app, as data. Pages, helpers and the explainers read
these named fields (``policy.compute_automatically``, ``policy.head_mask`` …), never the kind itself, so a new kind
is one more entry in :data:`POLICIES` and a card can change one field of its kind's policy."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

InputKind = Literal["photo", "mri", "drawing"]
Fill = Literal["mean", "blur", "constant"]
Background = Literal["blurred", "samples", "black", "mean"]
Output = Literal["probability", "log-odds"]


@dataclass(frozen=True)
class DomainPolicy:
    """What follows from the kind of images a model was trained on."""

    # The domain's name: the samples' domain on the pickers ("imagenet: chelsea") and the key of the per-domain
    # choices (one remembered sample and one "compute automatically" switch per domain).
    name: str
    # What explainers.domain checks an input against (domain_warning): photo, mri or drawing.
    kind: InputKind
    # Whether the Explain page starts an explanation on every change. Off for clinical scans: the verdict comes at
    # once and each explanation (a job of minutes) waits for its button.
    compute_automatically: bool = True
    # Whether "Hide the background outside the head" applies (a head on black, found by a threshold).
    head_mask: bool = False
    # What a hidden superpixel shows by default: photos their mean colour; MRIs and digits black, their background
    # (a mean-coloured patch on a black scan is a bright blob the model reacts to).
    fill: Fill = "mean"
    # What "absent" means for DeepSHAP and expected gradients: blurred copies for photos (no detail), the other
    # bundled images of the domain for MRIs and digits (a typical other case).
    background: Background = "blurred"
    # The space explanations add up in unless asked otherwise (explainers.outputs).
    output: Output = "probability"
    sample_folder: str = "photos"  # under the samples folder (storage.folder("samples"))
    default_sample: str = ""  # the file stem shown first, e.g. "chelsea"; empty: the folder's first
    # The true label in a sample's file name: a regular expression whose first group is a code, and the codes'
    # class names (no codes: the group is the class name itself).
    label_pattern: str | None = None
    label_codes: Mapping[str, str] = field(default_factory=dict)

    def label_of(self, stem: str, class_names: tuple[str, ...]) -> str | None:
        """The class a file name says its image shows (e.g. "Te-gl_0010" → glioma), or None."""
        if self.label_pattern is None:
            return None
        match = re.search(self.label_pattern, stem)
        if match is None:
            return None
        code = match.group(1)
        label = self.label_codes.get(code) if self.label_codes else code
        return label if label in class_names else None


# Each kind's defaults; a card's ``domain`` section overrides fill, background and output.
POLICIES: dict[str, DomainPolicy] = {
    "photo": DomainPolicy(name="imagenet", kind="photo", sample_folder="photos", default_sample="chelsea"),
    "mri": DomainPolicy(
        name="mri",
        kind="mri",
        compute_automatically=False,
        head_mask=True,
        fill="constant",
        background="samples",
        # Saturated (p up to 1.0 in float32): on 6 bundled MRIs, Kernel SHAP maps of the log-odds ranked regions
        # better than maps of the probability, deletion area 0.230 against 0.246 and insertion 0.957 against
        # 0.897 (bench/output_space.md).
        output="log-odds",
        sample_folder="mri",
        default_sample="Te-gl_0010",
        label_pattern=r"^[A-Za-z]+-([a-z]{2})_",
        label_codes={"gl": "glioma", "me": "meningioma", "no": "notumor", "pi": "pituitary"},
    ),
    "drawing": DomainPolicy(
        name="digits",
        kind="drawing",
        fill="constant",
        background="samples",
        sample_folder="digits",
        default_sample="digit_7",
        label_pattern=r"^digit_(\d)$",
    ),
}


def policy_for(kind: str, **overrides: Any) -> DomainPolicy:
    """The policy of ``kind`` with the named fields a card sets; KeyError for an unknown kind."""
    return replace(POLICIES[kind], **overrides)
