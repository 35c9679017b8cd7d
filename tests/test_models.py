"""The model registry: every entry's metadata, the real models' verdicts, and loading without a download."""

from __future__ import annotations

import urllib.request

import numpy as np
import pytest
import torch
import torchvision

from explainers.images import load_image
from models import ModelUnavailableError, UnknownModelError, all_specs, get_spec, list_samples, load_classifier

TORCHVISION = ("resnet18", "resnet50", "vgg16", "mobilenet_v3_large", "efficientnet_b0")


@pytest.mark.parametrize("spec", all_specs(), ids=lambda spec: spec.name)
def test_every_registered_model_has_complete_metadata(spec) -> None:
    assert spec.title and spec.card.task and spec.card.source and spec.card.licence and spec.preprocessing
    assert len(spec.class_names) == len(set(spec.class_names)) >= 2
    assert all(size > 0 for size in spec.input_size)
    reason = spec.missing_reason()
    assert reason is None or len(reason) > 20  # an unavailable model says why and what to do


def test_registry_names_and_unknown_model() -> None:
    names = [spec.name for spec in all_specs()]
    assert names[:3] == ["efficientnet_lite0", "brain_tumor_vgg16", "digits_cnn"]
    assert set(TORCHVISION) <= set(names)
    with pytest.raises(UnknownModelError, match="choose one of"):
        get_spec("resnet9000")


def test_offline_models_are_available() -> None:
    for name in ("efficientnet_lite0", "brain_tumor_vgg16", "digits_cnn"):
        assert get_spec(name).available, get_spec(name).missing_reason()


def test_efficientnet_has_the_published_size(efficientnet) -> None:
    network = efficientnet.module.network
    assert sum(p.numel() for p in network.parameters()) == 4_652_008


@pytest.mark.parametrize("photo, label, probability", [("chelsea", "Egyptian cat", 0.77), ("coffee", "espresso", 0.90)])
def test_efficientnet_recognises_the_photos(efficientnet, photo, label, probability) -> None:
    image = load_image(f"assets/samples/photos/{photo}.png").pixels
    probs = efficientnet.predict(efficientnet.prepare(image))[0]
    top = int(np.argmax(probs))
    assert efficientnet.class_names[top] == label
    assert probs[top] == pytest.approx(probability, abs=0.02)
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_tumour_model_classifies_every_sample_mri_by_its_file_name(tumour_model) -> None:
    samples = [s for s in list_samples() if s.domain == "mri"]
    assert len(samples) == 13
    images = np.stack([tumour_model.prepare(load_image(s.path).pixels) for s in samples])
    predicted = [tumour_model.class_names[i] for i in tumour_model.predict(images).argmax(axis=1)]
    assert predicted == [s.label for s in samples]


def test_digits_model_reads_every_sample_digit(digits_model) -> None:
    samples = [s for s in list_samples() if s.domain == "digits"]
    assert len(samples) == 10
    images = np.stack([digits_model.prepare(load_image(s.path).pixels) for s in samples])
    assert [str(i) for i in digits_model.predict(images).argmax(axis=1)] == [s.label for s in samples]


def test_batched_prediction_equals_one_by_one(digits_model) -> None:
    images = np.stack([digits_model.prepare(load_image(s.path).pixels) for s in list_samples() if s.domain == "digits"])
    together = digits_model.predict(images, batch_size=4)
    alone = np.concatenate([digits_model.predict(image) for image in images])
    np.testing.assert_allclose(together, alone, atol=1e-6)


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """A torch hub cache of our own, and any attempt to reach the network fails the test."""
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))

    def no_network(*args, **kwargs):
        raise AssertionError("a model tried to download")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    yield tmp_path / "hub" / "checkpoints"
    torch.hub.set_dir(previous)


def test_torchvision_model_without_weights_is_unavailable_and_names_the_file(empty_hub) -> None:
    spec = get_spec("resnet18")
    reason = spec.missing_reason()
    assert reason is not None and "resnet18-f37072fd.pth" in reason and str(empty_hub) in reason
    with pytest.raises(ModelUnavailableError, match="resnet18-f37072fd.pth"):
        load_classifier("resnet18")


def test_torchvision_model_loads_from_the_hub_cache_without_downloading(empty_hub, chelsea) -> None:
    # Stand-in weights with the real file name: the loading path is what is under test, offline.
    torch.manual_seed(1)
    reference = torchvision.models.resnet18(weights=None).eval()
    empty_hub.mkdir(parents=True)
    torch.save(reference.state_dict(), empty_hub / "resnet18-f37072fd.pth")
    assert get_spec("resnet18").available
    classifier = load_classifier("resnet18")
    assert classifier.prepare(chelsea).shape == (224, 224, 3)
    x = torch.rand(2, 3, 224, 224) * 255
    with torch.inference_mode():
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        expected = torch.softmax(reference((x / 255 - mean) / std), dim=1)
        np.testing.assert_allclose(classifier.module(x).numpy(), expected.numpy(), atol=1e-5)


def test_random_weights_build_every_torchvision_architecture_offline(empty_hub) -> None:
    classifier = load_classifier("mobilenet_v3_large", weights="random")
    assert classifier.weights_digest == "random"
    probs = classifier.predict(np.zeros((1, 224, 224, 3), dtype=np.uint8))
    assert probs.shape == (1, 1000) and probs.sum() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("name", ["efficientnet_lite0", "brain_tumor_vgg16", "digits_cnn"])
def test_no_in_place_operations(name) -> None:
    module = load_classifier(name, weights="random").module
    for layer in module.modules():
        assert not getattr(layer, "inplace", False), f"{name}: {layer} works in place"


def test_bfloat16_predict_agrees_with_float32_on_a_bundled_mri(tumour_model, monkeypatch) -> None:
    from models.device import DeviceError, cpu_bfloat16, cpu_bfloat16_native

    # Where the CPU lacks native bfloat16, autocast emulates it: slower, the same arithmetic, so it runs anyway.
    image = tumour_model.prepare(load_image("assets/samples/mri/Te-gl_0010.jpg").pixels)
    runtime, bfloat16 = tumour_model.runtime, tumour_model.bfloat16
    try:
        tumour_model.use_runtime("torch")
        tumour_model.bfloat16 = False
        full = tumour_model.predict(image)[0]
        tumour_model.bfloat16 = True
        half = tumour_model.predict(image)[0]
    finally:
        tumour_model.use_runtime(runtime)
        tumour_model.bfloat16 = bfloat16
    assert half.argmax() == full.argmax() and half.sum() == pytest.approx(1.0, abs=1e-3)
    assert np.abs(half - full).max() < 0.02  # BENCHMARKS.md: at most 0.001 over the 13 bundled MRIs
    monkeypatch.setenv("MODELS_PRECISION", "bfloat16")
    assert cpu_bfloat16(torch.device("cpu")) == cpu_bfloat16_native()
    assert not cpu_bfloat16(torch.device("meta"))  # only a CPU: a GPU has $EXPLAINERS_HALF
    monkeypatch.setenv("MODELS_PRECISION", "float8")
    with pytest.raises(DeviceError, match="float32 or bfloat16"):
        cpu_bfloat16(torch.device("cpu"))
