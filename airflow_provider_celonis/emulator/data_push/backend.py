"""The Data Push service without HTTP: jobs, chunks, the execute budget and the worker, with their rules.

Routes hand it parsed values and get dicts back or an :class:`ApiError`; which profile is active decides
what an answer may reveal (see ``docs/emulator.md``, "Profiles").
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..errors import ApiError, not_found
from ..faults import FaultRegistry
from ..limits import ExecuteRateLimiter
from ..settings import EmulatorSettings
from ..storage import Tables
from .engine import Engine
from .models import OPEN, JobStatus, new_job, now_iso
from .store import Store
from .uploads import receive_chunk
from .worker import Worker

CHUNK_FIELDS = ("id", "creationDate", "type", "pushJobId", "checksum")


def locked() -> ApiError:
    return ApiError(400, "Job already locked", short="JOB_LOCKED")


class DataPushBackend:
    """One per running emulator; ``start``/``stop`` open and close its store and worker."""

    def __init__(
        self,
        settings: EmulatorSettings,
        data_dir: Path,
        tables: Tables,
        faults: FaultRegistry,
        limiter: ExecuteRateLimiter,
    ) -> None:
        self.settings = settings
        self.data_dir = data_dir
        self.tables = tables
        self.faults = faults
        self.limiter = limiter
        self.max_open_jobs = 0
        self._open_lock = threading.Lock()
        self._salt = secrets.token_bytes(16)  # makes "opaque" checksums differ from any digest of the bytes
        self._store: Store | None = None
        self._worker: Worker | None = None

    def start(self) -> None:
        self._store = Store(self.data_dir)
        self._worker = Worker(self._store, Engine(self.tables, self.settings), self.settings, self.faults)
        self._worker.start()
        self.max_open_jobs = self.open_jobs()

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()
        if self._store is not None:
            self._store.close()

    @property
    def store(self) -> Store:
        assert self._store is not None, "emulator not started"
        return self._store

    @property
    def worker(self) -> Worker:
        assert self._worker is not None, "emulator not started"
        return self._worker

    # jobs ---------------------------------------------------------------------------------------------
    def create_job(self, pool_id: str, body: Any) -> dict[str, Any]:
        """Validate and store a new job (400 on bad fields, 404 for an undeclared ``connectionId``)."""
        job = new_job(body, pool_id)
        self._check_connection(pool_id, job.get("connectionId"))
        self.store.add_job(job)
        with self._open_lock:  # the high-water mark of open jobs can only rise when a job is created
            self.max_open_jobs = max(self.max_open_jobs, self.open_jobs())
        return job

    def _check_connection(self, pool_id: str, connection_id: object) -> None:
        declared = self.settings.connections
        if not declared or connection_id is None:
            return
        if not any(c.connection_id == connection_id and c.pool_id in (None, pool_id) for c in declared):
            raise not_found(f"Data connection {connection_id}")

    def list_jobs(self, pool_id: str) -> list[dict[str, Any]]:
        return self.store.list_jobs(pool_id)

    def job(self, pool_id: str, job_id: str) -> dict[str, Any]:
        job = self.store.get_job(job_id, pool_id)
        if job is None:
            raise not_found(f"Job {job_id}")
        return job

    def execute(self, pool_id: str, job_id: str, dedup_column: str | None) -> None:
        """Queue a NEW job; 429 over the team's execute budget, 409 when it is not NEW."""
        wait = self.limiter.acquire()
        if wait is not None:
            raise self.too_many_requests(wait)
        job = self.job(pool_id, job_id)
        if (
            self.store.transition(job_id, [JobStatus.NEW], JobStatus.QUEUED, dedup_column=dedup_column)
            is None
        ):
            raise ApiError(
                409, f"Job {job_id} is {job['status']}; only NEW jobs can be executed", short="CONFLICT"
            )
        self.worker.submit(job_id)

    def too_many_requests(self, seconds: int) -> ApiError:
        """The docs promise "429 Too Many Requests, No Content"; lenient adds a body and ``Retry-After``."""
        if self.settings.documented:
            return ApiError(429, "Too many execute requests", empty=True)
        return ApiError(
            429, "Too many execute requests", short="TOO_MANY_REQUESTS", headers={"Retry-After": str(seconds)}
        )

    def delete(self, pool_id: str, job_id: str) -> None:
        self.job(pool_id, job_id)
        self.store.transition(job_id, OPEN, JobStatus.CANCELED, log="Job deleted")
        self.worker.cancel(job_id)
        self.store.delete_job(job_id)

    def cancel(self, pool_id: str, job_id: str) -> None:
        job = self.job(pool_id, job_id)
        if self.store.transition(job_id, OPEN, JobStatus.CANCELED, log="Job canceled") is None:
            raise ApiError(409, f"Job {job_id} is {job['status']} and cannot be canceled", short="CONFLICT")
        self.worker.cancel(job_id)

    def open_jobs(self) -> int:
        counts = self.store.status_counts()
        return sum(counts.get(s.value, 0) for s in OPEN)

    # chunks -------------------------------------------------------------------------------------------
    def chunks(self, pool_id: str, job_id: str) -> list[dict[str, Any]]:
        """The job's chunks as the listing shows them, in upload order."""
        self.job(pool_id, job_id)
        return [self.public_chunk(c) for c in self.store.list_chunks(job_id)]

    def public_chunk(self, chunk: dict[str, Any]) -> dict[str, Any]:
        """A chunk without our file path and size; no ``checksum`` field when the mode is ``none``."""
        shown = {k: chunk[k] for k in CHUNK_FIELDS}
        if self.settings.checksum_mode == "none" or not shown["checksum"]:
            del shown["checksum"]
        return shown

    async def upload(
        self,
        pool_id: str,
        job_id: str,
        kind: str,
        headers: dict[str, str],
        stream: AsyncIterator[bytes],
    ) -> dict[str, Any]:
        """Store one chunk (``kind`` UPSERT or DELETE) of a NEW job; returns it as the listing shows it."""
        if self.job(pool_id, job_id)["status"] != JobStatus.NEW.value:
            raise locked()
        mode = self.settings.checksum_mode
        received = await receive_chunk(
            headers.get("content-type", ""),
            headers.get("content-length"),
            stream,
            self.store.upload_dir,
            self.settings.max_chunk_bytes,
            {"md5": "md5", "sha256": "sha256"}.get(mode),
        )
        chunk_id = str(uuid.uuid4())
        chunk = {
            "id": chunk_id,
            "creationDate": now_iso(),
            "type": kind,
            "pushJobId": job_id,
            "checksum": self._checksum(mode, received.digest, chunk_id),
        }
        if not self.store.add_chunk(
            job_id, chunk, received.path, received.size, lambda j: j["status"] == JobStatus.NEW.value
        ):
            received.path.unlink(missing_ok=True)
            raise locked()
        return self.public_chunk(chunk)

    def _checksum(self, mode: str, digest: str, chunk_id: str) -> str:
        if mode == "opaque":  # looks like an MD5 but is of no bytes a client knows (the bytes are not hashed)
            return hashlib.md5(self._salt + chunk_id.encode()).hexdigest()
        return "" if mode == "none" else digest
