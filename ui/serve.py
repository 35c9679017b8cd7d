"""The dashboard's server: ``python -m ui.serve [streamlit options]`` (what ``scripts/run.sh`` runs).

It is ``streamlit run app.py`` plus a start-up step in the background: the job engine's workers start and load
the default model (shap's numba code compiles there), the default sample's verdict is stored, and the default
Explain page's explanation is computed into the cache, so a first visit does not wait for any of it (a visit
during the warm-up joins the job already running). ``EXPLAINERS_WARM=0`` skips the step.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app.py"
WARM_ENV = "EXPLAINERS_WARM"


def _log():  # Streamlit's logger: its handler and level, so the lines show in the server's output
    from streamlit.logger import get_logger

    return get_logger("shap_image_studio.serve")


def warm_up(model: str | None = None) -> None:
    """Starts the engine, loads ``model`` (default: the first available) on its workers, stores the default
    sample's verdict and submits the default Explain page's explanation unless it is cached. Best effort: what
    fails here is reported by the page that needs it."""
    from explainers import sandbox
    from explainers.cache import ExplanationCache
    from explainers.images import load_image
    from explainers.methods import all_methods
    from explainers.predictions import cached_prediction
    from explainers.request import build_request
    from jobs.engine import Engine, shared_engine
    from models import all_specs, default_sample, get_spec, load_classifier
    from ui.controls import recommended_method

    started = time.perf_counter()
    if sandbox.enabled():
        sandbox.pool().warm()  # the decoding children, so the first upload costs no process start
    if model is None:
        names = [spec.name for spec in all_specs() if spec.available]
        if not names:
            return
        model = names[0]
    cache = ExplanationCache()
    engine = shared_engine(str(cache.folder), lambda: Engine(cache=cache))
    _KEEP.append(engine)  # held for as long as the server runs: the pages find it (shared_engine) and its jobs
    engine.warm([model])
    spec = get_spec(model)
    classifier = load_classifier(model)
    image = load_image(default_sample(spec).path, sample=True)
    cached_prediction(cache, classifier, image)
    # The Explain page's first view: its first method (the model's recommended one) with every default.
    names = [method.name for method in all_methods()]
    method = all_methods()[recommended_method(model, names)]
    request = build_request(classifier, image, method.name, top_k=min(3, spec.num_classes))
    if cache.get(request) is None:
        # A watcher of its own: a visitor who moves a slider meanwhile releases the job without cancelling it.
        engine.submit(request, image, watcher="server warm-up").wait()
    _log().info("warm-up: %s ready in %.1f s", model, time.perf_counter() - started)


_KEEP: list = []


def _warm_in_background() -> None:
    def run() -> None:
        try:
            warm_up()
        except Exception:  # noqa: BLE001 - the first page that needs the engine reports what is wrong
            _log().exception("warm-up failed")

    threading.Thread(target=run, name="warm-up", daemon=True).start()


def main(argv: list[str]) -> int:
    from streamlit.web import cli

    if os.environ.get(WARM_ENV, "1").strip() not in ("0", "false", "no"):
        _warm_in_background()
    sys.argv = ["streamlit", "run", str(APP), *argv]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
