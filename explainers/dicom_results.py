"""Results written back as DICOM objects a PACS and its viewers open (highdicom): a Secondary Capture of the
overlays (the text burned in), the PDF report as an Encapsulated PDF, and a Structured Report with the verdict,
the top classes, the methods, their settings, faithfulness and randomisation check. Each goes into the source's
study as a new series with new UIDs, and references the source series and instance.

The source is described by what the PACS's search returned (explainers.pacs.Instance), kept in memory only: the
patient module is copied into the new objects because a PACS files an object by it, and nothing here logs,
shows or stores it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

MANUFACTURER = "SHAP Image Studio"
NOTICE = "RESEARCH USE, NOT A DIAGNOSIS"
SC_SERIES, PDF_SERIES, SR_SERIES = 9101, 9102, 9103  # series numbers of what is written back
CODES = "99SHAPIS"  # our local coding scheme for the report's concepts
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"


@dataclass(frozen=True)
class MethodResult:
    title: str
    settings: str  # every parameter, as the report's appendix lists them
    scores: dict[str, float] = field(default_factory=dict)  # e.g. {"deletion area": 0.12}
    sanity: str | None = None  # "passes the randomisation check" / "fails …"


@dataclass(frozen=True)
class Findings:
    """What the Structured Report says."""

    model: str
    weights_digest: str
    verdict: str
    probability: float  # of the verdict, 0–1
    top: Sequence[tuple[str, float]]  # (class, probability) of the top classes
    methods: Sequence[MethodResult]
    unit: str  # what the maps' values are
    in_domain: bool = True


def source_dataset(instance: Any) -> Dataset:
    """The source instance as highdicom needs it for references and the patient module (from memory)."""
    series = instance.series
    source = Dataset()
    source.StudyInstanceUID = series.study_uid
    source.SeriesInstanceUID = series.series_uid
    source.SOPInstanceUID = instance.sop_uid
    source.SOPClassUID = instance.sop_class_uid
    source.Modality = series.modality or "OT"
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID"):
        setattr(source, keyword, series.patient.get(keyword) or "")
    source.StudyDate = series.patient.get("StudyDate") or ""
    source.StudyTime = series.patient.get("StudyTime") or ""
    source.ReferringPhysicianName = series.patient.get("ReferringPhysicianName") or ""
    return source


def _patient(source: Dataset) -> dict[str, Any]:
    return {
        "patient_id": source.PatientID,
        "patient_name": source.PatientName,
        "patient_birth_date": source.PatientBirthDate,
        "patient_sex": source.PatientSex or None,
        "accession_number": source.AccessionNumber,
        "study_id": source.StudyID,
        "study_date": source.StudyDate or None,
        "study_time": source.StudyTime or None,
        "referring_physician_name": source.ReferringPhysicianName,
    }


def _reference(source: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = source.SOPClassUID
    item.ReferencedSOPInstanceUID = source.SOPInstanceUID
    return item


def _referenced_series(source: Dataset) -> Sequence[Dataset]:
    series = Dataset()
    series.SeriesInstanceUID = source.SeriesInstanceUID
    series.ReferencedInstanceSequence = [_reference(source)]
    return [series]


def secondary_capture(source: Dataset, picture: np.ndarray, description: str) -> Dataset:
    """The overlays as a Secondary Capture (RGB, text burned in) in the source's study."""
    import highdicom as hd

    image = hd.sc.SCImage(
        pixel_array=np.ascontiguousarray(picture, dtype=np.uint8),
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        patient_orientation=("L", "P"),
        study_instance_uid=source.StudyInstanceUID,
        series_instance_uid=hd.UID(),
        series_number=SC_SERIES,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        **_patient(source),
    )
    image.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: the text may hold any character
    image.Laterality = ""  # type 2C in the General Series module: a head has no side
    image.SeriesDescription = description[:64]
    image.BurnedInAnnotation = "YES"
    image.ImageComments = NOTICE
    image.SourceImageSequence = [_reference(source)]
    image.ReferencedSeriesSequence = _referenced_series(source)
    return image


def encapsulated_pdf(source: Dataset, pdf: bytes, title: str) -> Dataset:
    """The PDF report as an Encapsulated PDF in the source's study."""
    import highdicom as hd
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian

    now = _dt.datetime.now(_dt.UTC)
    document = Dataset()
    document.file_meta = FileMetaDataset()
    document.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    document.file_meta.MediaStorageSOPClassUID = UID(ENCAPSULATED_PDF)
    document.SpecificCharacterSet = "ISO_IR 192"
    document.SOPClassUID = ENCAPSULATED_PDF
    document.SOPInstanceUID = hd.UID()
    document.file_meta.MediaStorageSOPInstanceUID = document.SOPInstanceUID
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate"):
        setattr(document, keyword, source.get(keyword, ""))
    for keyword in ("StudyTime", "AccessionNumber", "ReferringPhysicianName", "StudyID"):
        setattr(document, keyword, source.get(keyword, ""))
    document.Modality = "DOC"
    document.SeriesInstanceUID = hd.UID()
    document.SeriesNumber = PDF_SERIES
    document.SeriesDescription = title[:64]
    document.Manufacturer = MANUFACTURER
    document.ConversionType = "WSD"
    document.InstanceNumber = 1
    document.ContentDate = now.strftime("%Y%m%d")
    document.ContentTime = now.strftime("%H%M%S")
    document.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S")
    document.BurnedInAnnotation = "YES"
    document.DocumentTitle = title[:64]
    document.ConceptNameCodeSequence = []
    document.MIMETypeOfEncapsulatedDocument = "application/pdf"
    document.SourceInstanceSequence = [_reference(source)]
    document.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
    document.EncapsulatedDocumentLength = len(pdf)
    return document


def structured_report(source: Dataset, findings: Findings) -> Dataset:
    """The findings as a Comprehensive SR (a container of text and numbers, our local codes) in the source's study."""
    import highdicom as hd
    from highdicom.sr import CodedConcept

    def concept(code: str, meaning: str) -> Any:
        return CodedConcept(code, CODES, meaning)

    def text(code: str, meaning: str, value: str) -> Any:
        return hd.sr.TextContentItem(name=concept(code, meaning), value=value[:1024], relationship_type="CONTAINS")

    percent = CodedConcept("%", "UCUM", "percent")
    items = [
        text("NOTICE", "Notice", NOTICE),
        text("MODEL", "Model", f"{findings.model} (weights {findings.weights_digest})"),
        text("VERDICT", "Verdict", f"{findings.verdict} ({findings.probability:.1%})"),
        text(
            "DOMAIN",
            "Input domain",
            "the input looks like what the model was trained on"
            if findings.in_domain
            else "the input is not what the model was trained on: the verdict may mean nothing",
        ),
    ]
    for name, probability in findings.top:
        items.append(
            hd.sr.NumContentItem(
                name=concept("PROB", f"Probability of {name}"[:64]),
                value=round(100 * float(probability), 4),
                unit=percent,
                relationship_type="CONTAINS",
            )
        )
    for method in findings.methods:
        group = hd.sr.ContainerContentItem(
            name=concept("METHOD", "Explanation method"), relationship_type="CONTAINS", template_id=None
        )
        parts = [text("TITLE", "Method", method.title), text("SETTINGS", "Settings", method.settings)]
        parts += [text("UNIT", "Unit of the map", findings.unit)]
        if method.sanity:
            parts.append(text("SANITY", "Randomisation check", method.sanity))
        for label, value in method.scores.items():
            parts.append(
                hd.sr.NumContentItem(
                    name=concept("SCORE", label[:64]),
                    value=round(float(value), 6),
                    unit=CodedConcept("1", "UCUM", "no units"),
                    relationship_type="CONTAINS",
                )
            )
        group.ContentSequence = hd.sr.ContentSequence(parts)
        items.append(group)
    root = hd.sr.ContainerContentItem(name=concept("REPORT", "Explanation report"), template_id=None)
    root.ContentSequence = hd.sr.ContentSequence(items)
    report = hd.sr.ComprehensiveSR(
        evidence=[source],
        content=root,
        series_instance_uid=hd.UID(),
        series_number=SR_SERIES,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=False,
        is_verified=False,
        series_description="Explanation findings (research use, not a diagnosis)",
    )
    report.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: the settings hold ρ, ± and the like
    scheme = Dataset()
    scheme.CodingSchemeDesignator = CODES
    scheme.CodingSchemeName = "SHAP Image Studio local codes"
    report.CodingSchemeIdentificationSequence = [scheme]
    return report
