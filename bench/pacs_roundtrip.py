"""The round trip through a PACS, timed: the bundled tumour MRIs stored as DICOM (a made-up patient), searched,
listed with their verdicts (each retrieved into the sandbox and predicted), retrieved again as a scan is opened,
explained, and their results written back (Secondary Capture, PDF, Structured Report), each written object
checked with dciodvfy.

Against a running DICOMweb server, e.g. Orthanc as README's "A PACS" shows:

    EXPLAINERS_PACS_USER=reader EXPLAINERS_PACS_PASSWORD=… \\
        .venv/bin/python -m bench.pacs_roundtrip --pacs http://127.0.0.1:8042/dicom-web [--explain 3]

Writes ``bench/pacs_roundtrip.md``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from explainers.cache import ExplanationCache
from explainers.pacs import Pacs, Remote, pacs_config
from explainers.request import build_request, run_cached
from explainers.worklist import Predictor
from explainers.worklist_sources import from_pacs
from models import get_spec, load_classifier
from service.pacs_results import results_datasets
from service.report import report_contents

ROOT = Path(__file__).resolve().parents[1]
MODEL = "brain_tumor_vgg16"


def mri_dicom(path: Path, study: str, tag: str, number: int) -> Dataset:
    pixels = np.asarray(Image.open(path).convert("L"))
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = pydicom.uid.MRImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "BENCH^PATIENT", "BENCH-1", "19700101", "O"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, generate_uid()
    ds.StudyDate = ds.SeriesDate = time.strftime("%Y%m%d")
    ds.StudyTime, ds.AccessionNumber, ds.ReferringPhysicianName, ds.StudyID = "101010", "B1", "", "1"
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber, ds.SeriesDescription = "MR", number, 1, f"bench {tag} {number}"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels.tobytes()
    return ds


def dciodvfy_errors(dataset: Dataset) -> int:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "object.dcm"
        dataset.save_as(path, enforce_file_format=True)
        done = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return sum(line.startswith("Error") for line in (done.stdout + done.stderr).splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pacs", required=True)
    parser.add_argument("--explain", type=int, default=3, help="scans explained and written back (kernel, 100)")
    args = parser.parse_args()
    config = pacs_config(args.pacs)
    assert config is not None
    pacs = Pacs(config)
    tag = generate_uid()[-8:]
    study = generate_uid()
    files = sorted((ROOT / "assets" / "samples" / "mri").glob("*.jpg"))
    started = time.perf_counter()
    pacs.store([mri_dicom(path, study, tag, number) for number, path in enumerate(files, start=1)])
    stored = time.perf_counter() - started

    started = time.perf_counter()
    series = pacs.search(description=f"bench {tag}")
    searched = time.perf_counter() - started
    spec, classifier = get_spec(MODEL), load_classifier(MODEL)
    cache = ExplanationCache(Path(tempfile.mkdtemp(prefix="pacs-bench-")))
    started = time.perf_counter()
    worklist = from_pacs(spec, pacs, series, Predictor(classifier, cache))
    listed = time.perf_counter() - started
    scans = [(scan, scan.image) for scan in worklist.scans if scan.image is not None]
    retrievals = []
    for _, picture in scans:
        began = time.perf_counter()
        picture.load()
        retrievals.append(time.perf_counter() - began)
    explains, scores, writes, errors, objects = [], [], [], 0, 0
    for _, picture in scans[: args.explain]:
        image = picture.load()
        began = time.perf_counter()
        request = build_request(classifier, image, "kernel", budget=100, top_k=3)
        explanation, _ = run_cached(cache, request, image, classifier)
        explains.append(time.perf_counter() - began)
        began = time.perf_counter()  # the faithfulness scores: the worker computes them with an explanation
        report_contents(cache, classifier, image, {"kernel": explanation}, 3)
        scores.append(time.perf_counter() - began)
        remote: Remote = picture.origin.remote
        began = time.perf_counter()
        datasets = results_datasets(cache, classifier, image, {"kernel": explanation}, remote.instance)
        objects += pacs.store(datasets)
        writes.append(time.perf_counter() - began)
        errors += sum(dciodvfy_errors(dataset) for dataset in datasets)
    verdicts = [spec.class_title(scan.verdict) for scan, _ in scans if scan.verdict is not None]
    agree = 0
    for scan, picture in scans:  # the series description carries the file's number: its label, for the tally only
        number = int(picture.origin.remote.instance.series.description.rsplit(" ", 1)[-1])
        agree += scan.verdict is not None and spec.label_of(files[number - 1].stem) == spec.class_names[scan.verdict]

    lines = [
        "## A PACS round trip (issue 35)",
        "",
        f"`python -m bench.pacs_roundtrip --pacs {config.address}/…` on {time.strftime('%Y-%m-%d %H:%M')}, "
        f"{len(files)} bundled tumour MRIs as 8-bit MR DICOM (512² and larger), the tumour model (VGG16) on this "
        "machine's CPU, the PACS on loopback.",
        "",
        "| step | scans | seconds in all | seconds per scan |",
        "|---|---|---|---|",
        f"| store (STOW-RS, one request) | {len(files)} | {stored:.2f} | {stored / len(files):.3f} |",
        f"| search (QIDO-RS) | {len(series)} series | {searched:.3f} | |",
        f"| list: retrieve (WADO-RS) + decode in the sandbox + predict | {len(scans)} | {listed:.2f} | "
        f"{listed / max(len(scans), 1):.2f} |",
        f"| open: retrieve + decode again | {len(scans)} | {sum(retrievals):.2f} | "
        f"{statistics.median(retrievals):.3f} (median) |",
        f"| explain (Kernel SHAP, 100 evaluations, top 3) | {len(explains)} | {sum(explains):.1f} | "
        f"{statistics.median(explains):.1f} (median) |",
        f"| faithfulness scores, 3 classes (on the worker, with the explanation) | {len(scores)} | "
        f"{sum(scores):.1f} | {statistics.median(scores):.1f} (median) |",
        f"| write back (SC + PDF + SR, built and stored) | {len(writes)} | {sum(writes):.2f} | "
        f"{statistics.median(writes):.2f} (median) |",
        "",
        f"Objects written: {objects}; dciodvfy errors over them: {errors}. Verdicts: {', '.join(verdicts)} "
        f"({agree} of {len(scans)} match the file names' labels).",
    ]
    (ROOT / "bench" / "pacs_roundtrip.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
