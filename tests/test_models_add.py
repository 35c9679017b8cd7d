"""``python -m explainers models add CARD.yaml`` (issue 15, item 2): a checked card and its weights are copied into
$EXPLAINERS_MODELS_DIR, listed beside the built-in models, and explained with their digest in the cache key; a
refused one exits 2 with one sentence; changed weights make the model unavailable with the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
import torchvision
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
CHELSEA = ROOT / "assets" / "samples" / "photos" / "chelsea.png"


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "explainers", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_a_card_is_added_listed_and_explained_and_a_bad_one_refused(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        EXPLAINERS_MODELS_DIR=str(tmp_path / "models"),
        EXPLAINERS_CACHE_DIR=str(tmp_path / "c"),
        MODELS_TUNE="0",
    )
    source = tmp_path / "mine"
    source.mkdir()
    torch.manual_seed(0)
    save_file(torchvision.models.resnet18(weights=None, num_classes=3).state_dict(), str(source / "w.safetensors"))
    (source / "classes.txt").write_text("cat\ndog\nbird\n")
    (source / "card.yaml").write_text(
        "name: pets_resnet18\ntitle: Pets (ResNet-18, random)\nweights: w.safetensors\n"
        "architecture: torchvision/resnet18\nclasses_file: classes.txt\n"
        "preprocessing:\n  mean: [0.485, 0.456, 0.406]\n  std: [0.229, 0.224, 0.225]\n"
    )
    added = cli(env, "models", "add", str(source / "card.yaml"))
    assert added.returncode == 0, added.stderr
    result = json.loads(added.stdout.strip().splitlines()[-1])
    assert result["added"] == "pets_resnet18" and result["classes"] == 3 and result["peak_bytes"] > 0
    assert (tmp_path / "models" / "pets_resnet18" / "w.safetensors").is_file()
    listed = cli(env, "models")
    assert "pets_resnet18\tavailable" in listed.stdout
    explained = cli(
        env,
        "explain",
        "--model",
        "pets_resnet18",
        "--image",
        str(CHELSEA),
        "--method",
        "kernel",
        "--max-evals",
        "40",
        "--segments",
        "12",
        "--top-k",
        "1",
        "--quiet",
    )
    assert explained.returncode == 0, explained.stderr
    assert json.loads(explained.stdout.strip().splitlines()[-1])["labels"][0] in {"cat", "dog", "bird"}
    gradient = cli(
        env,
        "explain",
        "--model",
        "pets_resnet18",
        "--image",
        str(CHELSEA),
        "--method",
        "gradient",
        "--max-evals",
        "4",
        "--top-k",
        "1",
        "--quiet",
    )  # a torch model of one's own has gradients
    assert gradient.returncode == 0, gradient.stderr
    again = cli(env, "models", "add", str(source / "card.yaml"))  # the name is taken now
    assert again.returncode == 2 and "exists already" in again.stderr
    # A refused card: exit 2, one sentence, nothing copied.
    (source / "bad.yaml").write_text(
        "name: other\nweights: w.safetensors\narchitecture: torchvision/resnet18\nclasses: [a, b, c, d, e]\n"
    )
    refused = cli(env, "models", "add", str(source / "bad.yaml"))
    assert refused.returncode == 2 and "with 5 classes has (5," in refused.stderr
    assert not (tmp_path / "models" / "other").exists()
    # Weights changed after the check: unavailable, with the fix.
    installed = tmp_path / "models" / "pets_resnet18" / "w.safetensors"
    save_file(torchvision.models.resnet18(weights=None, num_classes=3).state_dict(), str(installed))
    changed = cli(env, "models")
    assert "pets_resnet18\tunavailable: its weights changed since they were checked" in changed.stdout


def test_an_onnx_export_of_the_digits_model_is_explained_by_model_agnostic_methods(tmp_path: Path) -> None:
    from models.digits import load_digits_cnn

    env = dict(
        os.environ,
        EXPLAINERS_MODELS_DIR=str(tmp_path / "models"),
        EXPLAINERS_CACHE_DIR=str(tmp_path / "c"),
        MODELS_TUNE="0",
    )
    source = tmp_path / "onnx"
    source.mkdir()
    torch.onnx.export(
        load_digits_cnn().eval(),
        (torch.zeros(1, 1, 28, 28),),
        str(source / "digits.onnx"),
        dynamo=False,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "n"}, "y": {0: "n"}},
    )
    (source / "card.yaml").write_text(
        "name: digits_onnx\ntitle: Digits (ONNX export)\nweights: digits.onnx\n"
        f"classes: [{', '.join(str(d) for d in range(10))}]\n"
        "preprocessing:\n  input_size: [28, 28]\n  colour: grayscale\n  scale: 255\n  mean: [0]\n  std: [1]\n"
        "domain:\n  input_kind: drawing\n  fill: constant\n  background: samples\n"
    )
    added = cli(env, "models", "add", str(source / "card.yaml"))
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout.strip().splitlines()[-1])["format"] == "onnx"
    seven = str(ROOT / "assets" / "samples" / "digits" / "digit_7.png")
    for method in ("kernel", "partition"):
        done = cli(
            env,
            "explain",
            "--model",
            "digits_onnx",
            "--image",
            seven,
            "--method",
            method,
            "--max-evals",
            "60",
            "--top-k",
            "1",
            "--quiet",
        )
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert result["labels"] == ["7"] and result["additivity_error"] < 1e-4, result
    deep = cli(env, "explain", "--model", "digits_onnx", "--image", seven, "--method", "deep", "--max-evals", "2")
    assert deep.returncode == 2 and "ONNX Runtime, without gradients" in deep.stderr


def test_the_models_page_adds_an_uploaded_card_and_refuses_a_pickle(tmp_path: Path, monkeypatch) -> None:
    import io

    from streamlit.testing.v1 import AppTest

    from models.digits import DigitsCNN

    monkeypatch.setenv("EXPLAINERS_MODELS_DIR", str(tmp_path / "models"))
    buffer = io.BytesIO()
    from safetensors.torch import save

    buffer.write(save(DigitsCNN().state_dict()))
    card = (
        "name: uploaded_digits\nweights: digits.safetensors\narchitecture: project/digits_cnn\n"
        f"classes: [{', '.join(str(d) for d in range(10))}]\n"
        "preprocessing:\n  input_size: [28, 28]\n  colour: grayscale\n"
    ).encode()
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    app.switch_page("app_pages/models.py").run()
    assert not app.exception, app.exception

    def submit(card_bytes: bytes, files: list[tuple[str, bytes]]) -> None:
        uploaders = {uploader.label: uploader for uploader in app.file_uploader}
        uploaders["Model card (.yaml)"].set_value(("card.yaml", card_bytes, "application/x-yaml"))
        uploaders["Its weights (.safetensors or .onnx) and classes file, if any"].set_value(
            [(name, data, "application/octet-stream") for name, data in files]
        )
        next(button for button in app.button if button.label == "Check and add").click().run()

    submit(card.replace(b"digits.safetensors", b"evil.safetensors"), [("evil.safetensors", b"\x80\x04\x95junk")])
    assert any("is a Python pickle" in error.value for error in app.error), [e.value for e in app.error]
    try:
        submit(card, [("digits.safetensors", buffer.getvalue())])
        assert any("uploaded_digits was checked" in message.value for message in app.success), (
            [e.value for e in app.error],
            [s.value for s in app.success],
        )
        assert (tmp_path / "models" / "uploaded_digits" / "digits.safetensors").is_file()
    finally:  # this test process's registry goes back to the built-in models for the other tests
        from models import installed, registry

        registry.restore({name: spec for name, spec in registry.registered().items() if name != "uploaded_digits"})
        installed._SEEN.discard("uploaded_digits")
