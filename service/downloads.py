"""Compare's download files: the grid as a PNG, the explanations as `.npz` files in a zip, the per-superpixel values
and the scores as CSV, and the PDF report. Each is made when asked for (a page's button calls ``make``), so a
cached grid's page does not build them on every run."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from explainers.faithfulness import segment_totals
from service.compare import Grid, Scores, short_title
from viz.panels import map_unit, shown_map
from viz.render import grid_png


@dataclass(frozen=True)
class Download:
    label: str
    make: Callable[[], bytes | str]  # the file's contents (text is written as UTF-8)
    file_name: str
    mime: str
    help: str | None = None


def grid_file(grid: Grid, opacity: float) -> bytes:
    """The grid as one PNG: rows the classes, columns the methods, on the page's scales."""
    shown = [
        [shown_map(values, segments, grid.output, grid.mask) for values, segments in grid.panels(row)]
        for row in range(len(grid.classes))
    ]
    return grid_png(
        grid.prepared,
        [(short_title(name), [row[i] for row in shown]) for i, name in enumerate(grid.explanations)],
        [grid.spec.class_title(c) for c in grid.classes],
        [row[0] for row in grid.limits],
        opacity=opacity,
        unit=map_unit(grid.output, True),
        colorbar=grid.one_basis,
    )


def archive_file(grid: Grid) -> bytes:
    """Every explanation as its own `.npz` (Explanation.load reads it back), in one zip."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        for name, explanation in grid.explanations.items():
            buffer = io.BytesIO()
            explanation.save(buffer)
            bundle.writestr(f"{grid.spec.name}_{name}_{explanation.image_digest}.npz", buffer.getvalue())
    return archive.getvalue()


def values_file(grid: Grid, superpixels: np.ndarray) -> str:
    """Each method's values as computed, totalled over the same SLIC superpixels, so the methods line up."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["method", "class", "superpixel", "value"])
    for column, name in enumerate(grid.explanations):
        for row, class_id in enumerate(grid.classes):
            for index, value in enumerate(segment_totals(grid.raw[row][column], superpixels)):
                writer.writerow([name, grid.spec.class_names[class_id], index, f"{value:.6g}"])
    return text.getvalue()


def scores_file(grid: Grid, scores: Scores) -> str:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(
        [
            "method",
            "class",
            "deletion_auc",
            "insertion_auc",
            "random_deletion_auc",
            "random_insertion_auc",
            "equal_terms_morf_auc",
            "equal_terms_lerf_auc",
            "additivity_error",
        ]
    )
    for (name, class_id), score in scores.items():
        writer.writerow(
            [
                name,
                grid.spec.class_names[class_id],
                f"{score.deletion_auc:.4f}",
                f"{score.insertion_auc:.4f}",
                f"{score.random_deletion_auc:.4f}",
                f"{score.random_insertion_auc:.4f}",
                f"{score.equal_morf_auc:.4f}",
                f"{score.equal_lerf_auc:.4f}",
                f"{grid.explanations[name].additivity_error:.3g}",
            ]
        )
    return text.getvalue()


def compare_downloads(
    grid: Grid,
    scores: Scores,
    *,
    opacity: float,
    superpixels: np.ndarray,
    image_digest: str,
    report: Callable[[], bytes],
) -> list[Download]:
    """The Compare page's five files, in the order of its buttons. ``superpixels``: the image's SLIC superpixels
    (service.compare.SLIC_SEGMENTS); ``report``: makes the PDF (service.report.report_file)."""
    model = grid.spec.name
    return [
        Download("Grid (PNG)", lambda: grid_file(grid, opacity), f"{model}_comparison.png", "image/png"),
        Download(
            "Explanations (.npz, zip)", lambda: archive_file(grid), f"{model}_explanations.zip", "application/zip"
        ),
        Download(
            "Per-superpixel values (CSV)", lambda: values_file(grid, superpixels), f"{model}_values.csv", "text/csv"
        ),
        Download("Scores (CSV)", lambda: scores_file(grid, scores), f"{model}_scores.csv", "text/csv"),
        Download(
            "Report (PDF)",
            report,
            f"{model}_{image_digest[:8]}_report.pdf",
            "application/pdf",
            help="The image, verdict, these maps on one scale, the scores and parameters; for research use "
            "only, not a diagnosis.",
        ),
    ]
