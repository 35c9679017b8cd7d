"""Time a Compare of one image through the real page (AppTest), cold (the jobs compute on the engine's workers,
then the page scores faithfulness) and cached (a new session renders it all from the cache), at the page's
defaults: five methods × top-3 classes. Prints, per method, the model evaluations and seconds of its job, and
the faithfulness evaluations the page made itself. Uses a fresh explanation cache (the per-machine runtime
measurements in the models folder are kept, so they are not part of the timing).

Run: .venv/bin/python -m bench.compare_grid --model brain_tumor_vgg16 --sample mri/Te-gl_0010
     (``MODELS_PRECISION=bfloat16`` in the environment: the same with bfloat16 predict, see models.device)

``--precision`` instead measures PyTorch's predict in float32 and under bfloat16 autocast (channels_last both)
on every bundled sample of the tumour model and EfficientNet-Lite0: images per second, the largest probability
change and whether a top class changes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
METHODS = ["partition", "permutation", "kernel", "deep", "gradient"]


def say(line: str) -> None:
    print(line, flush=True)


def _wait_for_jobs(app: Any, timeout: float) -> None:
    """What the job fragment does in a browser: wait for the submitted jobs, and rerun the page as each ends,
    until none is pending (AppTest runs no fragment on a timer)."""
    from jobs.engine import ENGINES

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = [job for engine in list(ENGINES) for job in engine.pending()]
        if not pending:
            app.run()  # the page as it is once every job has ended (the last rerun may have raced one)
            if not [job for engine in list(ENGINES) for job in engine.pending()]:
                return
            continue
        for job in pending:
            job.wait(max(1.0, deadline - time.monotonic()))
            outcome = job.outcome
            evaluations = f"{outcome.n_evals} evaluations in {outcome.seconds:.0f} s" if outcome else job.error
            say(f"  {job.request.method} done at {time.perf_counter() - STARTED[0]:.0f} s: {evaluations}")
        app.run()
    raise TimeoutError(f"jobs still pending after {timeout:.0f} s")


STARTED = [0.0]


def compare_app(model: str, sample: str, methods: list[str]) -> Any:
    from streamlit.testing.v1 import AppTest

    from models import get_spec
    from ui import keys

    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=3600)
    app.session_state["model_name"] = model
    app.session_state[keys.sample(get_spec(model).policy.name)] = sample
    app.session_state[keys.COMPARE_METHODS] = methods
    app.switch_page("app_pages/compare.py")
    return app


def _images_per_second(classifier: Any, images: Any, seconds: float = 5.0) -> float:
    classifier.predict(images)  # warm-up: the kernels of this shape
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        count += len(classifier.predict(images))
    return count / (time.perf_counter() - started)


def precision_table(models: list[str]) -> None:
    """float32 against bfloat16 autocast in PyTorch, on the bundled samples of each model."""
    import numpy as np
    import torch

    from explainers.images import load_image
    from models import get_spec, load_classifier
    from models.device import cpu_bfloat16_native
    from models.samples import samples_for

    native = cpu_bfloat16_native()
    say(
        f"bfloat16 {'native (AVX-512 BF16 / AMX)' if native else 'EMULATED: this CPU lacks AVX-512 BF16 and AMX'}, "
        f"{torch.get_num_threads()} torch threads"
    )
    say(
        "| model | runtime chosen at load (float32) | its images/s | PyTorch float32 images/s | PyTorch bfloat16 "
        "images/s | speed-up over the chosen | max abs Δp | top class changed |"
    )
    say("|---|---|---|---|---|---|---|---|")
    for name in models:
        classifier, spec = load_classifier(name), get_spec(name)
        chosen, batch = classifier.runtime, classifier.batch_size
        images = np.stack(
            [
                classifier.prepare(load_image(sample.path).pixels)
                for sample in samples_for(spec)
                if sample.domain == spec.policy.name
            ]
        )
        timing = np.concatenate([images] * max(1, -(-2 * batch // len(images))))[: max(batch, 2 * batch)]
        speed_chosen = _images_per_second(classifier, timing)
        classifier.use_runtime("torch")
        classifier.bfloat16 = False
        full, speed_full = classifier.predict(images), _images_per_second(classifier, timing)
        classifier.bfloat16 = True
        half, speed_half = classifier.predict(images), _images_per_second(classifier, timing)
        changed = int((full.argmax(1) != half.argmax(1)).sum())
        say(
            f"| {name} ({len(images)} samples, batch {batch}) | {chosen} | {speed_chosen:.1f} | {speed_full:.1f} | "
            f"{speed_half:.1f} | {speed_half / speed_chosen:.2f}× | {np.abs(full - half).max():.4f} | "
            f"{changed} of {len(images)} |"
        )


def direct(model: str, sample: str, methods: list[str]) -> None:
    """The page's requests (each method's default budget and settings, top-3), computed in this process without
    the page or the engine: wall and CPU seconds per method (CPU seconds hold up on a shared machine), float32
    (the runtime of the registry) against bfloat16 autocast in PyTorch, interleaved. Gradient methods use the
    float32 network either way, so they run once."""
    from explainers.images import load_image
    from explainers.request import run
    from models import load_classifier
    from models.samples import get_sample
    from service.compare import compare_requests

    classifier, image = load_classifier(model), load_image(get_sample(sample).path, sample=True)
    settings: dict[str, tuple[int, dict[str, Any]]] = {name: (get_method_budget(name), {}) for name in methods}
    plan = compare_requests(classifier, image, settings, top_k=3, seed=0, output=None)
    chosen = classifier.runtime
    say(f"{model} {sample}: float32 in {chosen}, batch {classifier.batch_size}; predict-based methods also in bfloat16")
    say("| method | budget | evaluations | precision | wall s | CPU s | CPU ms per evaluation |")
    say("|---|---|---|---|---|---|---|")
    for name, request in plan.requests.items():
        bfloat16_too = name not in ("deep", "gradient")
        for bfloat16 in (False, True) if bfloat16_too else (False,):
            classifier.bfloat16 = bfloat16
            classifier.use_runtime("torch" if bfloat16 else chosen)
            wall, cpu = time.perf_counter(), time.process_time()
            explanation = run(request, image, classifier)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            say(
                f"| {name} | {request.budget} | {explanation.n_evals} | {'bfloat16' if bfloat16 else 'float32'} | "
                f"{wall:.1f} | {cpu:.1f} | {1000 * cpu / max(1, explanation.n_evals):.0f} |"
            )


def get_method_budget(name: str) -> int:
    from explainers.methods import get_method

    return get_method(name).default_budget


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--sample", default="photos/chelsea")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--cache-dir", default=None, help="reuse a cache folder (default: a fresh one)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the jobs")
    parser.add_argument("--precision", action="store_true", help="float32 against bfloat16 predict instead")
    parser.add_argument("--direct", action="store_true", help="the page's requests computed here, per method")
    args = parser.parse_args()
    if args.direct:
        direct(args.model, args.sample, args.methods.split(","))
        return
    if args.precision:
        precision_table(["brain_tumor_vgg16", "efficientnet_lite0"])
        return
    from storage import folder

    # The runtime measurements stay where they are (measured once per machine), not in the fresh cache.
    os.environ.setdefault("MODELS_CACHE_DIR", str(folder("models")))
    os.environ["EXPLAINERS_CACHE_DIR"] = args.cache_dir or tempfile.mkdtemp(prefix="compare-bench-")
    # AppTest polls no job fragment on a timer: a page's lease of its jobs would lapse while this waits for them.
    os.environ.setdefault("EXPLAINERS_JOB_LEASE", "86400")
    from models import Classifier
    from models.device import precision

    faithfulness = {"images": 0, "seconds": 0.0}
    original = Classifier.predict

    def counted(self: Classifier, images: Any, batch_size: int | None = None) -> Any:
        started = time.perf_counter()
        result = original(self, images, batch_size)
        faithfulness["images"] += len(result)
        faithfulness["seconds"] += time.perf_counter() - started
        return result

    Classifier.predict = counted  # type: ignore[method-assign]  # the page's own evaluations (faithfulness)
    methods = args.methods.split(",")
    say(f"{args.model} {args.sample}, {len(methods)} methods, precision {precision()}, {os.cpu_count()} cores")
    app = compare_app(args.model, args.sample, methods)
    started = STARTED[0] = time.perf_counter()
    app.run()
    assert not app.exception, app.exception
    first = time.perf_counter() - started
    run_buttons = [button for button in app.button if button.key == "compare_run"]
    if not run_buttons:
        sys.exit("the page offered no 'Compute the missing methods' button: is the cache empty?")
    run_buttons[0].click().run()
    _wait_for_jobs(app, args.timeout)
    cold = time.perf_counter() - started
    assert not app.exception and not app.error, (app.exception, [e.value for e in app.error])
    if not app.dataframe:
        sys.exit(f"no ranking table after {cold:.0f} s: {[m.value for m in app.info]}")
    from jobs.engine import ENGINES

    jobs = {job.request.method: job for engine in ENGINES for job in engine._jobs.values()}
    say(f"cold: {cold:.1f} s from the first visit to the grid (first page {first:.1f} s)")
    say("| method | budget | evaluations | job seconds | explanation seconds |")
    say("|---|---|---|---|---|")
    total_evals = 0
    for name in methods:
        job = jobs[name]
        explanation = job.result()
        total_evals += explanation.n_evals
        job_seconds = (job.finished or 0) - (job.started or job.submitted)
        say(
            f"| {name} | {job.request.budget} | {explanation.n_evals} | {job_seconds:.1f} | {explanation.seconds:.1f} |"
        )
    say(f"| faithfulness (page) | | {faithfulness['images']} | | {faithfulness['seconds']:.1f} |")
    say(f"evaluations: {total_evals} in the jobs + {faithfulness['images']} for faithfulness")
    timings = []
    for _ in range(3):
        again = compare_app(args.model, args.sample, methods)
        started = time.perf_counter()
        again.run()
        timings.append(time.perf_counter() - started)
        assert not again.exception and again.dataframe, "the cached page did not draw the grid"
    say(f"cached: {min(timings):.2f} s (a new session, best of 3)")
    say(app.dataframe[0].value.to_string(index=False))
    for engine in list(ENGINES):
        engine.close()


if __name__ == "__main__":
    main()
