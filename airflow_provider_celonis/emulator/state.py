"""The emulator's parts wired together, started and stopped as one (by the app's lifespan)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from .auth import Authenticator, Principal
from .engine import Engine
from .errors import ApiError, not_found
from .faults import FaultRegistry
from .limits import ExecuteRateLimiter
from .models import OPEN, POOL_RE, JobStatus
from .s3 import IngestionService
from .settings import EmulatorSettings
from .stats import RequestStats
from .store import Store
from .worker import Worker

#: DuckDB's own schemas: a pool of that name would share them (each pool is a schema).
RESERVED_SCHEMAS = frozenset({"main", "information_schema", "pg_catalog", "temp", "system"})


class EmulatorState:
    """Everything a request handler needs; one instance per running emulator."""

    def __init__(self, settings: EmulatorSettings, data_dir: Path) -> None:
        self.settings = settings
        self.data_dir = data_dir
        self.auth = Authenticator(settings)
        self.limiter = ExecuteRateLimiter(settings)
        self.faults = FaultRegistry()
        self.stats = RequestStats()
        self._open_lock = threading.Lock()
        self.max_open_jobs = 0
        self.store: Store | None = None
        self.engine: Engine | None = None
        self.worker: Worker | None = None
        self.ingestion: IngestionService | None = None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.data_dir)
        self.engine = Engine(self.data_dir / "tables.duckdb")
        self.worker = Worker(self.store, self.engine, self.settings, self.faults)
        self.worker.start()
        self.ingestion = IngestionService(self.settings, self.engine, self.data_dir)
        self.ingestion.start()
        self.max_open_jobs = self.open_jobs()

    def stop(self) -> None:
        if self.ingestion is not None:
            self.ingestion.stop()
        if self.worker is not None:
            self.worker.stop()
        if self.engine is not None:
            self.engine.close()
        if self.store is not None:
            self.store.close()

    @property
    def db(self) -> Store:
        assert self.store is not None, "emulator not started"
        return self.store

    @property
    def tables(self) -> Engine:
        assert self.engine is not None, "emulator not started"
        return self.engine

    @property
    def ingestion_service(self) -> IngestionService:
        assert self.ingestion is not None, "emulator not started"
        return self.ingestion

    @property
    def jobs_worker(self) -> Worker:
        assert self.worker is not None, "emulator not started"
        return self.worker

    def check_pool(self, principal: Principal, pool_id: str) -> None:
        """404 for malformed or (with ``--pool``) unknown pools, then 403 if the caller may not use it."""
        if (
            not POOL_RE.match(pool_id)
            or pool_id.lower() in RESERVED_SCHEMAS
            or (self.settings.pools and pool_id not in self.settings.pools)
        ):
            raise not_found(f"Data pool {pool_id}")
        self.auth.authorize_pool(principal, pool_id)

    def login(self, authorization: str | None, pool_id: str | None = None) -> Principal:
        principal = self.auth.authenticate(authorization)
        if pool_id is not None:
            self.check_pool(principal, pool_id)
        return principal

    def job_or_404(self, pool_id: str, job_id: str) -> dict[str, Any]:
        job = self.db.get_job(job_id, pool_id)
        if job is None:
            raise not_found(f"Job {job_id}")
        return job

    def open_jobs(self) -> int:
        counts = self.db.status_counts()
        return sum(counts.get(s.value, 0) for s in OPEN)

    def job_created(self) -> None:
        """Track the high-water mark of open jobs (it can only rise when a job is created)."""
        with self._open_lock:
            self.max_open_jobs = max(self.max_open_jobs, self.open_jobs())

    def stats_body(self) -> dict[str, Any]:
        counts = self.db.status_counts()
        requests, total = self.stats.snapshot()
        return {
            "requests": requests,
            "requests_total": total,
            "jobs_by_status": {s.value: counts.get(s.value, 0) for s in JobStatus},
            "max_concurrent_open_jobs": self.max_open_jobs,
            "open_jobs": self.open_jobs(),
        }


def retry_after_error(seconds: int) -> ApiError:
    return ApiError(
        429, "Too many execute requests", short="TOO_MANY_REQUESTS", headers={"Retry-After": str(seconds)}
    )
