"""The researcher's password for the results page: where it is configured and how a given one is checked
(in constant time; never open when none is configured)."""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PASSWORD_ENV = "STUDY_RESULTS_PASSWORD"
PASSWORD_SECRET = "study_results_password"


@dataclass(frozen=True)
class Access:
    granted: bool
    message: str  # one sentence for the page; empty when granted


LOCKED_MESSAGE = (
    f"The results are locked because no password is configured: set {PASSWORD_SECRET} in "
    f".streamlit/secrets.toml or the environment variable {PASSWORD_ENV}."
)


def configured_password(
    secrets: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> str | None:
    """The results password: ``secrets[PASSWORD_SECRET]`` (e.g. st.secrets), else $STUDY_RESULTS_PASSWORD;
    None when neither is set (or is empty)."""
    if secrets is not None:
        try:
            value = secrets.get(PASSWORD_SECRET)
        except Exception:  # noqa: BLE001 - st.secrets raises when there is no secrets file at all
            value = None
        if value:
            return str(value)
    value = (os.environ if environ is None else environ).get(PASSWORD_ENV)
    return value or None


def check_password(given: str | None, expected: str | None) -> bool:
    """Whether ``given`` is the password, compared in constant time; always False when none is configured."""
    if not expected or given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def results_access(
    given: str | None, secrets: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Access:
    """Whether the results page may open for this password; never open without a configured password."""
    expected = configured_password(secrets, environ)
    if expected is None:
        return Access(False, LOCKED_MESSAGE)
    if not given:
        return Access(False, "Enter the results password.")
    if not check_password(given, expected):
        return Access(False, "That password is wrong.")
    return Access(True, "")
