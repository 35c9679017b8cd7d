"""Probability against log-odds on the tumour model, which saturates (p = 0.9998 on a glioma).

For each bundled MRI, Kernel SHAP explains the top class in both spaces from the same model evaluations
(a memo of the model's outputs, so the second space costs no evaluation), and each map is scored by
explainers.faithfulness (deletion and insertion areas of the probability, beside a random order), plus how
spread the map is: the share of superpixels whose |value| is at least 5 % of the largest. Writes
bench/output_space.md.

Run: .venv/bin/python -m bench.output_space [--budget 100] [--segments 30] [--images 6]
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import time
from pathlib import Path

import numpy as np

from explainers.faithfulness import faithfulness, segment_totals
from explainers.images import load_image
from explainers.request import explain
from models import load_classifier

ROOT = Path(__file__).resolve().parents[1]


class Memo:
    """The classifier with its predictions remembered per image (both spaces evaluate the same images)."""

    def __init__(self, classifier):
        self.classifier, self.memory = classifier, {}

    def __getattr__(self, name):
        return getattr(self.classifier, name)

    def predict(self, images, batch_size=None):
        images = np.asarray(images, dtype=np.float32)
        images = images[None] if images.ndim == 3 else images
        keys = [hashlib.sha1(image.tobytes()).hexdigest() for image in images]
        todo = [i for i, key in enumerate(keys) if key not in self.memory]
        if todo:
            for i, row in zip(todo, self.classifier.predict(images[todo]), strict=True):  # a row per image
                self.memory[keys[i]] = row
        return np.stack([self.memory[key] for key in keys])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--segments", type=int, default=30)
    parser.add_argument("--images", type=int, default=6)
    args = parser.parse_args()
    model = Memo(load_classifier("brain_tumor_vgg16"))
    paths = sorted((ROOT / "assets" / "samples" / "mri").glob("*.jpg"))
    step = max(1, len(paths) // args.images)
    rows, started = [], time.time()
    for path in paths[::step][: args.images]:
        image = load_image(path)
        for output in ("probability", "log-odds"):
            result = explain(
                model,
                image,
                "kernel",
                top_k=1,
                max_evals=args.budget,
                output=output,
                params={"segments": args.segments},
            )
            score = faithfulness(model, result)
            assert result.segments is not None  # kernel is a superpixel method: its explanation has segments
            totals = np.abs(segment_totals(result.values[0], result.segments))
            spread = float(np.mean(totals >= 0.05 * totals.max())) if totals.max() > 0 else 0.0
            rows.append(
                (
                    path.stem,
                    result.class_names[0],
                    float(result.probs[result.classes[0]]),
                    output,
                    score.deletion_auc,
                    score.random_deletion_auc,
                    score.insertion_auc,
                    score.random_insertion_auc,
                    spread,
                )
            )
            print(rows[-1], flush=True)
    lines = [
        f"# Probability against log-odds on the tumour model (Kernel SHAP {args.budget} evaluations, "
        f"{args.segments} superpixels)",
        "",
        f"{platform.node()}, {time.strftime('%Y-%m-%d')}, {time.time() - started:.0f} s. Deletion: lower is "
        "better; insertion: higher is better (areas of the probability); spread: superpixels with |value| "
        "≥ 5 % of the largest.",
        "",
        "| image | class | p | space | deletion | random | insertion | random | spread |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r[0]} | {r[1]} | {r[2]:.5f} | {r[3]} | {r[4]:.3f} | {r[5]:.3f} | {r[6]:.3f} | {r[7]:.3f} | {r[8]:.2f} |"
        for r in rows
    ]
    for output in ("probability", "log-odds"):
        chosen = [r for r in rows if r[3] == output]
        lines.append(
            f"| **mean** | | | {output} | {np.mean([r[4] for r in chosen]):.3f} | "
            f"{np.mean([r[5] for r in chosen]):.3f} | {np.mean([r[6] for r in chosen]):.3f} | "
            f"{np.mean([r[7] for r in chosen]):.3f} | {np.mean([r[8] for r in chosen]):.2f} |"
        )
    (ROOT / "bench" / "output_space.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
