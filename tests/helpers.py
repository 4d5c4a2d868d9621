"""Helpers shared by the tests: DAG files, XCom and task states, and reading what landed in the emulator."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

POOL = "pool-1"
#: An unrestricted key the tests use to inspect the emulator; DAG connections get a pool-restricted one.
ADMIN_KEY = "admin-key-0123456789"
#: The emulator's request counter key for a job's chunk listing (``stats()["requests"]``).
LIST_CHUNKS = "GET /data-ingestion/api/v1/data-push/{pool_id}/jobs/{job_id}/chunks"
#: The same for the pool's job listing.
LIST_JOBS = "GET /data-ingestion/api/v1/data-push/{pool_id}/jobs/"


def conn_env(conn_id: str, conn_type: str = "celonis", **fields_and_extra: Any) -> tuple[str, str]:
    """A connection as users register it: the ``AIRFLOW_CONN_<ID>`` variable's name and JSON value.

    ``host``, ``login``, ``password``, ``schema`` and ``port`` are the connection's fields (None: unset),
    every other keyword goes into ``extra``. Tests use the ``airflow_conn`` fixture, which sets it.
    """
    fields = {
        name: fields_and_extra.pop(name)
        for name in ("host", "login", "password", "schema", "port")
        if name in fields_and_extra
    }
    value: dict[str, Any] = {"conn_type": conn_type, **{k: v for k, v in fields.items() if v is not None}}
    value["extra"] = fields_and_extra
    return f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value)


def load_dag(path: Path, dag_id: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"dagfile_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    for value in vars(module).values():
        if getattr(value, "dag_id", None) == dag_id:
            return value
    raise AssertionError(f"no DAG {dag_id} in {path}")


def task_states(dag_run: Any) -> dict[str, str | None]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def xcom(dag_run: Any, task_id: str, key: str = "return_value") -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, key=key)
            .one_or_none()
        )
        return None if row is None else XComModel.deserialize_value(row)


class EmulatorClient:
    """Reads what landed, over the emulator's inspection API."""

    def __init__(self, emu: Any, key: str | None = None) -> None:
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        self.emu = emu
        self.key = key or emu.app_key
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"AppKey {self.key}"
        # A keep-alive connection the emulator closed while a long dag.test() ran can be reset as it is
        # reused (seen once under load, 2026-12-05): reads are retried; POSTs (faults) never are.
        reads = Retry(total=3, connect=3, read=3, status=0, allowed_methods={"GET"}, backoff_factor=0.1)
        self.session.mount("http://", HTTPAdapter(max_retries=reads))

    def rows(self, table: str, pool: str = POOL) -> list[dict[str, Any]]:
        r = self.session.get(f"{self.emu.url}/emulator/api/pools/{pool}/tables/{table}.json", timeout=30)
        if r.status_code == 404:
            return []
        r.raise_for_status()
        return list(r.json())

    def tables(self, pool: str = POOL) -> list[dict[str, Any]]:
        r = self.session.get(f"{self.emu.url}/emulator/api/pools/{pool}/tables", timeout=30)
        r.raise_for_status()
        return list(r.json())

    def jobs(self, pool: str = POOL) -> list[dict[str, Any]]:
        r = self.session.get(f"{self.emu.url}/data-ingestion/api/v1/data-push/{pool}/jobs/", timeout=30)
        r.raise_for_status()
        return list(r.json())

    def fault(self, **fault: Any) -> None:
        r = self.session.post(f"{self.emu.url}/emulator/api/faults", json=fault, timeout=30)
        r.raise_for_status()

    def stats(self) -> dict[str, Any]:
        r = self.session.get(f"{self.emu.url}/emulator/api/stats", timeout=30)
        r.raise_for_status()
        return dict(r.json())
