"""DataPushJobSensor through dag.test(): poke, reschedule and deferrable modes; ERROR fails with the job's logs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_celonis.hooks.celonis import CelonisHook
from airflow_provider_celonis.operators.data_push import DataPushOperator
from airflow_provider_celonis.sensors.data_push import DataPushJobSensor
from tests.helpers import POOL, EmulatorClient, task_states


def run_sensor(make_dag: Callable[..., Any], job_id: str, **kwargs: Any) -> Any:
    """Run a one-task DAG whose ``wait`` task senses ``job_id`` (polling every 0.2 s, 60 s timeout)."""
    kwargs = {"poke_interval": 0.2, "timeout": 60, **kwargs}
    return make_dag(DataPushJobSensor, task_id="wait", job_id=job_id, **kwargs).test()


def submitted_job(tmp_path: Path, keys: list[str] | None = None) -> str:
    hook = CelonisHook()
    job = hook.create_job("sensed", "DELTA", keys=keys or [])
    pq.write_table(pa.table({"id": [1, 2]}), tmp_path / "c.parquet")
    hook.upload_chunk(job["id"], tmp_path / "c.parquet")
    hook.execute_job(job["id"])
    return str(job["id"])


MODES: dict[str, dict[str, Any]] = {
    "poke": {"mode": "poke"},
    "reschedule": {"mode": "reschedule"},
    "deferrable": {"deferrable": True},
}


@pytest.mark.usefixtures("celonis_conn")
@pytest.mark.parametrize("mode", ["poke", "reschedule", "deferrable"])
def test_sensor_modes_succeed_on_done(make_dag: Callable[..., Any], tmp_path: Path, mode: str) -> None:
    job_id = submitted_job(tmp_path)
    run = run_sensor(make_dag, job_id, **MODES[mode])
    assert task_states(run) == {"wait": "success"}
    assert CelonisHook().get_job(job_id)["status"] == "DONE"


@pytest.mark.usefixtures("celonis_conn")
@pytest.mark.parametrize("mode", ["poke", "deferrable"])
def test_sensor_fails_on_error_with_logs(
    make_dag: Callable[..., Any], tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    job_id = submitted_job(tmp_path, keys=["no_such_key"])
    run = run_sensor(make_dag, job_id, retries=3, **MODES[mode])
    assert task_states(run) == {"wait": "failed"}  # failed for good: retries are pointless for ERROR
    output = capsys.readouterr().out
    assert f"Celonis data push job {job_id} ended ERROR" in output
    assert "no_such_key" in output


@pytest.mark.usefixtures("celonis_conn")
def test_sensor_fails_on_canceled(make_dag: Callable[..., Any], capsys: pytest.CaptureFixture[str]) -> None:
    hook = CelonisHook()
    job = hook.create_job("sensed", "DELTA")
    hook.cancel_job(job["id"])
    run = run_sensor(make_dag, job["id"], mode="poke")
    assert task_states(run) == {"wait": "failed"}
    assert "ended CANCELED" in capsys.readouterr().out


@pytest.mark.usefixtures("celonis_conn")
def test_operator_on_kill_cancels_its_job(landed: EmulatorClient) -> None:
    job = CelonisHook().create_job("killed", "DELTA")
    operator = DataPushOperator(task_id="push", source="x.csv", target_table="killed")
    operator._job_id, operator._pool = job["id"], POOL
    operator.on_kill()
    assert [j["status"] for j in landed.jobs()] == ["CANCELED"]


@pytest.mark.usefixtures("celonis_conn")
@pytest.mark.parametrize(("soft_fail", "state"), [(False, "failed"), (True, "skipped")])
def test_deferred_sensor_timeout_leaves_the_job_alone(
    make_dag: Callable[..., Any], capsys: pytest.CaptureFixture[str], soft_fail: bool, state: str
) -> None:
    """The sensor does not own the job: its timeout fails (or skips) the task and never cancels."""
    job = CelonisHook().create_job("sensed", "DELTA")  # stays NEW: never finishes on its own
    run = run_sensor(make_dag, job["id"], timeout=2, deferrable=True, soft_fail=soft_fail)
    assert task_states(run) == {"wait": state}
    assert CelonisHook().get_job(job["id"])["status"] == "NEW"
    if not soft_fail:
        output = capsys.readouterr().out
        assert "Sensor timed out waiting for Celonis" in output
        assert "left it as it is" in output
