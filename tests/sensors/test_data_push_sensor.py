"""DataPushJobSensor through dag.test(): poke, reschedule and deferrable modes; ERROR fails with the job's logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_celonis.hooks.celonis import CelonisHook
from airflow_provider_celonis.operators.data_push import DataPushOperator
from tests.helpers import POOL, EmulatorClient, task_states

SENSOR_DAG = """
import datetime
from airflow.sdk import DAG
from airflow_provider_celonis.sensors.data_push import DataPushJobSensor
with DAG("DAG_ID", schedule=None, start_date=datetime.datetime(2024, 1, 1)) as dag:
    DataPushJobSensor(task_id="wait", job_id="JOB", poke_interval=0.2, timeout=60, ARGS)
"""


def submitted_job(tmp_path: Path, keys: list[str] | None = None) -> str:
    hook = CelonisHook()
    job = hook.create_job("sensed", "DELTA", keys=keys or [])
    pq.write_table(pa.table({"id": [1, 2]}), tmp_path / "c.parquet")
    hook.upload_chunk(job["id"], tmp_path / "c.parquet")
    hook.execute_job(job["id"])
    return str(job["id"])


@pytest.mark.parametrize("args", ['mode="poke"', 'mode="reschedule"', "deferrable=True"])
def test_sensor_modes_succeed_on_done(run_dag: Any, celonis_conn: Any, tmp_path: Path, args: str) -> None:
    job_id = submitted_job(tmp_path)
    run = run_dag(SENSOR_DAG.replace("JOB", job_id).replace("ARGS", args))
    assert task_states(run) == {"wait": "success"}
    assert CelonisHook().get_job(job_id)["status"] == "DONE"


@pytest.mark.parametrize("args", ['mode="poke"', "deferrable=True"])
def test_sensor_fails_on_error_with_logs(
    run_dag: Any, celonis_conn: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: str
) -> None:
    job_id = submitted_job(tmp_path, keys=["no_such_key"])
    run = run_dag(SENSOR_DAG.replace("JOB", job_id).replace("ARGS", args + ", retries=3"))
    assert task_states(run) == {"wait": "failed"}  # failed for good: retries are pointless for ERROR
    output = capsys.readouterr().out
    assert f"Celonis data push job {job_id} ended ERROR" in output and "no_such_key" in output


def test_sensor_fails_on_canceled(
    run_dag: Any, celonis_conn: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    hook = CelonisHook()
    job = hook.create_job("sensed", "DELTA")
    hook.cancel_job(job["id"])
    run = run_dag(SENSOR_DAG.replace("JOB", job["id"]).replace("ARGS", 'mode="poke"'))
    assert task_states(run) == {"wait": "failed"}
    assert "ended CANCELED" in capsys.readouterr().out


def test_operator_on_kill_cancels_its_job(celonis_conn: Any, landed: EmulatorClient) -> None:
    job = CelonisHook().create_job("killed", "DELTA")
    operator = DataPushOperator(task_id="push", source="x.csv", target_table="killed")
    operator._job_id, operator._pool = job["id"], POOL
    operator.on_kill()
    assert [j["status"] for j in landed.jobs()] == ["CANCELED"]


@pytest.mark.parametrize(("soft_fail", "state"), [(False, "failed"), (True, "skipped")])
def test_deferred_sensor_timeout_leaves_the_job_alone(
    run_dag: Any, celonis_conn: Any, capsys: pytest.CaptureFixture[str], soft_fail: bool, state: str
) -> None:
    """The sensor does not own the job: its timeout fails (or skips) the task and never cancels."""
    job = CelonisHook().create_job("sensed", "DELTA")  # stays NEW: never finishes on its own
    dag = SENSOR_DAG.replace("timeout=60", "timeout=2").replace("JOB", job["id"])
    run = run_dag(dag.replace("ARGS", f"deferrable=True, soft_fail={soft_fail}"))
    assert task_states(run) == {"wait": state}
    assert CelonisHook().get_job(job["id"])["status"] == "NEW"
    if not soft_fail:
        output = capsys.readouterr().out
        assert "Sensor timed out waiting for Celonis" in output and "left it as it is" in output
