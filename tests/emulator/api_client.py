"""A Data Push client for the emulator tests: everything goes over real HTTP with ``requests``.

A module, not the conftest, so that tests import it by its package path wherever pytest is started.
"""

from __future__ import annotations

import io
import time
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import requests

from airflow_provider_celonis.emulator.server import EmulatorServer

TERMINAL = {"DONE", "ERROR", "CANCELED"}


def parquet_bytes(columns: dict[str, list[Any]] | pa.Table) -> bytes:
    table = columns if isinstance(columns, pa.Table) else pa.table(columns)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


class Api:
    """A Data Push client for one pool, just enough to drive the emulator in tests."""

    def __init__(self, emu: EmulatorServer, pool: str | None = None, auth: str | None = None) -> None:
        self.emu = emu
        self.pool = pool or f"pool-{uuid.uuid4().hex[:8]}"
        self.session = requests.Session()
        self.session.headers["Authorization"] = auth or f"AppKey {emu.app_key}"
        self.base = f"{emu.url}/integration/api/v1/data-push/{self.pool}/jobs/"

    def create(self, target: str = "t", job_type: str = "DELTA", **fields: Any) -> dict[str, Any]:
        body = {
            "targetName": target,
            "type": job_type,
            "fileType": "PARQUET",
            "dataPoolId": self.pool,
            **fields,
        }
        r = self.session.post(self.base, json=body)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def upload(
        self, job_id: str, data: bytes, kind: str = "upserted", field: str = "file"
    ) -> requests.Response:
        return self.session.post(f"{self.base}{job_id}/chunks/{kind}", files={field: ("chunk", data)})

    def execute(self, job_id: str, **params: str) -> requests.Response:
        return self.session.post(f"{self.base}{job_id}", params=params)

    def job(self, job_id: str) -> dict[str, Any]:
        r = self.session.get(f"{self.base}{job_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def wait(self, job_id: str, statuses: set[str] = TERMINAL, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["status"] in statuses:
                return job
            assert time.monotonic() < deadline, f"job stuck in {job['status']}"
            time.sleep(0.02)

    def push(
        self,
        target: str,
        job_type: str,
        upserts: list[bytes] = (),  # type: ignore[assignment]
        deletes: list[bytes] = (),  # type: ignore[assignment]
        params: dict[str, str] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Create, upload (upserts then deletes), execute and wait; returns the finished job."""
        job = self.create(target, job_type, **fields)
        for data in upserts:
            assert self.upload(job["id"], data).status_code == 200
        for data in deletes:
            assert self.upload(job["id"], data, "deleted").status_code == 200
        assert self.execute(job["id"], **(params or {})).status_code == 200
        return self.wait(job["id"])

    def rows(self, table: str, order: str | None = None) -> list[dict[str, Any]]:
        r = self.session.get(f"{self.emu.url}/emulator/api/pools/{self.pool}/tables/{table}.json")
        assert r.status_code == 200, r.text
        rows = list(r.json())
        return sorted(rows, key=lambda row: row[order]) if order else rows

    def tables(self) -> dict[str, dict[str, Any]]:
        r = self.session.get(f"{self.emu.url}/emulator/api/pools/{self.pool}/tables")
        assert r.status_code == 200, r.text
        return {t["name"]: t for t in r.json()}
