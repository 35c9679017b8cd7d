"""A PACS over DICOMweb: series searched with QIDO-RS, instances retrieved with WADO-RS (bytes only, decoded in
the sandbox like any file), results stored with STOW-RS. dicomweb-client does the searching and storing over one
``requests`` session; the retrieval reads the multipart answer itself so that pydicom never parses a PACS's bytes
in the server.

What identifies a patient stays in memory: a :class:`Series` keeps the PACS's UIDs and the patient module only to
write results back into the same study (never shown, logged or stored; its ``repr`` hides them), and every error
is one sentence that names the server by its address alone, never its credentials. dicomweb-client's own log
lines carry UIDs, so its logger is held at WARNING.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

PACS_URL_ENV = "EXPLAINERS_PACS_URL"
PACS_USER_ENV = "EXPLAINERS_PACS_USER"
PACS_PASSWORD_ENV = "EXPLAINERS_PACS_PASSWORD"
TIMEOUT_SECONDS = 20.0
MAX_INSTANCE_BYTES = 512 * 2**20  # as a DICOM file on disk (explainers.dicom.MAX_DICOM_BYTES)
MAX_SERIES = 200  # a search lists at most this many series
MAX_INSTANCES = 500  # and a worklist at most this many instances (explainers.worklist.MAX_SCANS)
# The patient module and the study's identity, copied into what is written back (in memory only).
PATIENT_TAGS = {
    "00100010": "PatientName",
    "00100020": "PatientID",
    "00100030": "PatientBirthDate",
    "00100040": "PatientSex",
    "00080020": "StudyDate",
    "00080030": "StudyTime",
    "00080050": "AccessionNumber",
    "00080090": "ReferringPhysicianName",
    "00200010": "StudyID",
}

logging.getLogger("dicomweb_client").setLevel(logging.WARNING)


class PacsError(ValueError):
    """The PACS cannot do what was asked; the message is one sentence, without credentials or patient data."""


@dataclass(frozen=True)
class PacsConfig:
    url: str
    username: str = ""
    password: str = field(default="", repr=False)
    timeout: float = TIMEOUT_SECONDS

    @property
    def address(self) -> str:
        """The server as sentences name it: scheme, host and port, never a user or password in the URL."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def pacs_config(url: str | None = None, username: str | None = None, password: str | None = None) -> PacsConfig | None:
    """The PACS to use: ``url`` (e.g. ``--pacs``), else $EXPLAINERS_PACS_URL; credentials from the arguments, else
    $EXPLAINERS_PACS_USER / $EXPLAINERS_PACS_PASSWORD. None when no PACS is configured."""
    url = url or os.environ.get(PACS_URL_ENV)
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PacsError(
            "A PACS address is an http:// or https:// URL of its DICOMweb root, e.g. http://host/dicom-web."
        )
    user = username if username is not None else os.environ.get(PACS_USER_ENV, "")
    secret = password if password is not None else os.environ.get(PACS_PASSWORD_ENV, "")
    if parts.username:  # credentials written into the URL move to the session, out of every sentence
        user, secret = parts.username, parts.password or ""
        url = parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")).geturl()
    return PacsConfig(url.rstrip("/"), user, secret)


def _first(item: dict[str, Any], tag: str, default: Any = None) -> Any:
    values = item.get(tag, {}).get("Value") or []
    if not values:
        return default
    value = values[0]
    return value.get("Alphabetic", "") if isinstance(value, dict) else value


@dataclass(frozen=True)
class Series:
    """A series found on the PACS: what may be shown (modality, date, description, instance count) and, kept in
    memory only, its UIDs and the patient module to write results back with."""

    modality: str
    date: str  # YYYY-MM-DD or ""
    description: str
    instances: int
    study_uid: str = field(repr=False)
    series_uid: str = field(repr=False)
    patient: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Instance:
    series: Series = field(repr=False)
    sop_uid: str = field(repr=False)
    sop_class_uid: str
    number: int
    image: bool  # it has pixels (Rows in its attributes); else a report, a document, a presentation state …


def _date(text: str | None) -> str:
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if text and len(text) >= 8 and text[:8].isdigit() else ""


class Pacs:
    """One PACS, with one HTTP session (its credentials) for every request."""

    def __init__(self, config: PacsConfig):
        from dicomweb_client.api import DICOMwebClient

        self.config = config
        self.session = requests.Session()
        if config.username or config.password:
            self.session.auth = (config.username, config.password)
        self.session.request = _with_timeout(self.session.request, config.timeout)  # type: ignore[method-assign]  # every call of dicomweb-client gets our timeout
        self.client = DICOMwebClient(config.url, session=self.session)

    def _sentence(self, error: Exception, what: str) -> PacsError:
        where = f"The PACS at {self.config.address}"
        if isinstance(error, requests.exceptions.Timeout):
            return PacsError(f"{where} did not answer the {what} within {self.config.timeout:g} s; try again later.")
        if isinstance(error, requests.exceptions.ConnectionError):
            return PacsError(f"{where} cannot be reached; check the address and that the server is running.")
        if isinstance(error, requests.exceptions.HTTPError) and error.response is not None:
            status = error.response.status_code
            if status in (401, 403):
                return PacsError(f"{where} refused the {what}: the user name or password is not accepted.")
            return PacsError(f"{where} answered the {what} with HTTP {status} ({error.response.reason}).")
        return PacsError(f"{where} gave an answer to the {what} that is not DICOMweb ({type(error).__name__}).")

    def search(
        self, date_from: str = "", date_to: str = "", modality: str = "", description: str = "", limit: int = MAX_SERIES
    ) -> list[Series]:
        """Series matching the filters (dates YYYYMMDD, either end open; the words of a description, in order,
        anywhere in the series description, case as the PACS matches it)."""
        query: list[tuple[str, str]] = []
        if date_from or date_to:
            query.append(("StudyDate", f"{date_from}-{date_to}"))
        if modality:
            query.append(("Modality", modality))
        if description.split():  # its words in order, anything between them (Orthanc 1.10 matches no space)
            query.append(("SeriesDescription", "*" + "*".join(description.split()) + "*"))
        fields = ["SeriesDescription", "SeriesDate", "StudyDate", "NumberOfSeriesRelatedInstances", *PATIENT_TAGS]
        query += [("includefield", name) for name in fields] + [("limit", str(limit))]
        # The query string is written here, not by dicomweb-client, so that a wildcard stays "*": some servers
        # (Orthanc 1.10) do not match an escaped one.
        try:
            response = self.session.get(
                f"{self.config.url}/series?{urlencode(query, safe='*')}", headers={"Accept": "application/dicom+json"}
            )
            response.raise_for_status()
            found = response.json() if response.content.strip() else []
        except (requests.exceptions.RequestException, ValueError) as error:
            raise self._sentence(error, "search") from None
        if not isinstance(found, list):
            raise PacsError(f"The PACS at {self.config.address} answered the search with something other than a list.")
        series = []
        for item in found[:limit]:
            study, uid = _first(item, "0020000D"), _first(item, "0020000E")
            if not study or not uid:
                continue
            series.append(
                Series(
                    modality=str(_first(item, "00080060", "")),
                    date=_date(_first(item, "00080021") or _first(item, "00080020")),
                    description=str(_first(item, "0008103E", ""))[:64],
                    instances=int(_first(item, "00201209", 0) or 0),
                    study_uid=str(study),
                    series_uid=str(uid),
                    patient={name: _first(item, tag) for tag, name in PATIENT_TAGS.items() if _first(item, tag)},
                )
            )
        return series

    def instances(self, series: Series, limit: int = MAX_INSTANCES) -> list[Instance]:
        try:
            found = self.client.search_for_instances(
                series.study_uid, series.series_uid, fields=["InstanceNumber", "Rows"], limit=limit
            )
        except (requests.exceptions.RequestException, ValueError) as error:
            raise self._sentence(error, "search") from None
        listed = [
            Instance(
                series=series,
                sop_uid=str(_first(item, "00080018")),
                sop_class_uid=str(_first(item, "00080016", "")),
                number=int(_first(item, "00200013", 0) or 0),
                image=_first(item, "00280010") is not None,
            )
            for item in found
            if _first(item, "00080018")
        ]
        return sorted(listed, key=lambda instance: instance.number)

    def retrieve(self, instance: Instance) -> bytes:
        """The instance's DICOM file as the PACS holds it (any transfer syntax), at most MAX_INSTANCE_BYTES."""
        if not instance.image:
            raise PacsError(f"This object on the PACS is not an image ({_class_name(instance.sop_class_uid)}).")
        series = instance.series
        url = f"{self.config.url}/studies/{series.study_uid}/series/{series.series_uid}/instances/{instance.sop_uid}"
        accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
        try:
            with self.session.get(url, headers={"Accept": accept}, stream=True) as response:
                response.raise_for_status()
                body = _bounded(response.iter_content(2**20), MAX_INSTANCE_BYTES)
                kind = response.headers.get("Content-Type", "")
        except requests.exceptions.RequestException as error:
            raise self._sentence(error, "retrieval") from None
        if body is None:
            raise PacsError(f"The image on the PACS is over {MAX_INSTANCE_BYTES // 2**20} MB; it was not retrieved.")
        parts = list(_parts(kind, body))
        if len(parts) != 1:
            raise PacsError(f"The PACS at {self.config.address} sent {len(parts)} objects for one instance.")
        return parts[0]

    def store(self, datasets: Sequence[Any]) -> int:
        """Stores new objects (pydicom Datasets we wrote) with STOW-RS; returns how many the PACS accepted. Each is
        sent as a complete DICOM file (preamble, file meta with its group length): a PACS keeps what it is sent."""
        datasets = [_as_file(dataset) for dataset in datasets]
        try:
            answer = self.client.store_instances(list(datasets))
        except (requests.exceptions.RequestException, ValueError) as error:
            raise self._sentence(error, "store") from None
        failed = answer.get("00081198", {}).get("Value", []) if answer else []
        if failed:
            raise PacsError(f"The PACS at {self.config.address} refused {len(failed)} of {len(datasets)} objects.")
        return len(datasets)


@dataclass(frozen=True)
class Remote:
    """A worklist scan's place on the PACS (explainers.worklist.Origin.remote): retrieved again when opened."""

    pacs: Pacs = field(repr=False)
    instance: Instance

    def fetch(self) -> bytes:
        return self.pacs.retrieve(self.instance)


def _as_file(dataset: Any) -> Any:
    """Our own dataset, written as a DICOM file (the standard's preamble and file meta) and read back."""
    import io

    import pydicom

    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return pydicom.dcmread(buffer)


def _with_timeout(request: Any, timeout: float) -> Any:
    def bounded(method: str, url: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", timeout)
        return request(method, url, **kwargs)

    return bounded


def _bounded(chunks: Iterator[bytes], limit: int) -> bytes | None:
    kept, size = [], 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            return None
        kept.append(chunk)
    return b"".join(kept)


def _parts(content_type: str, body: bytes) -> Iterator[bytes]:
    """The bodies of a multipart/related answer, split on its boundary byte for byte (a DICOM file is binary:
    no text parser may touch its line ends), or the body itself for a server that answers application/dicom."""
    if not content_type.lower().startswith("multipart/"):
        yield body
        return
    match = re.search(r'boundary="?([^";]+)"?', content_type, flags=re.IGNORECASE)
    if match is None:
        raise PacsError("The PACS sent a multipart answer without its boundary.")
    delimiter = b"--" + match.group(1).strip().encode("latin-1")
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):  # the closing delimiter
            break
        headers, separator, content = chunk.partition(b"\r\n\r\n")
        if not separator:
            continue
        yield content[:-2] if content.endswith(b"\r\n") else content


def _class_name(uid: str) -> str:
    from pydicom.uid import UID

    name = UID(uid).name if uid else ""
    return name if name and name != uid else "an object without pixels"
