"""What every command of the command line shares: the usage error and its exit code, the terminal progress bar
and reading a command's model and image. Its own module so that ``cli.main`` and the commands it registers import
it from the top, without a circle."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

EXIT_USAGE = 2


class UsageError(Exception):
    """Something the user can fix; printed as one sentence."""


class TerminalProgress:
    """A one-line progress bar on stderr, drawn from explainers.progress.Progress (one time-left estimate)."""

    def __init__(self, stream: Any = sys.stderr, width: int = 30, unit: str = "evaluations"):
        from explainers.progress import Progress

        self.stream, self.width, self.unit = stream, width, unit
        self.progress = Progress(self._draw)

    def __call__(self, done: int, total: int) -> None:
        self.progress(done, total)

    def note(self, text: str) -> None:
        self.progress.note(text)

    def _draw(self, state: Any) -> None:
        filled = int(self.width * state.fraction)
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {state.describe(self.unit)}, "
                          f"{state.elapsed:.0f} s ")
        if state.done >= state.total:
            self.stream.write("\n")
        self.stream.flush()


def load_inputs(model_name: str, image_path: str, weights: str, frame: int = 1) -> tuple[Any, Any]:
    """The classifier and the image a command names (a bundled sample keeps its name, any other file is named by
    its digest in what is shared); an unknown model is reported before the image is read."""
    from explainers.images import load_image
    from models import get_spec, load_classifier

    from models.samples import list_samples

    get_spec(model_name)
    path = Path(image_path)
    # A bundled sample's explanation is listed in every user's Gallery; any other file's only on an open app.
    bundled = {sample.path.resolve() for sample in list_samples()}
    image = load_image(path, sample=path.resolve() in bundled if path.is_file() else False, frame=frame - 1)
    return load_classifier(model_name, weights=weights), image
