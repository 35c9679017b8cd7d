"""The head mask of an MRI slice: it covers the head and none of the image's border on every bundled MRI, and the
Explain page hides the background with it (saying how much of the attribution lies there) unless switched off."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from explainers.images import load_image
from explainers.masks import head_mask, outside_share

ROOT = Path(__file__).resolve().parents[1]
MRIS = sorted((ROOT / "assets" / "samples" / "mri").glob("*.jpg"))


def test_the_mask_covers_the_head_and_never_the_border_on_every_bundled_mri() -> None:
    assert len(MRIS) == 13
    for path in MRIS:
        pixels = load_image(path).pixels
        mask = head_mask(pixels)
        assert mask is not None and mask.shape == pixels.shape[:2], path.name
        assert 0.3 <= mask.mean() <= 0.8, (path.name, mask.mean())
        border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
        assert border.mean() < 0.05, path.name
        centre = mask[mask.shape[0] // 3 : 2 * mask.shape[0] // 3, mask.shape[1] // 3 : 2 * mask.shape[1] // 3]
        assert centre.mean() > 0.95, path.name  # the brain, ventricles and lesions included


def test_a_flat_image_has_no_mask_and_the_outside_share_adds_up() -> None:
    assert head_mask(np.zeros((40, 40, 3), np.uint8)) is None
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    values = np.ones((4, 4))
    assert outside_share(values, mask) == 12 / 16 and outside_share(np.zeros((4, 4)), mask) == 0.0


def test_the_explain_page_hides_the_background_of_an_mri_when_asked_and_says_what_it_held() -> None:
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    for key, value in {
        "model_name": "brain_tumor_vgg16",
        "explain_method": "kernel",
        "budget_kernel": 20,
        "segments_kernel": 12,
        "auto_compute_mri": True,
        "top_k": 1,
        "hide_background": True,
    }.items():
        app.session_state[key] = value
    app.run()
    assert not app.exception and not app.error, (app.exception, [e.value for e in app.error])
    captions = " ".join(c.value for c in app.caption)
    assert "The background outside the head is hidden; it holds" in captions
    assert "log-odds per region" in captions  # the tumour model's maps: log-odds, coloured per region
    overlays = [h.proto.body for h in app.get("html") if 'class="sx-hover' in h.proto.body]
    assert len(overlays) == 1 and "log-odds per region" in overlays[0]
    app.toggle(key="hide_background").set_value(False).run()
    assert "outside the head is hidden" not in " ".join(c.value for c in app.caption)
