"""Superpixel games: SLIC segments as players, a masked image per coalition, the model's full output kept.

Every method that works on superpixels (permutation, kernel, exact) evaluates the same kind of game:
v(z) = model(image with the segments outside coalition z filled in). The game keeps the full probability
vector of every coalition it evaluates, so the values of any class come from the same evaluations.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np
import torch
from scipy import ndimage
from skimage.segmentation import find_boundaries, slic

from explainers.classifier import Classifier
from explainers.outputs import check_output, in_space
from explainers.progress import ProgressCallback

# "auto": the model's own default (Classifier.default_fill): photos their mean colour, MRIs and digits black.
FILLS = ("auto", "mean", "blur", "constant")


def _slic(image: np.ndarray, hint: int, compactness: float, sigma: float) -> np.ndarray:
    labels = slic(
        image,
        n_segments=hint,
        compactness=compactness,
        sigma=sigma,
        start_label=0,
        channel_axis=-1 if image.ndim == 3 else None,
    )
    _, consecutive = np.unique(labels, return_inverse=True)
    return consecutive.reshape(labels.shape).astype(np.int32)


def slic_segments(image: np.ndarray, segments: int, compactness: float = 10.0, sigma: float = 1.0) -> np.ndarray:
    """SLIC superpixels (Achanta et al. 2012) as H×W int32 labels 0..S−1, numbered consecutively.

    SLIC's ``n_segments`` is only a hint (on a 224 px photo it often gives half as many), so the hint is
    searched by bisection for the count closest to ``segments`` without exceeding it. The search runs SLIC
    up to 8 times, so its answer is remembered for the last few images (each method of a comparison asks).
    """
    image = np.ascontiguousarray(image)
    digest = hashlib.sha256(image.tobytes()).hexdigest()
    return _remembered_segments(
        digest, image.shape, str(image.dtype), segments, float(compactness), float(sigma), _ImageHolder(image)
    ).copy()


class _ImageHolder:
    """Passes the image to the cached search without making it part of the cache key."""

    def __init__(self, image: np.ndarray):
        self.image = image

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ImageHolder)

    def __hash__(self) -> int:
        return 0


@lru_cache(maxsize=16)
def _remembered_segments(
    digest: str,
    shape: tuple[int, ...],
    dtype: str,
    segments: int,
    compactness: float,
    sigma: float,
    holder: _ImageHolder,
) -> np.ndarray:
    return _search_segments(holder.image, segments, compactness, sigma)


def _search_segments(image: np.ndarray, segments: int, compactness: float, sigma: float) -> np.ndarray:
    low, high = 1, None  # hints known to give at most / more than the target
    best = _slic(image, segments, compactness, sigma)
    hint = segments
    for _ in range(8):
        labels = best if hint == segments else _slic(image, hint, compactness, sigma)
        found = int(labels.max()) + 1
        if found <= segments:
            if found > int(best.max()) + 1 or int(best.max()) + 1 > segments:
                best = labels
            if found == segments:
                break
            low = hint
        else:
            high = hint
        next_hint = low * 2 if high is None else (low + high) // 2
        if next_hint in (low, high) or next_hint > 16 * segments:
            break
        hint = next_hint
    return best


def segment_boundaries(segments: np.ndarray) -> np.ndarray:
    """H×W bool: the outlines of the superpixels, for drawing."""
    return find_boundaries(segments, mode="inner")


def fill_image(
    image: np.ndarray, segments: np.ndarray, fill: str, constant: float = 0.0, blur_sigma: float | None = None
) -> np.ndarray:
    """What a hidden segment shows: its mean colour, a blurred copy of the image, or a constant grey level."""
    image = image.astype(np.float32)
    if fill == "mean":
        count = np.bincount(segments.ravel(), minlength=segments.max() + 1).astype(np.float32)
        means = (
            np.stack(
                [
                    np.bincount(segments.ravel(), weights=image[..., c].ravel(), minlength=len(count))
                    for c in range(image.shape[2])
                ],
                axis=1,
            )
            / np.maximum(count, 1)[:, None]
        )
        return means[segments].astype(np.float32)
    if fill == "blur":
        sigma = blur_sigma if blur_sigma is not None else max(image.shape[:2]) / 16
        return ndimage.gaussian_filter(image, sigma=(sigma, sigma, 0), mode="nearest").astype(np.float32)
    if fill == "constant":
        return np.full_like(image, constant, dtype=np.float32)
    raise ValueError(f"fill must be one of {', '.join(FILLS)}, not {fill!r}")


MASK_CHUNK = 32  # masked images built at once on the CPU (a multiple of the model's batch size)


class SuperpixelGame:
    """v(coalitions) for a set of superpixels: masks in, the model's full probability vectors out.

    Evaluations are batched, counted, reported as progress and remembered, so a coalition asked for twice
    (paired sampling, enumeration, replays) costs one model evaluation.
    """

    def __init__(
        self,
        classifier: Classifier,
        image: np.ndarray,
        segments: np.ndarray,
        background: np.ndarray,
        total: int,
        progress: ProgressCallback | None = None,
        output: str = "probability",
    ):
        self.classifier = classifier
        self.output = check_output(output)
        self.pixels = image  # as given (uint8 for a prepared image), for methods that look at its colours
        self.image = image.astype(np.float32)
        self.segments = segments
        self.background = background.astype(np.float32)
        self.players = int(segments.max()) + 1
        # For building masked images with one gather and one interpolation, no Python loop.
        # On a GPU (a classifier with a non-CPU ``device`` and ``predict_tensor``) the masked images are built
        # there too: only the coalitions go in and the probabilities come out.
        device = getattr(classifier, "device", None)
        self._predict_tensor = getattr(classifier, "predict_tensor", None)
        self.on_device = (
            device is not None and getattr(device, "type", "cpu") != "cpu" and self._predict_tensor is not None
        )
        self.device = device if self.on_device else torch.device("cpu")
        self._pixel_segments = torch.from_numpy(np.ascontiguousarray(segments, dtype=np.int64).ravel()).to(self.device)
        self._image = torch.from_numpy(self.image).to(self.device)
        self._background = torch.from_numpy(self.background).to(self.device)
        self.total = total
        self.progress = progress
        self.evaluations = 0
        self._memory: dict[bytes, np.ndarray] = {}

    def evaluated(self, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every coalition evaluated so far (Z × ⌈S/8⌉ packed bits, in the order asked) and the probabilities of
        ``classes`` it gave (Z × K float32)."""
        keys = list(self._memory)
        bits = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), -1)
        return bits, np.stack([self._memory[key] for key in keys])[:, classes].astype(np.float32)

    def masked_images(self, coalitions: np.ndarray) -> np.ndarray:
        """Z×H×W×3: each coalition's segments from the image, the others from the background."""
        return self._masked(coalitions).cpu().numpy()

    def _masked(self, coalitions: np.ndarray) -> torch.Tensor:
        keep = torch.from_numpy(np.ascontiguousarray(coalitions, dtype=np.float32)).to(self.device)
        keep = torch.index_select(keep, 1, self._pixel_segments).view(len(keep), *self.segments.shape, 1)
        # lerp is exact at weights 0 and 1 (unlike background + keep · difference), so a pixel is bit for bit
        # the image's or the background's wherever it sits in the batch.
        return torch.lerp(self._background, self._image, keep)

    def __call__(self, coalitions: np.ndarray) -> np.ndarray:
        """Z×C outputs for Z×S boolean (or 0/1) coalitions: the probabilities, or their log-odds (the game's
        ``output``)."""
        probabilities = self.probabilities(coalitions)
        return probabilities if self.output == "probability" else in_space(probabilities, self.output)

    def probabilities(self, coalitions: np.ndarray) -> np.ndarray:
        """Z×C probabilities for Z×S boolean (or 0/1) coalitions."""
        coalitions = np.asarray(coalitions) > 0.5
        keys = [np.packbits(row).tobytes() for row in coalitions]
        missing = list(dict.fromkeys(key for key in keys if key not in self._memory))
        if missing:
            index = {key: i for i, key in enumerate(keys)}
            todo = coalitions[[index[key] for key in missing]]
            batch = max(1, self.classifier.batch_size)
            # The masked images are built a few batches at a time (fewer, larger tensor operations and calls;
            # about 20 MB of images at 224 px), and predicted at the model's batch size.
            step = batch * max(1, MASK_CHUNK // batch)
            for start in range(0, len(todo), step):
                chunk = todo[start : start + step]
                outputs = (
                    self._predict_tensor(self._masked(chunk))
                    if self._predict_tensor and self.on_device
                    else self.classifier.predict(self.masked_images(chunk), batch_size=batch)
                )
                for key, row in zip(missing[start : start + step], outputs, strict=True):
                    self._memory[key] = row
                self.evaluations += len(chunk)
                if self.progress is not None:
                    self.progress(min(self.evaluations, self.total), self.total)
        return np.stack([self._memory[key] for key in keys])


def resolve_fill(classifier: Classifier, fill: str) -> str:
    """The fill itself: "auto" is the model's default (``Classifier.default_fill``)."""
    return getattr(classifier, "default_fill", "mean") if fill == "auto" else fill


def build_game(
    classifier: Classifier,
    image: np.ndarray,
    *,
    segments: int,
    compactness: float,
    sigma: float,
    fill: str,
    fill_constant: float,
    total: int,
    progress: ProgressCallback | None,
    output: str = "probability",
) -> SuperpixelGame:
    labels = slic_segments(image, segments, compactness, sigma)
    background = fill_image(image, labels, resolve_fill(classifier, fill), constant=fill_constant)
    return SuperpixelGame(classifier, image, labels, background, total, progress, output)
