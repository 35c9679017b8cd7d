"""One request, one pipeline: everything that determines an explanation, validated once, and the one call
that computes it.

    request = build_request(classifier, image, "kernel", budget=500, seed=0, params={"segments": 40}, top_k=3)
    explanation, cached = run_cached(cache, request, image, classifier, progress)

The pages, the command line and study precompute all build an :class:`ExplanationRequest` and hand it on;
its ``key`` is the cache key, and the job engine sends exactly this object (plain values, picklable) to a
worker. Superpixel methods solve every class, so top-k and the explained classes are not part of their key:
one stored explanation serves every choice of classes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from explainers.cache import LOCAL, SHARED
from explainers.classifier import Classifier
from explainers.explanation import SCHEMA_VERSION, Explanation, top_classes
from explainers.images import InputImage, as_input
from explainers.methods import Method, ParameterError, get_method
from explainers.outputs import OUTPUTS
from explainers.progress import ProgressCallback


@dataclass(frozen=True)
class ExplanationRequest:
    """What to explain, how, and for which classes; build it with :func:`build_request`."""

    model: str
    weights_digest: str
    image_digest: str
    method: str
    params: tuple[tuple[str, Any], ...]  # every parameter of the method, resolved, sorted by name
    budget: int
    seed: int
    top_k: int
    classes: tuple[int, ...] | None  # explicit classes instead of the top-k
    output: str = "probability"  # what the values add up to: "probability" or "log-odds" (explainers.outputs)
    class_names: tuple[str, ...] = field(repr=False, compare=False, default=())
    method_object: Method | None = field(repr=False, compare=False, default=None)

    @property
    def spec(self) -> Method:
        """The method object (looked up once, when the request was built)."""
        return self.method_object if self.method_object is not None else get_method(self.method)

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self.params)

    def identity(self) -> dict[str, Any]:
        """What determines the stored explanation (the key's content), the method's algorithm version included."""
        identity: dict[str, Any] = {
            "model": self.model,
            "weights_digest": self.weights_digest,
            "image_digest": self.image_digest,
            "method": self.method,
            "method_version": self.spec.version,
            "params": self.parameters,
            "max_evals": self.budget,
            "seed": self.seed,
            "output": self.output,
        }
        if not self.spec.solves_every_class:
            identity["top_k"] = self.top_k
            identity["classes"] = None if self.classes is None else list(self.classes)
        return identity

    @property
    def key(self) -> str:
        """The cache key: a digest of :meth:`identity` and the schema version."""
        canonical = json.dumps({**self.identity(), "schema_version": SCHEMA_VERSION}, sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]

    def shown(self, explanation: Explanation) -> Explanation:
        """A stored explanation narrowed to the classes this request asks for (a superpixel explanation keeps
        every class; another class is a lookup)."""
        if not self.spec.solves_every_class:
            return explanation
        classes = np.asarray(
            self.classes if self.classes is not None else top_classes(explanation.probs, self.top_k), dtype=np.int64
        )
        names = self.class_names or tuple(str(c) for c in range(len(explanation.probs)))
        return explanation.for_classes(classes, tuple(names[c] for c in classes))


def build_request(
    classifier: Classifier,
    image: InputImage | np.ndarray | str,
    method: str,
    *,
    params: dict[str, Any] | None = None,
    budget: int | None = None,
    seed: int = 0,
    top_k: int = 3,
    classes: Sequence[int] | None = None,
    output: str | None = None,
) -> ExplanationRequest:
    """Validates everything once and returns the request; ParameterError (one sentence) otherwise.

    ``classifier`` needs ``name``, ``weights_digest`` and ``class_names`` only (no model is run); ``image`` is
    an InputImage, a bare array, or already an image digest. ``output``: "probability" or "log-odds"; None
    is the model's default (``default_output``, else probability).
    """
    output = default_output(classifier) if output is None else output
    if output not in OUTPUTS:
        raise ParameterError(f"The output must be one of {', '.join(OUTPUTS)}, not {output!r}.")
    spec = get_method(method)
    reason = spec.unsupported(classifier)
    if reason is not None:
        raise ParameterError(f"{spec.title} cannot explain {classifier.name}: {reason}.")
    resolved = spec.resolve(params or {})
    budget = spec.default_budget if budget is None else int(budget)
    if not spec.min_budget <= budget <= spec.max_budget:
        raise ParameterError(
            f"The budget for {method} must be between {spec.min_budget} and {spec.max_budget} "
            f"{spec.budget_meaning}, not {budget}."
        )
    num_classes = len(classifier.class_names)
    if not 1 <= top_k <= num_classes:
        raise ParameterError(f"top-k must be between 1 and {num_classes} for {classifier.name}, not {top_k}.")
    if classes is not None:
        classes = tuple(int(c) for c in classes)
        if not classes or min(classes) < 0 or max(classes) >= num_classes:
            raise ParameterError(f"Class ids must be between 0 and {num_classes - 1}.")
    digest = image if isinstance(image, str) else as_input(image).digest
    return ExplanationRequest(
        classifier.name,
        classifier.weights_digest,
        digest,
        spec.name,
        tuple(sorted(resolved.items())),
        budget,
        int(seed),
        int(top_k),
        classes,
        output,
        tuple(classifier.class_names),
        spec,
    )


def default_output(classifier: Classifier) -> str:
    """The space a model is explained in unless asked otherwise (its spec's choice)."""
    return getattr(classifier, "default_output", "probability")


def run(
    request: ExplanationRequest,
    image: InputImage | np.ndarray,
    classifier: Classifier,
    progress: ProgressCallback | None = None,
) -> Explanation:
    """Computes the request: the image resized the way the model sees it, the method's pipeline, and the
    classes the request asks for. The result is at the model's input resolution."""
    source = as_input(image)
    if source.digest != request.image_digest:
        raise ValueError("this image is not the one the request was built for")
    prepared = classifier.prepare(source.pixels)
    result = request.spec.explain(request, classifier, prepared, progress)
    return request.shown(replace(result, image_digest=request.image_digest))


def run_cached(
    cache: Any | None,
    request: ExplanationRequest,
    image: InputImage | np.ndarray,
    classifier: Classifier,
    progress: ProgressCallback | None = None,
    owner: str | None = None,
) -> tuple[Explanation, bool]:
    """The request from ``cache`` when it was answered before, else computed here and stored. Returns the
    explanation and whether it came from the cache. A stored entry belongs to ``owner`` (the signed-in user;
    None: this machine's only user), except that a bundled sample's is shared with everyone.

    For one caller at a time (the command line, scripts): callers that may ask for the same thing at once (the
    pages, precompute) submit to ``jobs.Engine``, where identical requests in flight share one job.
    """
    if cache is not None:
        stored = cache.get(request)
        if stored is not None:
            return stored, True
    source = as_input(image)
    # A superpixel explanation keeps every class's values, so whichever classes it shows, it serves them all.
    result = run(request, source, classifier, progress)
    if cache is not None:
        cache.put(
            request,
            result,
            image_label=source.display_name,
            owner=SHARED if source.source == "sample" else owner or LOCAL,
        )
    return result, False


def explain(
    classifier: Classifier,
    image: InputImage | np.ndarray,
    method: str = "partition",
    *,
    top_k: int = 3,
    max_evals: int | None = None,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    params: dict[str, Any] | None = None,
    classes: Sequence[int] | None = None,
    output: str | None = None,
) -> Explanation:
    """Builds the request and runs it, without a cache: the one-line call for scripts, notebooks and tests."""
    request = build_request(
        classifier,
        image,
        method,
        params=params,
        budget=max_evals,
        seed=seed,
        top_k=top_k,
        classes=classes,
        output=output,
    )
    return run(request, image, classifier, progress)
