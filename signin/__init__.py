"""Sign-in, a package of its own (it imports nothing of ours): password hashes (scrypt, from the standard
library) and a limiter that slows down and then stops repeated failed sign-ins, per client and per account.
Pure logic: the pages supply the names. The records live in this process's memory, shared by every session
of the server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# scrypt's cost: about 50 ms and 16 MB per check on this kind of machine, so guessing is slow everywhere.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64), to paste into the secrets file."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)

    def encode(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encode(salt)}${encode(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a hash from :func:`hash_password` (constant time; False for a bad hash)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(digest)
        given = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(given, expected)


@dataclass
class _Record:
    failures: list[float] = field(default_factory=list)
    last: float = 0.0


# Where failures of names the limiter has no room for are counted together (see SignInLimiter.max_records).
_OVERFLOW = "\0overflow"


class SignInLimiter:
    """Failed attempts per key (a client, or an account): each failure doubles the wait before the next attempt
    (1 s, 2 s, 4 s … at most ``max_delay``; 0 for lockout alone), and ``lock_after`` failures within ``window``
    seconds lock the key out for ``window`` seconds. A success clears the key's record.

    At most ``max_records`` keys are remembered: past that (after forgetting the expired ones) new keys share
    one record, so a flood of made-up names fills no memory and frees no locked key: it fails closed."""

    def __init__(
        self,
        max_delay: float = 30.0,
        lock_after: int = 10,
        window: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
        max_records: int = 100_000,
    ):
        self.max_delay, self.lock_after, self.window, self.clock = max_delay, lock_after, window, clock
        self.max_records = max_records
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def _key(self, key: str, now: float) -> str:
        """The key, or the shared overflow one when the table is full of live records; call with the lock held."""
        if key in self._records or len(self._records) < self.max_records:
            return key
        self._records = {
            name: record
            for name, record in self._records.items()
            if record.failures and now - record.failures[-1] < self.window
        }
        return key if len(self._records) < self.max_records else _OVERFLOW

    def wait_seconds(self, key: str) -> float:
        """How long ``key`` must wait before the next attempt (0: it may try now)."""
        now = self.clock()
        with self._lock:
            key = self._key(key, now)  # first: it may replace the table
            record = self._records.get(key)
            if record is None:
                return 0.0
            record.failures = [t for t in record.failures if now - t < self.window]
            if len(record.failures) >= self.lock_after:
                return max(0.0, record.failures[0] + self.window - now)
            if not record.failures or self.max_delay <= 0:
                return 0.0
            delay = min(self.max_delay, 2.0 ** (len(record.failures) - 1))
            return max(0.0, record.last + delay - now)

    def failed(self, key: str) -> None:
        now = self.clock()
        with self._lock:
            key = self._key(key, now)  # first: it may replace the table
            record = self._records.setdefault(key, _Record())
            record.failures.append(now)
            record.last = now

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._records.pop(key, None)
