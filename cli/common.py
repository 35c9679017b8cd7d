"""What every command of the command line shares: the usage error and its exit code, the terminal progress bar
and reading a command's model and image. Its own module so that ``cli.main`` and the commands it registers import
it from the top, without a circle."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from explainers.progress import Progress, ProgressState

if TYPE_CHECKING:  # only the type: importing the models takes seconds, and `--help` needs none of it
    from models.registry import WeightsKind

EXIT_USAGE = 2


class UsageError(Exception):
    """Something the user can fix; printed as one sentence."""


class TerminalProgress:
    """The command line's one progress bar: a line on stderr, drawn from explainers.progress.Progress (one
    time-left estimate, as on the pages).

    ``detail`` is drawn before the count, for what else is counted (``precompute``'s images read);
    :meth:`step` is a study precompute's progress, a line naming each explanation and then its own bar.
    """

    def __init__(self, stream: Any = None, width: int = 30, unit: str = "evaluations"):
        # sys.stderr when drawing starts, not when this module was imported (a test may have replaced it).
        self.stream, self.width, self.unit = stream if stream is not None else sys.stderr, width, unit
        self.progress = Progress(self._draw)
        self.detail = ""
        self._open = False  # a bar is drawn and its line not yet ended
        self._ended_at: tuple[int, int] | None = None  # the count whose line was ended: not drawn again
        self._step: TerminalProgress | None = None

    def __call__(self, done: int, total: int) -> None:
        if self._ended_at != (done, total):
            self.progress(done, total)

    def note(self, text: str) -> None:
        self.progress.note(text)

    def end(self) -> None:
        """Ends the bar's line (when the work stopped before its total), so what is printed next starts afresh."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False

    def step(self, done: int, total: int, label: str) -> TerminalProgress | None:
        """``studies.StudyProgress``: "[3/12] label" for the explanation that comes next, then a fresh bar that
        counts its model evaluations (returned); None once all are done."""
        if self._step is not None:
            self._step.end()
        if done >= total:
            return None
        self.stream.write(f"[{done + 1}/{total}] {label}\n")
        self.stream.flush()
        self._step = TerminalProgress(self.stream, self.width, self.unit)
        return self._step

    def _draw(self, state: ProgressState) -> None:
        filled = int(self.width * state.fraction)
        detail = f"{self.detail}, " if self.detail else ""
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (self.width - filled)}] {detail}{state.describe(self.unit)}, "
            f"{state.elapsed:.0f} s "
        )
        self._open = True
        if state.done >= state.total:
            self.end()
            self._ended_at = (state.done, state.total)
        self.stream.flush()


def load_inputs(model_name: str, image_path: str, weights: WeightsKind, frame: int = 1) -> tuple[Any, Any]:
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


def add_pacs_arguments(parser: Any) -> None:
    """``--pacs URL`` and its search filters (scans, precompute). Credentials come from $EXPLAINERS_PACS_USER and
    $EXPLAINERS_PACS_PASSWORD (never a flag: a command line is visible to every user of the machine)."""
    parser.add_argument(
        "--pacs",
        metavar="URL",
        default=None,
        help="a DICOMweb server's root, e.g. http://localhost:8042/dicom-web (credentials: $EXPLAINERS_PACS_USER, "
        "$EXPLAINERS_PACS_PASSWORD)",
    )
    parser.add_argument("--date-from", default="", help="PACS: studies from this date (YYYYMMDD)")
    parser.add_argument("--date-to", default="", help="PACS: studies up to this date (YYYYMMDD)")
    parser.add_argument("--modality", default="", help="PACS: e.g. MR")
    parser.add_argument("--description", default="", help="PACS: words in the series description")


def pacs_worklist(spec: Any, args: Any, predictor: Any) -> tuple[Any, Any]:
    """The worklist of the series ``--pacs`` finds with the filters, and the PACS; UsageError in one sentence."""
    from explainers.pacs import Pacs, PacsError, pacs_config
    from explainers.worklist_sources import from_pacs

    try:
        config = pacs_config(args.pacs)
        assert config is not None  # --pacs was given
        pacs = Pacs(config)
        series = pacs.search(args.date_from, args.date_to, args.modality, args.description)
        return from_pacs(spec, pacs, series, predictor), pacs
    except PacsError as error:
        raise UsageError(str(error)) from None
