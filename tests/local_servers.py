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


def free_port() -> int:
    """A free port below the kernel's ephemeral range.

    A port taken with ``bind(("", 0))`` and let go comes from the ephemeral range, the range the kernel also
    gives every outgoing connection: a client socket (Airflow's ``db migrate`` talking to PostgreSQL) can take
    it before the server we meant it for binds it. CI saw exactly that (EADDRINUSE). Below the range only
    servers bind, and the bind check rules out one that already did.
    """
    low, _ = _ephemeral_range()
    floor = max(1024, low - 12000)
    for _ in range(1000):
        port = _pick.randrange(floor, low)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {floor}-{low - 1}")


def postgres_bin_dir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` live: on PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(os.path.realpath(initdb)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return Path(candidates[0]).parent if candidates else None
