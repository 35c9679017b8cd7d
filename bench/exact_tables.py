"""Exact games for the accuracy benchmark: v(z) for every coalition z of 12 to 16 SLIC superpixels.

A 16-superpixel game is 65 536 model evaluations: 19 minutes of EfficientNet-Lite0 and hours of the
tumour VGG16 on 2 CPU cores. The tables are therefore computed once (on a GPU where one is at hand) and
stored in ``bench/data/``; ``load_game`` checks a stored table against the CPU model on random coalitions
before the benchmark trusts it, and computes a missing one on the CPU.

    python -m bench.exact_tables prepare DIR     # CPU: images, superpixels, fills and weights into DIR
    python -m bench.exact_tables evaluate DIR OUT --model NAME [--device cuda]   # every coalition
    python -m bench.exact_tables check            # the stored tables against the CPU model

The device side needs only torch and this repository's ``models`` package (weights travel in DIR).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
KEEP_CLASSES = 5  # columns stored per table: the top classes of the full image

# (model, image, superpixels asked of SLIC)
CASES = [
    ("efficientnet_lite0", "assets/samples/photos/chelsea.png", 14),  # SLIC gives 12 superpixels
    ("efficientnet_lite0", "assets/samples/photos/chelsea.png", 15),  # 15
    ("efficientnet_lite0", "assets/samples/photos/coffee.png", 16),  # 16
    ("brain_tumor_vgg16", "assets/samples/mri/Te-gl_0010.jpg", 14),  # 14
    ("brain_tumor_vgg16", "assets/samples/mri/Te-me_0016.jpg", 16),
]


def case_name(model: str, image: str, segments: int) -> str:
    return f"{model}__{Path(image).stem}__{segments}"


def coalitions_of(rows: np.ndarray, players: int) -> np.ndarray:
    """Row r ↔ the coalition whose player i is bit i of r (the order of explainers.methods.exact)."""
    return ((rows[:, None] >> np.arange(players)) & 1).astype(bool)


def labels_digest(labels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(labels, dtype=np.int32).tobytes()).hexdigest()[:16]


# --------------------------------------------------------------------------- weights in transit


def pack_state(module: torch.nn.Module, path: Path) -> None:
    """A state_dict as byte-shuffled, zlib-compressed float32 planes (about 15 % smaller than torch.save)."""
    state = {name: tensor.detach().cpu().float().numpy() for name, tensor in module.state_dict().items()}
    flat = np.concatenate([array.ravel() for array in state.values()]).astype(np.float32)
    planes = flat.view(np.uint8).reshape(-1, 4).T.copy()
    manifest = [(name, list(array.shape)) for name, array in state.items()]
    header = json.dumps(manifest).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header + zlib.compress(planes.tobytes(), 9))


def unpack_state(path: Path) -> dict[str, torch.Tensor]:
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    manifest = json.loads(raw[8 : 8 + size])
    planes = np.frombuffer(zlib.decompress(raw[8 + size :]), dtype=np.uint8).reshape(4, -1)
    flat = planes.T.copy().view(np.float32).ravel()
    state, offset = {}, 0
    for name, shape in manifest:
        count = int(np.prod(shape)) if shape else 1
        state[name] = torch.from_numpy(flat[offset : offset + count].reshape(shape).copy())
        offset += count
    return state


# --------------------------------------------------------------------------- the two sides


def prepare(directory: Path) -> None:
    from explainers.images import load_image
    from explainers.superpixels import build_game
    from models import load_classifier

    directory.mkdir(parents=True, exist_ok=True)
    classifiers = {}
    for model, image_path, segments in CASES:
        if model not in classifiers:
            classifiers[model] = load_classifier(model)
            pack_state(classifiers[model].module, directory / f"{model}.weights")
        classifier = classifiers[model]
        image = classifier.prepare(load_image(ROOT / image_path).pixels)
        game = build_game(
            classifier,
            image,
            segments=segments,
            compactness=10.0,
            sigma=1.0,
            fill="auto",
            fill_constant=0.0,
            total=0,
            progress=None,
        )
        probs = classifier.predict(image[None])[0]
        classes = np.argsort(-probs)[: min(KEEP_CLASSES, len(probs))]
        np.savez(
            directory / f"{case_name(model, image_path, segments)}.npz",
            model=model,
            image=game.image,
            background=game.background,
            labels=game.segments,
            classes=classes,
        )
        print(f"{case_name(model, image_path, segments)}: {game.players} superpixels", flush=True)


def evaluate(directory: Path, out: Path, model: str, device: str, batch: int) -> None:
    from models import get_spec

    torch.backends.cuda.matmul.allow_tf32 = False  # full float32, as on the CPU
    torch.backends.cudnn.allow_tf32 = False
    module = get_spec(model).build("random")
    module.load_state_dict(unpack_state(directory / f"{model}.weights"))
    module = module.eval().to(device)
    out.mkdir(parents=True, exist_ok=True)
    for case in sorted(directory.glob(f"{model}__*.npz")):
        data = np.load(case)
        labels = torch.from_numpy(data["labels"].astype(np.int64)).to(device)
        players = int(labels.max()) + 1
        image = torch.from_numpy(data["image"]).to(device).permute(2, 0, 1)  # 3×H×W
        background = torch.from_numpy(data["background"]).to(device).permute(2, 0, 1)
        classes = torch.from_numpy(data["classes"].astype(np.int64)).to(device)
        onehot = (labels[..., None] == torch.arange(players, device=device)).float()  # H×W×S
        bits = torch.arange(players, device=device)
        table = np.zeros((2**players, len(classes)), dtype=np.float32)
        started = time.perf_counter()
        with torch.inference_mode():
            for start in range(0, 2**players, batch):
                rows = torch.arange(start, min(start + batch, 2**players), device=device)
                coalitions = ((rows[:, None] >> bits) & 1).float()  # B×S
                keep = torch.einsum("hws,bs->bhw", onehot, coalitions)[:, None]
                masked = keep * image + (1 - keep) * background
                probabilities = module(masked.contiguous(memory_format=torch.channels_last))
                table[start : start + len(rows)] = probabilities[:, classes].float().cpu().numpy()
        np.savez_compressed(
            out / case.name,
            table=table,
            classes=data["classes"],
            labels_digest=labels_digest(data["labels"]),
            model=model,
        )
        print(f"{case.stem}: {2**players} evaluations in {time.perf_counter() - started:.1f} s", flush=True)


# --------------------------------------------------------------------------- the benchmark's side


@dataclass
class ExactGame:
    """A stored exact game: the table of v over every coalition (row r ↔ bits of r) for a few classes."""

    name: str
    players: int
    table: np.ndarray  # 2^S × K
    classes: np.ndarray  # K class ids (the top classes of the full image)
    game: object  # the live SuperpixelGame on the CPU (for sampled checks and for estimators' budgets)
    max_check_error: float

    def shapley(self) -> np.ndarray:
        from explainers.methods.exact import shapley_from_table

        return shapley_from_table(self.table, self.players)  # S × K


def load_game(classifier, model: str, image_path: str, segments: int, checks: int = 8) -> ExactGame:
    """The exact game of a case: the stored table after a check on ``checks`` random coalitions against the
    CPU model, or the table computed here when none is stored (or the stored one does not match)."""
    from explainers.images import load_image
    from explainers.superpixels import build_game

    image = classifier.prepare(load_image(ROOT / image_path).pixels)
    game = build_game(
        classifier,
        image,
        segments=segments,
        compactness=10.0,
        sigma=1.0,
        fill="auto",
        fill_constant=0.0,
        total=0,
        progress=None,
    )
    players = game.players
    path = DATA / f"{case_name(model, image_path, segments)}.npz"
    if path.is_file():
        stored = np.load(path)
        if str(stored["labels_digest"]) == labels_digest(game.segments):
            rows = np.random.default_rng(0).choice(2**players, size=checks, replace=False)
            live = game(coalitions_of(rows, players))[:, stored["classes"]]
            error = float(np.abs(live - stored["table"][rows]).max())
            if error < 1e-3:
                return ExactGame(path.stem, players, stored["table"].astype(np.float64), stored["classes"], game, error)
            print(f"{path.name} does not match the CPU model (max error {error:.2g}); recomputing")
        else:
            print(f"{path.name} has other superpixels than SLIC gives here; recomputing")
    probs = game(np.ones((1, players), bool))[0]
    classes = np.argsort(-probs)[:KEEP_CLASSES]
    from explainers.methods.exact import all_coalitions

    table = game(all_coalitions(players))[:, classes]
    DATA.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path, table=table.astype(np.float32), classes=classes, labels_digest=labels_digest(game.segments), model=model
    )
    return ExactGame(path.stem, players, table.astype(np.float64), classes, game, 0.0)


def check() -> None:
    from models import Classifier, load_classifier

    classifiers: dict[str, Classifier] = {}
    for model, image_path, segments in CASES:
        classifier = classifiers.setdefault(model, load_classifier(model))
        exact = load_game(classifier, model, image_path, segments)
        print(
            f"{exact.name}: {exact.players} players, stored table matches the CPU model to {exact.max_check_error:.1e}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare").add_argument("directory", type=Path)
    run = sub.add_parser("evaluate")
    run.add_argument("directory", type=Path)
    run.add_argument("out", type=Path)
    run.add_argument("--model", required=True)
    run.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    run.add_argument("--batch", type=int, default=512)
    sub.add_parser("check")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.directory)
    elif args.command == "evaluate":
        evaluate(args.directory, args.out, args.model, args.device, args.batch)
    else:
        check()


if __name__ == "__main__":
    main()
