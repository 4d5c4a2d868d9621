"""An emulator configured with data jobs and data models over a pushed ``orders`` table, and its inspection."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_celonis.hooks.celonis import CelonisHook
from tests.helpers import ADMIN_KEY, POOL, EmulatorClient

ORDERS: list[dict[str, Any]] = [
    {"id": 1, "customer": "acme", "amount": 50.0, "note": None},
    {"id": 2, "customer": "acme", "amount": 150.0, "note": "rush"},
    {"id": 3, "customer": "globex", "amount": 300.0, "note": ""},
    {"id": 4, "customer": "initech", "amount": None, "note": "x" * 300},
]
TOTALS = [
    {"customer": "acme", "total": 200.0, "n": 2},
    {"customer": "globex", "total": 300.0, "n": 1},
    {"customer": "initech", "total": None, "n": 1},
]
BIG = [r for r in ORDERS if (r["amount"] or 0) >= 100]

JOB = {
    "id": "job-orders",
    "name": "Transform orders",
    "transformations": [
        {
            "id": "t-totals",
            "name": "order totals",
            "sql": "CREATE OR REPLACE TABLE order_totals AS "
            "SELECT customer, SUM(amount) AS total, COUNT(*) AS n FROM orders GROUP BY customer",
        },
        {
            "id": "t-big",
            "name": "big orders",
            "sql": "CREATE OR REPLACE TABLE big_orders AS SELECT * FROM orders WHERE amount >= 100",
        },
    ],
    "data_model_executions": [{"id": "dme-orders", "data_model_id": "dm-orders"}],
}
BROKEN = {
    "id": "job-broken",
    "name": "Broken job",
    "transformations": [
        {"id": "b-1", "name": "fine", "sql": "CREATE OR REPLACE TABLE fine AS SELECT 1 AS one"},
        {"id": "b-2", "name": "bad", "sql": "CREATE OR REPLACE TABLE bad AS SELECT * FROM no_such_table"},
        {"id": "b-3", "name": "after", "sql": "CREATE OR REPLACE TABLE after_bad AS SELECT 1 AS one"},
    ],
}
ONCE = {  # succeeds once, then fails ("already exists"): tells a new run's outcome from the last one's
    "id": "job-once",
    "name": "Once only",
    "transformations": [
        {"id": "o-1", "name": "create once", "sql": "CREATE TABLE once_only AS SELECT 1 AS one"}
    ],
}
MODEL = {"id": "dm-orders", "name": "Orders model", "tables": ["orders", "order_totals"]}
RAW = {"id": "dm-raw", "name": "Raw orders", "tables": ["orders"]}  # loadable before the data job ran
CONFIG = {"pools": {POOL: {"data_jobs": [JOB, BROKEN, ONCE], "data_models": [MODEL, RAW]}}}
APP_KEY = "app-key-0123456789"


@dataclass
class Pipeline:
    """The emulator, its admin client, and what the tests read back."""

    emu: Any
    client: EmulatorClient

    def push_orders(self, rows: Sequence[dict[str, Any]] = ORDERS) -> None:
        """Push ``orders`` (REPLACE) through the Data Push API, as a DataPushOperator upstream would."""
        path = Path(self.emu.data_dir) / "orders-seed.parquet"
        pq.write_table(pa.Table.from_pylist(list(rows)), path)
        hook = CelonisHook()
        job = hook.create_job(
            "orders",
            "REPLACE",
            table_schema=[
                {"columnName": "id", "columnType": "INTEGER"},
                {"columnName": "customer", "columnType": "STRING", "fieldLength": 100},
                {"columnName": "amount", "columnType": "FLOAT"},
                {"columnName": "note", "columnType": "STRING", "fieldLength": 1000},
            ],
        )
        hook.upload_chunk(job["id"], path)
        hook.execute_job(job["id"])
        hook.wait_for_job(job["id"], poll_interval=0.2, timeout=60)

    def rows(self, table: str, key: str) -> list[dict[str, Any]]:
        return sorted(self.client.rows(table), key=lambda r: (r[key] is None, r[key]))

    def executions(self, job_id: str = "job-orders") -> list[dict[str, Any]]:
        r = self.client.session.get(f"{self.emu.url}/emulator/api/pools/{POOL}/data-jobs/{job_id}/executions")
        r.raise_for_status()
        return list(r.json())

    def model(self, model_id: str = "dm-orders") -> dict[str, Any]:
        r = self.client.session.get(f"{self.emu.url}/emulator/api/pools/{POOL}/data-models/{model_id}")
        r.raise_for_status()
        return dict(r.json())

    def next_load(self, status: str, message: str, model_id: str = "dm-raw") -> None:
        body = {"pool_id": POOL, "data_model_id": model_id, "status": status, "message": message}
        r = self.client.session.post(f"{self.emu.url}/emulator/api/faults/next-load-status", json=body)
        r.raise_for_status()

    def wait_for(self, check: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, "timed out waiting for the emulator"
            time.sleep(0.1)


@pytest.fixture
def start_pipeline(
    celonis_emulator_factory: Callable[..., Any], airflow_conn: Callable[..., str], tmp_path: Path
) -> Callable[..., Pipeline]:
    """``start_pipeline(profile=..., integration_duration=..., integration_status_lag=...)``: an emulator with
    the data jobs and model above, the ``celonis_default`` connection to it, and ``orders`` pushed."""

    def start(push: bool = True, **settings: Any) -> Pipeline:
        config = tmp_path / "integration.json"
        config.write_text(json.dumps(CONFIG))
        settings.setdefault("integration_duration", 0.1)
        emu = celonis_emulator_factory(
            app_keys=(APP_KEY, ADMIN_KEY), integration_config=config, job_duration=0.1, **settings
        )
        airflow_conn("celonis_default", host=emu.url, password=APP_KEY, data_pool_id=POOL, retries=2)
        pipeline = Pipeline(emu, EmulatorClient(emu, ADMIN_KEY))
        if push:
            pipeline.push_orders()
        return pipeline

    return start


@pytest.fixture
def task_log(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Callable[[], str]:
    """What the tasks logged. Airflow's stdout handler keeps the stream of the test that configured logging
    first, so a later test's ``capsys`` may miss task lines: ``caplog`` (propagation to root) has them."""
    return lambda: capsys.readouterr().out + caplog.text


@pytest.fixture
def pipeline(start_pipeline: Callable[..., Pipeline]) -> Pipeline:
    return start_pipeline()
