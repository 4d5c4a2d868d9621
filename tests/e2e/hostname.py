"""``[core] hostname_callable`` for the e2e stack: each Celery worker reports its own name on its tasks."""

from __future__ import annotations

import os
import socket


def worker_name() -> str:
    return os.environ.get("CELONIS_E2E_WORKER") or socket.getfqdn()
