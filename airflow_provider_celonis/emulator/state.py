"""The emulator's parts wired together, started and stopped as one (by the app's lifespan).

Each part has one name: ``auth``, ``limiter``, ``faults``, ``stats``, ``tables`` (the DuckDB tables the
services write), ``data_push``, ``ingestion`` and ``integration`` (the services' backends).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .auth import Authenticator, Principal
from .data_push.backend import DataPushBackend
from .data_push.models import JobStatus
from .errors import not_found
from .faults import FaultRegistry
from .ingestion.backend import IngestionBackend
from .integration.backend import IntegrationBackend
from .limits import ExecuteRateLimiter
from .settings import EmulatorSettings
from .stats import RequestStats
from .storage import Tables, valid_pool


class EmulatorState:
    """Everything a request handler needs; one instance per running emulator."""

    def __init__(self, settings: EmulatorSettings, data_dir: Path) -> None:
        self.settings = settings
        self.data_dir = data_dir
        self.auth = Authenticator(settings)
        self.limiter = ExecuteRateLimiter(settings)
        self.faults = FaultRegistry()
        self.stats = RequestStats()
        self.tables = Tables(data_dir / "tables.duckdb")
        self.data_push = DataPushBackend(settings, data_dir, self.tables, self.faults, self.limiter)
        self.ingestion = IngestionBackend(settings, data_dir, self.tables)
        self.integration = IntegrationBackend(settings, self.tables)

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.tables.open()
        self.data_push.start()
        self.ingestion.start()
        self.integration.start()

    def stop(self) -> None:
        self.integration.stop()
        self.ingestion.stop()
        self.data_push.stop()
        self.tables.interrupt()
        self.tables.close()

    def check_pool(self, principal: Principal, pool_id: str) -> None:
        """404 for malformed or (with ``--pool``) unknown pools, then 403 if the caller may not use it."""
        if not valid_pool(pool_id) or (self.settings.pools and pool_id not in self.settings.pools):
            raise not_found(f"Data pool {pool_id}")
        self.auth.authorize_pool(principal, pool_id)

    def login(self, authorization: str | None, pool_id: str | None = None) -> Principal:
        principal = self.auth.authenticate(authorization)
        if pool_id is not None:
            self.check_pool(principal, pool_id)
        return principal

    def stats_body(self) -> dict[str, Any]:
        counts = self.data_push.store.status_counts()
        requests, total = self.stats.snapshot()
        return {
            "requests": requests,
            "requests_total": total,
            "jobs_by_status": {s.value: counts.get(s.value, 0) for s in JobStatus},
            "max_concurrent_open_jobs": self.data_push.max_open_jobs,
            "open_jobs": self.data_push.open_jobs(),
        }
