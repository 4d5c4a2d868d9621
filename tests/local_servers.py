"""What tests need to start a server of their own: a port nobody else will take, and PostgreSQL's binaries."""

from __future__ import annotations

import glob
import os
import random
import shutil
import socket
from pathlib import Path

_handed_out: set[int] = set()
_pick = random.SystemRandom()  # xdist workers must not share a seed


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def outside_span() -> tuple[int, int] | None:
    """Up to 12,000 ports just below the ephemeral range, else just above it; None when neither has 2,000."""
    low, high = _ephemeral_range()
    if low - 1024 >= 2000:
        return max(1024, low - 12000), low
    if 65535 - high >= 2000:
        return high + 1, min(65536, high + 12001)
    return None


def free_port() -> int:
    """A free port outside the kernel's ephemeral range (below it, else above it).

    A port taken with ``bind(("", 0))`` and let go comes from the ephemeral range, the range the kernel also
    gives every outgoing connection: a client socket (Airflow's ``db migrate`` talking to PostgreSQL) can take
    it before the server we meant it for binds it. CI saw exactly that (EADDRINUSE). Outside the range only
    servers bind, and the bind check rules out one that already did.
    """
    span = outside_span()
    if span is None:  # (nearly) every port is ephemeral: nothing better than one the kernel says is free now
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])
    for _ in range(1000):
        port = _pick.randrange(*span)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {span[0]}-{span[1] - 1}")


def postgres_bin_dir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` live: on PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(os.path.realpath(initdb)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return Path(candidates[0]).parent if candidates else None
