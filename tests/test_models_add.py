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
    return subprocess.run([sys.executable, "-m", "explainers", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_a_card_is_added_listed_and_explained_and_a_bad_one_refused(tmp_path: Path) -> None:
    env = dict(os.environ, EXPLAINERS_MODELS_DIR=str(tmp_path / "models"), EXPLAINERS_CACHE_DIR=str(tmp_path / "c"),
               MODELS_TUNE="0")
    source = tmp_path / "mine"
    source.mkdir()
    torch.manual_seed(0)
    save_file(torchvision.models.resnet18(weights=None, num_classes=3).state_dict(), str(source / "w.safetensors"))
    (source / "classes.txt").write_text("cat\ndog\nbird\n")
    (source / "card.yaml").write_text(
        "name: pets_resnet18\ntitle: Pets (ResNet-18, random)\nweights: w.safetensors\n"
        "architecture: torchvision/resnet18\nclasses_file: classes.txt\n"
        "preprocessing:\n  mean: [0.485, 0.456, 0.406]\n  std: [0.229, 0.224, 0.225]\n")
    added = cli(env, "models", "add", str(source / "card.yaml"))
    assert added.returncode == 0, added.stderr
    result = json.loads(added.stdout.strip().splitlines()[-1])
    assert result["added"] == "pets_resnet18" and result["classes"] == 3 and result["peak_bytes"] > 0
    assert (tmp_path / "models" / "pets_resnet18" / "w.safetensors").is_file()
    listed = cli(env, "models")
    assert "pets_resnet18\tavailable" in listed.stdout
    explained = cli(env, "explain", "--model", "pets_resnet18", "--image", str(CHELSEA), "--method", "kernel",
                    "--max-evals", "40", "--segments", "12", "--top-k", "1", "--quiet")
    assert explained.returncode == 0, explained.stderr
    assert json.loads(explained.stdout.strip().splitlines()[-1])["labels"][0] in {"cat", "dog", "bird"}
    again = cli(env, "models", "add", str(source / "card.yaml"))  # the name is taken now
    assert again.returncode == 2 and "exists already" in again.stderr
    # A refused card: exit 2, one sentence, nothing copied.
    (source / "bad.yaml").write_text("name: other\nweights: w.safetensors\narchitecture: torchvision/resnet18\n"
                                     "classes: [a, b, c, d, e]\n")
    refused = cli(env, "models", "add", str(source / "bad.yaml"))
    assert refused.returncode == 2 and "with 5 classes has (5," in refused.stderr
    assert not (tmp_path / "models" / "other").exists()
    # Weights changed after the check: unavailable, with the fix.
    installed = tmp_path / "models" / "pets_resnet18" / "w.safetensors"
    save_file(torchvision.models.resnet18(weights=None, num_classes=3).state_dict(), str(installed))
    changed = cli(env, "models")
    assert "pets_resnet18\tunavailable: its weights changed since they were checked" in changed.stdout
