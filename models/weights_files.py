"""A user's model file, judged before anything loads it: what it is by its bytes (never by its name alone), and
one sentence when it must be refused.

Refused outright, whatever the name says: pickles (``.pt``, ``.pth``, ``.bin``, ``.ckpt``: unpickling runs code,
and ``weights_only=True`` had remote-code and memory-corruption bugs, CVE-2025-32434 and CVE-2026-24747), zip
archives of pickles (torch.save's format), TorchScript and ``.pt2`` archives (code), files over MAX_FILE_BYTES,
safetensors files whose header is over MAX_HEADER_BYTES or malformed, and ONNX graphs with external data (whose
paths have been a path-traversal source, CVE-2024-27318 and later) or operators outside the standard domains
(``com.microsoft``'s PyOp can call Python). What passes is read later by safetensors or ONNX, in a child process
with a memory limit.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

MAX_FILE_BYTES = 600 * 2**20  # VGG-16's weights are 528 MB; anything larger is refused
MAX_HEADER_BYTES = 16 * 2**20  # a safetensors header (JSON); ResNet-50's is 30 KB
STANDARD_DOMAINS = {"", "ai.onnx", "ai.onnx.ml"}
SAFETENSORS_DTYPES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}
Format = Literal["safetensors", "onnx"]


class RefusedFile(ValueError):
    """A model file that is not loaded; the message is one sentence."""


@dataclass(frozen=True)
class CheckedFile:
    path: Path
    format: Format
    size: int
    tensors: int  # tensors in a safetensors file, initializers in an ONNX graph


def _head(path: Path, count: int) -> bytes:
    with path.open("rb") as stream:
        return stream.read(count)


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    """A little-endian header length that fits the file, then the header's opening brace. (Its first byte may
    well be 0x80, like a pickle's: a header of 896 bytes begins 80 03.)"""
    return len(head) >= 9 and head[8:9] == b"{" and 8 + struct.unpack("<Q", head[:8])[0] <= size


def _refuse_code(path: Path, head: bytes) -> None:
    """Pickles and archives of code, recognised by their bytes."""
    if head[:1] == b"\x80" and head[1:2] in {bytes([p]) for p in range(2, 6)}:
        raise RefusedFile(
            f"{path.name} is a Python pickle, which runs code when loaded; save the weights as "
            "safetensors (safetensors.torch.save_file(model.state_dict(), …)) instead."
        )
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile:
            names = []
        if any(name.endswith("archive_format") for name in names):
            kind = "a .pt2 program archive, which holds code"
        elif any("/code/" in name or name.endswith("constants.pkl") for name in names):
            kind = "a TorchScript archive, which holds code"
        elif any(name.endswith(".pkl") for name in names):
            kind = "a zip of pickles (torch.save's format), which runs code when loaded"
        else:
            kind = "a zip archive, not a model file"
        raise RefusedFile(f"{path.name} is {kind}; save the weights as safetensors instead.")


def check_safetensors(path: Path, size: int) -> CheckedFile:
    """The header of a safetensors file, read alone and checked: its length, its JSON, and that every tensor's
    dtype, shape and byte range fit the file exactly."""
    if size < 8:
        raise RefusedFile(f"{path.name} is too short to be a safetensors file.")
    (length,) = struct.unpack("<Q", _head(path, 8))
    if length > MAX_HEADER_BYTES:
        raise RefusedFile(
            f"{path.name} declares a safetensors header of {length:,} bytes, over the limit of "
            f"{MAX_HEADER_BYTES // 2**20} MB; it is not loaded."
        )
    if 8 + length > size:
        raise RefusedFile(f"{path.name} is truncated: its safetensors header runs past the end of the file.")
    with path.open("rb") as stream:
        stream.seek(8)
        raw = stream.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise RefusedFile(f"{path.name} has a malformed safetensors header (not JSON).") from None
    if not isinstance(header, dict):
        raise RefusedFile(f"{path.name} has a malformed safetensors header (not a JSON object).")
    header.pop("__metadata__", None)
    data, ranges = size - 8 - length, []
    for name, entry in header.items():
        try:
            dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
            count = 1
            for dim in shape:
                if not isinstance(dim, int) or dim < 0:
                    raise ValueError
                count *= dim
            if (
                dtype not in SAFETENSORS_DTYPES
                or not (isinstance(begin, int) and isinstance(end, int))
                or not 0 <= begin <= end <= data
                or end - begin != count * SAFETENSORS_DTYPES[dtype]
            ):
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise RefusedFile(f"{path.name} has a malformed safetensors header (tensor {str(name)[:60]!r}).") from None
        ranges.append((begin, end))
    covered = 0
    for begin, end in sorted(ranges):
        if begin != covered:
            raise RefusedFile(f"{path.name} has a malformed safetensors header (its tensors overlap or leave gaps).")
        covered = end
    if covered != data:
        raise RefusedFile(f"{path.name} has a malformed safetensors header (its tensors do not fill the file).")
    return CheckedFile(path, "safetensors", size, len(ranges))


def check_onnx(path: Path, size: int) -> CheckedFile:
    """An ONNX graph read without its external data, refused when it has any or uses operators outside the
    standard domains (nested graphs and functions included)."""
    import onnx
    from onnx import TensorProto

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - any parse failure is the file's fault, told in a sentence
        raise RefusedFile(f"{path.name} is not a readable ONNX graph.") from None
    for opset in model.opset_import:
        if opset.domain not in STANDARD_DOMAINS:
            raise RefusedFile(
                f"{path.name} uses operators of the domain {opset.domain[:60]!r}, outside ONNX's "
                "standard ones; it is not loaded."
            )

    def graphs(graph):
        yield graph
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.g.node or attribute.g.initializer:
                    yield from graphs(attribute.g)
                for sub in attribute.graphs:
                    yield from graphs(sub)

    tensors = 0
    for graph in graphs(model.graph):
        for node in graph.node:
            if node.domain not in STANDARD_DOMAINS:
                raise RefusedFile(
                    f"{path.name} uses the operator {node.domain[:40]}.{node.op_type[:40]}, outside "
                    "ONNX's standard domains; it is not loaded."
                )
        for tensor in graph.initializer:
            tensors += 1
            if tensor.data_location == TensorProto.EXTERNAL or len(tensor.external_data):
                raise RefusedFile(
                    f"{path.name} keeps weights in external data files, which this app does not "
                    "read; save the graph with its weights inside (onnx.save(…, "
                    "save_as_external_data=False))."
                )
    for function in model.functions:
        if function.domain not in STANDARD_DOMAINS or any(n.domain not in STANDARD_DOMAINS for n in function.node):
            raise RefusedFile(f"{path.name} defines functions outside ONNX's standard domains; it is not loaded.")
    return CheckedFile(path, "onnx", size, tensors)


def check_weights_file(path: Path | str) -> CheckedFile:
    """The file's format, or RefusedFile with one sentence; nothing of it is loaded as a model here."""
    path = Path(path)
    if path.is_symlink() or not path.is_file():
        raise RefusedFile(f"{path.name} is not a regular file.")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise RefusedFile(f"{path.name} is {size / 2**20:.0f} MB, over the limit of {MAX_FILE_BYTES // 2**20} MB.")
    head = _head(path, 16)
    suffix = path.suffix.lower()
    if not (suffix == ".safetensors" and _looks_like_safetensors(head, size)):
        _refuse_code(path, head)
    if suffix == ".safetensors":
        return check_safetensors(path, size)
    if suffix == ".onnx":
        return check_onnx(path, size)
    if suffix in {".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pt2", ".ptl", ".torchscript"}:
        raise RefusedFile(f"{path.name} is a PyTorch file that can hold code; save the weights as safetensors.")
    raise RefusedFile(f"{path.name} is neither .safetensors nor .onnx, the two formats this app loads.")


@lru_cache(maxsize=32)
def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]
