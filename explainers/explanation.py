"""The result of every method: plain arrays plus provenance, saved to and loaded from ``.npz``."""

from __future__ import annotations

import json
import time
import zipfile
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from explainers.classifier import Classifier
from explainers.errors import relative_error
from explainers.outputs import in_space

SCHEMA_VERSION = 1
# How many of the most probable classes a superpixel explanation keeps the evaluations of (contrastive maps
# between them: explainers.contrast).
CONTRAST_CLASSES = 10

_ARRAYS = ("values", "base_values", "probs", "classes", "image")
_REQUEST_KEY = "request_key"  # not a field: the cache's stamp (see Explanation.save)
_OPTIONAL_ARRAYS = (
    "segments",
    "segment_values",
    "segment_values_all",
    "base_values_all",
    "segment_errors",
    "segment_errors_all",
    "error_regions",
    "evaluated",
    "evaluated_probs",
    "evaluated_classes",
)


class ExplanationFileError(ValueError):
    """A saved explanation that cannot be loaded; the message is one sentence."""


@dataclass(frozen=True, eq=False)
class Explanation:
    """Attributions for K explained classes of one image, at the model's input resolution.

    ``values[k].sum() + base_values[k]`` equals the model's output for ``classes[k]`` up to
    ``additivity_error`` (the largest gap over the K classes): its probability, or its log-odds when
    ``output`` is "log-odds" (see explainers.outputs).
    """

    model: str
    method: str
    values: np.ndarray  # K × H × W float32
    base_values: np.ndarray  # K float32: the model's output (in ``output``'s space) with every feature masked
    probs: np.ndarray  # C float32: probabilities of the unmasked image
    classes: np.ndarray  # K int64 class ids, most probable first
    class_names: tuple[str, ...]  # K names
    image: np.ndarray  # H × W × 3 uint8: the image as the model saw it
    params: dict[str, Any]  # every parameter of the method, JSON-serialisable
    seed: int
    n_evals: int  # model evaluations (images through the network)
    seconds: float  # computation only, model loading excluded
    additivity_error: float
    segments: np.ndarray | None = None  # H × W int32 superpixel labels 0..S−1, for superpixel methods
    segment_values: np.ndarray | None = None  # K × S
    # Superpixel methods solve every class from the same evaluations: C × S values and C base values, so
    # another class is a lookup, not a model call.
    segment_values_all: np.ndarray | None = None
    base_values_all: np.ndarray | None = None
    # Error bars of a sampled method: the standard error of each value in ``segment_values`` (K × S; C × S in
    # ``segment_errors_all`` beside ``segment_values_all``). A pixel method has them per region of
    # ``error_regions`` (H × W labels, the hover blocks: explainers.errors.block_regions); NaN: not known.
    segment_errors: np.ndarray | None = None
    segment_errors_all: np.ndarray | None = None
    error_regions: np.ndarray | None = None
    # A superpixel method's evaluations, kept for contrastive maps (explainers.contrast): each evaluated coalition
    # (Z × ⌈S/8⌉ packed bits, in the order asked) and the probabilities of the most probable classes (Z × K′,
    # classes ``evaluated_classes``) it gave.
    evaluated: np.ndarray | None = None
    evaluated_probs: np.ndarray | None = None
    evaluated_classes: np.ndarray | None = None
    weights_digest: str = ""
    image_digest: str = ""
    output: str = "probability"  # the space the values add up in: "probability" or "log-odds"
    schema_version: int = SCHEMA_VERSION
    extras: dict[str, Any] = field(default_factory=dict)  # method-specific provenance

    @property
    def top_k(self) -> int:
        return len(self.classes)

    @property
    def relative_error(self) -> float | None:
        """The largest, over the explained classes, of ‖standard errors‖ ÷ ‖values‖ (None without error bars)."""
        if self.segment_errors is None:
            return None
        values = self.region_values()
        return relative_error(self.segment_errors, values)

    def error_map(self, index: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(standard error of each region, H × W region labels) of the ``index``-th explained class, or None
        when this explanation has no error bars."""
        if self.segment_errors is None:
            return None
        regions = self.error_regions if self.error_regions is not None else self.segments
        return (
            None if regions is None else (np.asarray(self.segment_errors[index], dtype=np.float64), np.asarray(regions))
        )

    def class_error_map(self, class_id: int) -> tuple[np.ndarray, np.ndarray] | None:
        """:meth:`error_map` of a class by its id (a superpixel method has every class's)."""
        rows = np.flatnonzero(self.classes == class_id)
        if len(rows):
            return self.error_map(int(rows[0]))
        if self.segment_errors_all is not None and self.segments is not None:
            return np.asarray(self.segment_errors_all[class_id], dtype=np.float64), self.segments
        return None

    def region_values(self) -> np.ndarray:
        """K × S: the values of the regions the error bars are given for (superpixels, or error_regions)."""
        if self.error_regions is not None:
            return region_sums(self.values, self.error_regions)
        if self.segment_values is None:
            raise ValueError("this explanation has no regions: neither superpixels nor error regions")
        return self.segment_values

    def outputs(self, classes: np.ndarray | None = None) -> np.ndarray:
        """The model's outputs in this explanation's space for ``classes`` (the explained ones by default):
        what each map plus its base value adds up to."""
        return in_space(self.probs, self.output)[self.classes if classes is None else np.asarray(classes)]

    def can_explain(self, classes: np.ndarray) -> bool:
        """Whether ``classes`` can be shown without evaluating the model again."""
        return self.segment_values_all is not None or set(np.asarray(classes).tolist()) <= set(self.classes.tolist())

    def for_classes(self, classes: np.ndarray, class_names: tuple[str, ...]) -> Explanation:
        """The same explanation for other classes, from stored values only (see can_explain)."""
        classes = np.asarray(classes, dtype=np.int64)
        if self.segment_values_all is not None and self.base_values_all is not None and self.segments is not None:
            segment_values = self.segment_values_all[classes]
            values = pixel_map(segment_values, self.segments)
            base_values = self.base_values_all[classes]
            errors = None if self.segment_errors_all is None else self.segment_errors_all[classes]
        elif self.can_explain(classes):
            rows = [int(np.flatnonzero(self.classes == c)[0]) for c in classes]
            values, base_values = self.values[rows], self.base_values[rows]
            segment_values = None if self.segment_values is None else self.segment_values[rows]
            errors = None if self.segment_errors is None else self.segment_errors[rows]
        else:
            raise ValueError("these classes were not explained; compute the explanation again")
        return replace(
            self,
            values=values,
            base_values=base_values,
            classes=classes,
            class_names=tuple(class_names),
            segment_values=segment_values,
            segment_errors=errors,
            additivity_error=additivity_error(values, base_values, self.outputs(classes)),
        )

    def save(self, target: str | Path | BinaryIO, request_key: str | None = None) -> None:
        """Writes one ``.npz`` (no pickles): the arrays plus a JSON ``meta`` record; the cache also stamps the
        file with the key of the request it answers (``request_key``), which it checks on every read."""
        arrays = {name: getattr(self, name) for name in _ARRAYS}
        arrays.update({name: getattr(self, name) for name in _OPTIONAL_ARRAYS if getattr(self, name) is not None})
        meta = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _ARRAYS + _OPTIONAL_ARRAYS}
        meta["class_names"] = list(self.class_names)
        arrays["meta"] = np.array(json.dumps(meta))
        if request_key is not None:
            arrays[_REQUEST_KEY] = np.array(request_key)
        np.savez_compressed(target, **arrays)

    @classmethod
    def load(cls, source: str | Path | BinaryIO) -> Explanation:
        """Reads a file written by :meth:`save`; raises ExplanationFileError on anything else."""
        return cls.load_stamped(source)[0]

    @classmethod
    def load_stamped(cls, source: str | Path | BinaryIO) -> tuple[Explanation, str | None]:
        """:meth:`load`, and the request key the file was stamped with (None: not stamped, e.g. an older file)."""
        try:
            with np.load(source, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                arrays = {name: data[name] for name in _ARRAYS}
                arrays.update({name: data[name] for name in _OPTIONAL_ARRAYS if name in data.files})
                request_key = str(data[_REQUEST_KEY]) if _REQUEST_KEY in data.files else None
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as error:
            raise ExplanationFileError(f"This is not a saved explanation or it is damaged ({error}).") from None
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise ExplanationFileError(
                f"This explanation was saved with schema version "
                f"{meta.get('schema_version')}; this version reads {SCHEMA_VERSION}."
            )
        meta["class_names"] = tuple(meta["class_names"])
        return cls(**meta, **arrays), request_key


def pixel_map(segment_values: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """K × H × W maps that spread each superpixel's value evenly over its pixels, so a map sums to its values."""
    area = np.bincount(segments.ravel(), minlength=segment_values.shape[-1]).astype(np.float32)
    return (segment_values / np.maximum(area, 1))[:, segments].astype(np.float32)


def region_sums(values: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """K × R: each map's sum over each region of ``regions`` (H × W labels 0..R−1)."""
    labels = np.asarray(regions).astype(np.int64).ravel()
    count = int(labels.max()) + 1
    return np.stack([np.bincount(labels, weights=np.asarray(v, np.float64).ravel(), minlength=count) for v in values])


def additivity_error(values: np.ndarray, base_values: np.ndarray, outputs: np.ndarray) -> float:
    """Largest |Σ attributions + base value − model output| over the explained classes."""
    totals = values.reshape(len(values), -1).sum(axis=1, dtype=np.float64) + base_values
    return float(np.max(np.abs(totals - outputs))) if len(values) else 0.0


def top_classes(probs: np.ndarray, top_k: int) -> np.ndarray:
    """Class ids by decreasing probability (ties broken by id, so the order is stable)."""
    return np.argsort(-probs, kind="stable")[:top_k].astype(np.int64)


def make_explanation(
    classifier: Classifier,
    image: np.ndarray,
    *,
    method: str,
    values: np.ndarray,
    base_values: np.ndarray,
    probs: np.ndarray,
    classes: np.ndarray,
    params: dict[str, Any],
    seed: int,
    n_evals: int,
    started: float,
    output: str = "probability",
    **optional: Any,
) -> Explanation:
    """An Explanation with the bookkeeping every method shares: names, digest, timing, additivity (in
    ``output``'s space)."""
    values = np.asarray(values, dtype=np.float32)
    base_values = np.asarray(base_values, dtype=np.float64)
    return Explanation(
        model=classifier.name,
        method=method,
        values=values,
        base_values=base_values.astype(np.float32),
        probs=np.asarray(probs, dtype=np.float32),
        classes=np.asarray(classes, dtype=np.int64),
        class_names=tuple(classifier.class_names[c] for c in classes),
        image=image,
        params=params,
        seed=seed,
        n_evals=n_evals,
        seconds=time.perf_counter() - started,
        additivity_error=additivity_error(values, base_values, in_space(probs, output)[classes]),
        weights_digest=classifier.weights_digest,
        output=output,
        **optional,
    )
