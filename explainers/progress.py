"""The one progress type: work counted in units (model evaluations, samples, explanations), with one
time-left estimate from the measured rate of the recent updates, never from the first one alone.

Methods call it as ``progress(done, total)``; the dashboard and the command line draw its ``state``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

# done, total: what every method reports (see explainers.methods.base.ProgressCallback).
ProgressCallback = Callable[[int, int], None]
# The rate is measured over the updates of about the last this many seconds.
RATE_WINDOW_SECONDS = 15.0


@dataclass(frozen=True)
class ProgressState:
    done: int
    total: int
    elapsed: float  # seconds since the work started
    rate: float | None  # units per second, None until two updates have been seen
    seconds_left: float | None  # None until there is a rate
    note: str = ""  # what the method says of its work so far (e.g. a budget "auto" run's current error)

    @property
    def fraction(self) -> float:
        return min(self.done / self.total, 1.0) if self.total else 1.0

    def describe(self, unit: str = "model evaluations") -> str:
        """E.g. "120 / 300 model evaluations, 24/s, about 8 s left"."""
        text = f"{self.done} / {self.total} {unit}"
        if self.rate is not None and self.done < self.total:
            text += f", {self.rate:.3g}/s"
            if self.seconds_left is not None:
                text += f", about {format_seconds(self.seconds_left)} left"
        elif self.done < self.total:
            text += ", estimating the time left…"
        return f"{text}, {self.note}" if self.note else text


def format_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def tell(progress: ProgressCallback | None, text: str) -> None:
    """Passes ``text`` to a progress callback that shows notes (one with a ``note`` method); others ignore it."""
    note = getattr(progress, "note", None)
    if callable(note):
        note(text)


class Progress:
    """Counts done out of total; ``on_update(state)`` draws it (at most every ``min_interval`` seconds,
    and always at the end).

    The rate is the slope over recent updates: the first update of a method often arrives after its set-up
    (superpixels, a model warm-up), so elapsed ÷ done would overstate the time left many times over.
    """

    def __init__(
        self,
        on_update: Callable[[ProgressState], None] | None = None,
        total: int = 0,
        min_interval: float = 0.2,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.on_update = on_update
        self.total = total
        self.done = 0
        self.min_interval = min_interval
        self.clock = clock
        self.started = clock()
        self._samples: deque[tuple[float, int]] = deque()
        self._last_drawn = float("-inf")
        self._note = ""

    def note(self, text: str) -> None:
        """A word on the work so far, shown after the count (see :func:`tell`)."""
        self._note = text
        if self.on_update is not None:
            self.on_update(self.state)

    def __call__(self, done: int, total: int | None = None) -> None:
        now = self.clock()
        self.done = done
        if total is not None:
            self.total = total
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW_SECONDS:
            self._samples.popleft()
        finished = self.total and done >= self.total
        if self.on_update is not None and (finished or now - self._last_drawn >= self.min_interval):
            self._last_drawn = now
            self.on_update(self.state)

    @property
    def state(self) -> ProgressState:
        elapsed = self.clock() - self.started
        rate = None
        if len(self._samples) >= 2:
            (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
            if t1 > t0 and d1 > d0:
                rate = (d1 - d0) / (t1 - t0)
        left = (self.total - self.done) / rate if rate else None
        return ProgressState(self.done, self.total, elapsed, rate, left, self._note)

    def part(self, offset: int, share: int) -> ProgressCallback:
        """A callback for one piece of a larger job: its ``done`` of ``total`` maps onto ``share`` units
        after ``offset`` (e.g. one method of a comparison, counted in the comparison's units)."""

        def report(done: int, total: int) -> None:
            self(offset + round(share * min(done / total, 1.0)) if total else offset + share)

        return report
