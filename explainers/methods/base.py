"""What every explanation method shares: one base class per kind of method that owns the pipeline (timing, class
choice, Explanation assembly, provenance, the hidden image for faithfulness); parameters are explainers.params.

A method file subclasses :class:`SuperpixelMethod` (a game over SLIC superpixels: override ``solve``) or
:class:`PixelMethod` (per-pixel attributions: override ``attribute`` and ``hidden_image``), fills in its
registration data as class attributes next to its algorithm, and decorates the class with ``@register``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from explainers.classifier import Classifier, gradient_module_of
from explainers.explanation import CONTRAST_CLASSES, Explanation, make_explanation, pixel_map, top_classes
from explainers.outputs import in_space
from explainers.params import (
    SEGMENT_PARAMS,
    Param,
    ParameterError,
    superpixel_params,
)
from explainers.progress import ProgressCallback
from explainers.superpixels import SuperpixelGame, build_game, fill_image, resolve_fill

if TYPE_CHECKING:
    from explainers.request import ExplanationRequest


class Method:
    """An explanation method: registration data as class attributes, one verb (``explain``)."""

    name: ClassVar[str]
    title: ClassVar[str]
    summary: ClassVar[str]  # one line for the UI
    paper: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    budget_meaning: ClassVar[str] = "model evaluations"
    default_budget: ClassVar[int] = 500
    min_budget: ClassVar[int] = 10
    max_budget: ClassVar[int] = 10_000
    notes: ClassVar[tuple[str, ...]] = ()
    # Needs the model's differentiable torch module (Classifier.gradient_module).
    requires_gradients: ClassVar[bool] = False
    # Solves every class from the same evaluations, so top-k and the explained classes are not part of the
    # request's identity: another class is a lookup.
    solves_every_class: ClassVar[bool] = False
    order: ClassVar[int] = 100  # place in the lists (pages, `methods`)
    # The algorithm's version, part of every request's key: raise it whenever the method computes other values
    # for the same request, so that explanations stored before the change are no longer served as current.
    version: ClassVar[int] = 1
    # A budget that runs in a blink on a 10-superpixel game of the digits model: what the registry-driven tests use.
    smoke_budget: ClassVar[int] = 60
    # Whether the values add up to f(x) − f(baseline) exactly (to rounding); a Monte Carlo method's only nearly.
    exactly_additive: ClassVar[bool] = True

    @property
    def uses_segments(self) -> bool:
        return any(param.name == "segments" for param in self.params)

    def __reduce__(self) -> tuple[Any, ...]:
        # A method is its class: it travels (to a worker) as a reference to it.
        return (type(self), ())

    def param(self, name: str) -> Param:
        for param in self.params:
            if param.name == name:
                return param
        raise ParameterError(
            f"The method {self.name} has no parameter {name!r}; it has: "
            f"{', '.join(p.name for p in self.params) or 'none'}."
        )

    def page_defaults(self) -> dict[str, Any]:
        """Every parameter as the pages start it (budget "auto" there: Param.page_default), for whatever fills the
        cache for them (precompute, the worklist) to ask for what a page will."""
        return {param.name: param.shown_default for param in self.params}

    def resolve(self, params: dict[str, Any]) -> dict[str, Any]:
        """Every parameter, defaults filled in and values checked."""
        resolved = {param.name: param.default for param in self.params}
        for name, value in params.items():
            resolved[name] = self.param(name).coerce(value)
        return resolved

    def unsupported(self, classifier: Classifier) -> str | None:
        """Why this method cannot explain ``classifier``, or None when it can."""
        if self.requires_gradients and gradient_module_of(classifier) is None:
            return (
                "it needs the model's gradients, and this model has none here (an ONNX model runs in ONNX "
                "Runtime, without gradients); use a model-agnostic method (partition, permutation, kernel, "
                "owen, exact)"
            )
        return None

    def explain(
        self,
        request: ExplanationRequest,
        classifier: Classifier,
        image: np.ndarray,
        progress: ProgressCallback | None = None,
    ) -> Explanation:
        """The explanation of a prepared image (the model's input size) for ``request``."""
        raise NotImplementedError

    def hidden_image(self, explanation: Explanation, classifier: Classifier, features: np.ndarray) -> np.ndarray:
        """What the whole image looks like to this method with every feature hidden (for faithfulness)."""
        raise NotImplementedError

    @staticmethod
    def provenance(request: ExplanationRequest, classes: np.ndarray, used: dict[str, Any]) -> dict[str, Any]:
        """``Explanation.params``, the same for every method: the resolved request, the method's version, then
        what was used."""
        return {
            **request.parameters,
            "max_evals": request.budget,
            "top_k": int(len(classes)),
            "method_version": request.spec.version,
            **used,
        }


class SuperpixelMethod(Method):
    """A method on the superpixel game: override ``solve`` (S × C values of every class from the game)."""

    solves_every_class = True
    own_params: ClassVar[tuple[Param, ...]] = ()
    default_segments: ClassVar[int] = 50
    max_segments: ClassVar[int] = 200

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.params = superpixel_params(cls.default_segments, cls.max_segments) + cls.own_params

    def solve(self, game: SuperpixelGame, budget: int, seed: int, explained: np.ndarray, **params: Any) -> Solution:
        """The values of every class from the game (``explained``: the top-k, for methods that treat them
        specially)."""
        raise NotImplementedError

    def explain(
        self,
        request: ExplanationRequest,
        classifier: Classifier,
        image: np.ndarray,
        progress: ProgressCallback | None = None,
    ) -> Explanation:
        started = time.perf_counter()
        settings = {name: request.parameters[name] for name in SEGMENT_PARAMS}
        game = build_game(classifier, image, **settings, total=request.budget, progress=progress, output=request.output)
        full = np.ones((1, game.players), dtype=bool)
        probs, base_all = game.probabilities(full)[0], game(~full)[0]
        explained = top_classes(probs, request.top_k)
        own = {name: value for name, value in request.parameters.items() if name not in SEGMENT_PARAMS}
        solved = self.solve(game, request.budget, request.seed, explained, **own)
        errors_all = None if solved.errors is None else np.asarray(solved.errors, np.float32).T
        segment_values_all = np.asarray(solved.values, dtype=np.float32).T  # C × S
        segment_values = segment_values_all[explained]
        used = {"segments_found": game.players, "fill_used": resolve_fill(classifier, settings["fill"])}
        kept = top_classes(probs, max(CONTRAST_CLASSES, len(explained)))  # their evaluations, for contrasts
        evaluated, evaluated_probs = game.evaluated(kept)
        return make_explanation(
            classifier,
            image,
            method=self.name,
            values=pixel_map(segment_values, game.segments),
            base_values=base_all[explained],
            probs=probs,
            classes=explained,
            seed=request.seed,
            n_evals=game.evaluations,
            started=started,
            extras=solved.extras,
            output=request.output,
            params=self.provenance(request, explained, used),
            segments=game.segments,
            segment_values=segment_values,
            segment_values_all=segment_values_all,
            base_values_all=base_all.astype(np.float32),
            segment_errors_all=errors_all,
            segment_errors=None if errors_all is None else errors_all[explained],
            evaluated=evaluated,
            evaluated_probs=evaluated_probs,
            evaluated_classes=kept,
        )

    def hidden_image(self, explanation: Explanation, classifier: Classifier, features: np.ndarray) -> np.ndarray:
        params = explanation.params
        return fill_image(
            explanation.image,
            features,
            resolve_fill(classifier, params.get("fill", "auto")),
            constant=params.get("fill_constant", 0.0),
        )


class PixelMethod(Method):
    """A method with per-pixel attributions: override ``attribute``."""

    def attribute(
        self,
        classifier: Classifier,
        image: np.ndarray,
        classes: np.ndarray,
        budget: int,
        seed: int,
        progress: ProgressCallback | None,
        output: str,
        **params: Any,
    ) -> Attribution:
        """K × H × W values of ``classes`` that add up in ``output``'s space (explainers.outputs)."""
        raise NotImplementedError

    def explain(
        self,
        request: ExplanationRequest,
        classifier: Classifier,
        image: np.ndarray,
        progress: ProgressCallback | None = None,
    ) -> Explanation:
        started = time.perf_counter()
        probs = classifier.predict(image[None])[0]
        classes = (
            top_classes(probs, request.top_k)
            if request.classes is None
            else np.asarray(request.classes, dtype=np.int64)
        )
        result = self.attribute(
            classifier,
            image,
            classes,
            request.budget,
            request.seed,
            progress,
            output=request.output,
            **request.parameters,
        )
        return make_explanation(
            classifier,
            image,
            method=self.name,
            values=result.values,
            base_values=result.base_values,
            probs=probs,
            classes=classes,
            seed=request.seed,
            n_evals=1 + result.evaluations,
            started=started,
            output=request.output,
            extras=result.extras,
            params=self.provenance(request, classes, result.used),
            segment_errors=result.errors,
            error_regions=result.error_regions,
        )


@dataclass(frozen=True)
class Solution:
    """What a superpixel method computes from its game; the base class makes the Explanation."""

    values: np.ndarray  # S × C: every class's value of every superpixel
    extras: dict[str, Any] = field(default_factory=dict)  # the method's own results, kept in Explanation.extras
    errors: np.ndarray | None = None  # S × C standard errors of a sampled method's values (explainers.errors)


@dataclass(frozen=True)
class Attribution:
    """What a pixel method computes; the base class makes the Explanation."""

    values: np.ndarray  # K × H × W
    base_values: np.ndarray  # K
    evaluations: int  # model evaluations, the base class's first prediction excluded
    used: dict[str, Any]  # settings resolved at run time (recorded in params)
    extras: dict[str, Any]
    errors: np.ndarray | None = None  # K × R standard errors of the values summed over ``error_regions``
    error_regions: np.ndarray | None = None  # H × W labels 0..R−1


class CountingModel:
    """Wraps ``classifier.predict``: counts evaluations, reports progress, and gives the outputs in
    ``output``'s space (the probabilities, or their log-odds)."""

    def __init__(
        self, classifier: Classifier, total: int, progress: ProgressCallback | None, output: str = "probability"
    ):
        self.classifier = classifier
        self.total = total
        self.progress = progress
        self.output = output
        self.evaluations = 0

    def __call__(self, images: np.ndarray) -> np.ndarray:
        outputs = self.classifier.predict(images)
        if self.output != "probability":
            outputs = in_space(outputs, self.output)
        self.evaluations += len(images)
        if self.progress is not None:
            self.progress(min(self.evaluations, self.total), self.total)
        return outputs
