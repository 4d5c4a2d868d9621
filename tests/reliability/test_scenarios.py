"""The fault suite: one table of failure scenarios, each run through real Airflow (dag.test) into the emulator.

Every scenario asserts the final table equals the expected rows exactly, that no job is left NEW (no
orphan), the task's final state, and the message a user sees in the task log.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers import ADMIN_KEY, POOL, EmulatorClient, task_states

QUOTA_WINDOW = 20
HAS_TASK_STATE_STORE = importlib.util.find_spec("airflow.models.task_state_store") is not None
ROWS = [{"id": i, "name": f"name-{i}", "amount": i * 2.5} for i in range(1, 3001)]


@dataclass
class Scenario:
    name: str
    #: Prepare faults/settings on the running emulator before the DAG runs.
    arrange: Callable[[EmulatorClient, Any], None] = lambda client, emu: None
    #: Extra operator arguments.
    operator: str = ""
    emulator: dict[str, Any] = field(default_factory=dict)
    connection: dict[str, Any] = field(default_factory=dict)
    expect_state: str = "success"
    expect_message: str = ""
    expect_rows: bool = True
    #: Jobs the emulator should have seen created (None: do not check), and DONE jobs left listed.
    expect_creates: int | None = 1
    expect_done_jobs: int | None = None
    retries: int = 0
    #: Runs in a thread while the DAG runs (e.g. restart the emulator mid-job).
    during: Callable[[EmulatorClient, Any], None] | None = None
    #: Resuming a retried try needs ``task_state_store`` (Airflow >= 3.3); 3.2 pushes anew (documented).
    resumes: bool = False


def fault(**kw: Any) -> Callable[[EmulatorClient, Any], None]:
    return lambda client, emu: client.fault(**kw)


def faults(*rules: dict[str, Any]) -> Callable[[EmulatorClient, Any], None]:
    def arrange(client: EmulatorClient, emu: Any) -> None:
        for rule in rules:
            client.fault(**rule)

    return arrange


def next_job_error(client: EmulatorClient, emu: Any) -> None:
    client.session.post(
        f"{emu.url}/emulator/api/faults/next-job-error",
        json={"message": "column 'amount': value out of range"},
        timeout=10,
    ).raise_for_status()


def restart_when_running(client: EmulatorClient, emu: Any) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            jobs = client.jobs()
        except requests.RequestException:
            jobs = []
        if any(j["status"] in ("QUEUED", "RUNNING") for j in jobs):
            emu.restart()
            return
        time.sleep(0.05)


SCENARIOS = [
    Scenario(
        "5xx burst on upload",
        faults({"method": "POST", "path": "/chunks/upserted$", "status": 503, "count": 3}),
    ),
    Scenario(
        "gateway 502/504 on every call kind",
        faults(
            {"method": "POST", "path": "/jobs/?$", "status": 502, "count": 1},
            {"method": "POST", "path": "/chunks/upserted$", "status": 504, "count": 1},
            {"method": "GET", "path": "/jobs/[^/]+$", "status": 502, "count": 2},
        ),
    ),
    Scenario(
        "connection reset before an answer",
        fault(method="POST", path="/chunks/upserted$", action="close", count=2),
    ),
    Scenario(
        "answer lost after a chunk was stored",
        fault(method="POST", path="/chunks/upserted$", action="close_after", count=1),
    ),
    Scenario(
        "answer lost after a job was created",
        fault(method="POST", path="/jobs/?$", action="close_after", count=1),
    ),
    Scenario(
        "answer lost after execute was accepted",
        fault(method="POST", path="/jobs/[^/]+/?$", action="close_after", count=1),
    ),
    Scenario(
        "429 per-second burst on execute",
        fault(method="POST", path="/jobs/[^/]+/?$", status=429, count=3, headers={"Retry-After": "1"}),
    ),
    Scenario(
        "hourly quota spent: sync operator sleeps until the window reopens",
        lambda client, emu: _spend_quota(client, emu),
        emulator={"execute_per_hour": 1, "quota_window_seconds": QUOTA_WINDOW},
        connection={"retries": 1},
        expect_message="execute budget is spent",
    ),
    Scenario(
        "hourly quota spent: deferrable operator defers until the window reopens",
        lambda client, emu: _spend_quota(client, emu),
        operator="deferrable=True,",
        emulator={"execute_per_hour": 1, "quota_window_seconds": QUOTA_WINDOW},
        connection={"retries": 1},
        expect_message="execute budget is spent",
    ),
    Scenario(
        "job ends in ERROR",
        next_job_error,
        expect_state="failed",
        expect_message="column 'amount': value out of range",
        expect_rows=False,
    ),
    Scenario(
        "job ends in ERROR, deferrable",
        next_job_error,
        operator="deferrable=True,",
        expect_state="failed",
        expect_message="column 'amount': value out of range",
        expect_rows=False,
    ),
    Scenario(
        "worker died mid-upload (job left NEW), task retried: the NEW job is deleted and the push redone",
        faults(
            {
                "method": "POST",
                "path": "/chunks/upserted$",
                "status": 400,
                "count": 1,
                "body": '{"message": "simulated crash"}',
            },
            # The dying worker cannot clean up: its get/delete never reach the server.
            {"method": "GET", "path": "/jobs/[^/]+$", "action": "close", "count": 2},
        ),
        connection={"retries": 1},
        retries=1,
        expect_creates=2,
        expect_message="was never executed; deleting it and pushing anew",
        resumes=True,
    ),
    Scenario(
        "worker died while waiting, task retried: it reconnects to the running job",
        fault(method="GET", path="/jobs/[^/]+$", status=500, count=1, body='{"message": "simulated crash"}'),
        emulator={"job_duration": 1.5},
        connection={"retries": 0},
        retries=1,
        expect_creates=1,
        expect_message="waiting for it instead of pushing again",
        resumes=True,
    ),
    Scenario(
        "task retried after the job finished: no second push",
        fault(
            method="DELETE", path="/jobs/[^/]+$", status=400, count=1, body='{"message": "simulated crash"}'
        ),
        operator="delete_job_on_success=True,",
        retries=1,
        expect_creates=1,
        expect_done_jobs=0,
        expect_message="is already DONE; not pushing again",
        resumes=True,
    ),
    Scenario("emulator restarted mid-job", during=restart_when_running, emulator={"job_duration": 1.0}),
    Scenario(
        "OAuth token expiring mid-push",
        fault(method="POST", path="/chunks/upserted$", action="delay", delay_seconds=0.8, count=4),
        emulator={"token_ttl": 2},
        connection={"auth_type": "oauth", "login": "client-1", "password": "client-secret-0123456789"},
    ),
    Scenario(
        "server answers too slowly: read timeouts are retried",
        fault(method="GET", path="/jobs/?$", action="delay", delay_seconds=3, count=1),
        connection={"timeout": 1},
    ),
    Scenario(
        "server too slow for every retry: a clear timeout error, nothing left behind",
        fault(method="POST", path="/jobs/?$", action="delay", delay_seconds=3, count=5),
        connection={"timeout": 1, "retries": 1},
        expect_state="failed",
        expect_message="ReadTimeout",
        expect_rows=False,
        expect_creates=None,
    ),
]


def _spend_quota(client: EmulatorClient, emu: Any) -> None:
    """Use up the window's single execute with another job, as another DAG of the team would.

    Starts early in a window so that the wait asked for is longer than the hook waits inline.
    """
    while time.time() % QUOTA_WINDOW > QUOTA_WINDOW - 12:
        time.sleep(0.2)
    base = f"{emu.url}/data-ingestion/api/v1/data-push/{POOL}/jobs/"
    job = client.session.post(
        base, json={"targetName": "other", "type": "DELTA", "fileType": "PARQUET"}, timeout=10
    ).json()
    client.session.post(f"{base}{job['id']}", timeout=10).raise_for_status()


DAG = """
import datetime
from airflow.sdk import DAG
from airflow_provider_celonis.operators.data_push import DataPushOperator
with DAG("DAG_ID", schedule=None, start_date=datetime.datetime(2024, 1, 1)) as dag:
    DataPushOperator(
        task_id="push", source="SOURCE", target_table="orders", keys=["id"], poll_interval=0.2,
        chunk_size_bytes=64 * 1024, retries=RETRIES, retry_delay=datetime.timedelta(seconds=0), OPERATOR
    )
"""


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path_factory.mktemp("reliability") / "orders.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    return path


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(
    scenario: Scenario,
    source: Path,
    run_dag: Any,
    celonis_emulator_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if scenario.resumes and not HAS_TASK_STATE_STORE:
        pytest.skip("resuming a retried try needs task_state_store (Airflow >= 3.3)")
    emu = celonis_emulator_factory(
        app_keys=("app-key-0123456789", ADMIN_KEY),
        oauth_clients=("client-1:client-secret-0123456789",),
        **scenario.emulator,
    )
    client = EmulatorClient(emu, ADMIN_KEY)
    extra = {
        "data_pool_id": POOL,
        **{k: v for k, v in scenario.connection.items() if k not in ("login", "password")},
    }
    conn = {
        "conn_type": "celonis",
        "host": emu.url,
        "password": scenario.connection.get("password", "app-key-0123456789"),
        "extra": extra,
    }
    if "login" in scenario.connection:
        conn["login"] = scenario.connection["login"]
    import json

    monkeypatch.setenv("AIRFLOW_CONN_CELONIS_DEFAULT", json.dumps(conn))
    scenario.arrange(client, emu)
    helper = (
        threading.Thread(target=scenario.during, args=(client, emu), daemon=True) if scenario.during else None
    )
    if helper:
        helper.start()
    dag = (
        DAG.replace("SOURCE", str(source))
        .replace("RETRIES", str(scenario.retries))
        .replace("OPERATOR", scenario.operator)
    )
    run = run_dag(dag)
    if helper:
        helper.join(timeout=60)
    output = capsys.readouterr().out
    assert task_states(run) == {"push": scenario.expect_state}, output[-3000:]
    if scenario.expect_message:
        assert scenario.expect_message in output
    rows = sorted(client.rows("orders"), key=lambda r: r["id"])
    assert rows == (ROWS if scenario.expect_rows else [])
    jobs = client.jobs()
    assert [j for j in jobs if j["status"] == "NEW"] == [], "a job was left behind"
    if scenario.expect_creates is not None:
        creates = sum(
            n
            for key, n in client.stats()["requests"].items()
            if key.startswith("POST") and key.endswith("/jobs/")
        )
        own = [j for j in jobs if j["targetName"] == "orders"]
        assert len(own) == scenario.expect_creates or creates >= scenario.expect_creates
        done = (
            scenario.expect_done_jobs if scenario.expect_done_jobs is not None else int(scenario.expect_rows)
        )
        assert len([j for j in own if j["status"] == "DONE"]) == done


def test_triggerer_restarted_while_job_runs(celonis_conn: Any, landed: EmulatorClient, source: Path) -> None:
    """A triggerer going away (its trigger task cancelled, cleanup run) leaves the job alone; a new one fires."""
    from airflow_provider_celonis.hooks.celonis import CelonisHook
    from airflow_provider_celonis.triggers.data_push import DataPushJobTrigger

    hook = CelonisHook()
    job = hook.create_job("orders", "DELTA", keys=["id"])
    hook.upload_chunk(job["id"], source)
    hook.execute_job(job["id"])

    async def first_triggerer() -> None:
        trigger = DataPushJobTrigger(job["id"], POOL, poll_interval=0.2)
        task = asyncio.ensure_future(anext(aiter(trigger.run())))
        await asyncio.sleep(0.1)
        task.cancel()
        await trigger.cleanup()

    async def second_triggerer() -> dict[str, Any]:
        async for event in DataPushJobTrigger(job["id"], POOL, poll_interval=0.2).run():
            return dict(event.payload)
        raise AssertionError

    asyncio.run(first_triggerer())
    assert hook.get_job(job["id"])["status"] in ("QUEUED", "RUNNING", "DONE")
    assert asyncio.run(second_triggerer())["status"] == "success"
    assert sorted(landed.rows("orders"), key=lambda r: r["id"]) == ROWS
