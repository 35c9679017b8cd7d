"""Loaded by every Python process that tests/test_offline.py starts (it is first on their PYTHONPATH): any
attempt to reach a host other than this machine is written to $OFFLINE_LOG and fails, as it would offline."""

import os
import socket

LOG = os.environ.get("OFFLINE_LOG")


def _loopback(host):
    return isinstance(host, str) and (host in ("localhost", "::1", "") or host.startswith("127.")) or host is None


def _record(what, target):
    with open(LOG, "a") as f:
        f.write(f"{what} {target!r}\n")


_connect = socket.socket.connect


def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
        _record("connect", address)
        raise OSError("network disabled by the offline test")
    return _connect(self, address)


socket.socket.connect = connect  # type: ignore[method-assign]  # the patch is the point: every socket is watched
_gai = socket.getaddrinfo


def getaddrinfo(host, *a, **k):
    if not _loopback(host if not isinstance(host, bytes) else host.decode()):
        _record("getaddrinfo", host)
        raise socket.gaierror("network disabled by the offline test")
    return _gai(host, *a, **k)


socket.getaddrinfo = getaddrinfo
