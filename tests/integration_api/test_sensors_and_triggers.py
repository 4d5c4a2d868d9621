"""``DataJobSensor``, ``DataModelLoadSensor`` and the two triggers: waiting without starting, restarts, kills."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from airflow_provider_celonis.hooks.celonis import CelonisHook
from airflow_provider_celonis.hooks.executions import Baseline, execution_baseline
from airflow_provider_celonis.operators.data_job import DataJobOperator
from airflow_provider_celonis.sensors.integration import DataJobSensor, DataModelLoadSensor
from airflow_provider_celonis.triggers.integration import DataJobTrigger, DataModelLoadTrigger
from tests.helpers import POOL, task_states
from tests.integration_api.conftest import Pipeline

FAST: dict[str, Any] = {"poke_interval": 0.2, "timeout": 60}


def execute(job_id: str = "job-orders") -> None:
    """Someone else starts the data job (the Celonis UI, a schedule)."""
    hook = CelonisHook()
    hook.execute_data_job(job_id, hook.execution_configuration(POOL, job_id), Baseline())


@pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferred"])
def test_data_job_sensor_waits_for_the_running_execution(
    start_pipeline: Callable[..., Pipeline], make_dag: Callable[..., Any], deferrable: bool
) -> None:
    """No ``started_after``: the sensor's first look finds the execution running and waits for its end. The run
    outlasts the task's start by a margin (Airflow 3.2's dag.test() took 6 s to start it on a loaded machine)."""
    pipeline = start_pipeline(integration_duration=10.0)
    execute()
    run = make_dag(
        DataJobSensor, task_id="wait", data_job="Transform orders", deferrable=deferrable, **FAST
    ).test()
    assert task_states(run) == {"wait": "success"}
    assert [e["status"] for e in pipeline.executions()] == ["SUCCESS"]  # it started nothing


def test_data_job_sensor_fails_with_the_sql_error(
    pipeline: Pipeline, make_dag: Callable[..., Any], task_log: Callable[[], str]
) -> None:
    since = datetime.now(timezone.utc).isoformat()
    execute("job-broken")  # it ends before the sensor looks: started_after says it is the one
    run = make_dag(
        DataJobSensor, task_id="wait", data_job="job-broken", started_after=since, deferrable=True, **FAST
    ).test()
    assert task_states(run) == {"wait": "failed"}
    assert "no_such_table" in task_log()
    assert len(pipeline.executions("job-broken")) == 1


def test_started_after_accepts_an_execution_that_already_ended(
    pipeline: Pipeline, make_dag: Callable[..., Any]
) -> None:
    execute()
    pipeline.wait_for(lambda: pipeline.executions()[0]["status"] == "SUCCESS")
    run = make_dag(
        DataJobSensor, task_id="wait", data_job="job-orders", started_after="2020-01-01T00:00:00Z", **FAST
    ).test()
    assert task_states(run) == {"wait": "success"}


def test_sensor_timeout_leaves_the_job_alone(
    start_pipeline: Callable[..., Pipeline], make_dag: Callable[..., Any]
) -> None:
    pipeline = start_pipeline(integration_duration=20.0)
    execute()
    run = make_dag(
        DataJobSensor, task_id="wait", data_job="job-orders", deferrable=True, poke_interval=0.2, timeout=1
    ).test()
    assert task_states(run) == {"wait": "failed"}
    assert pipeline.executions()[0]["status"] in ("QUEUED", "RUNNING")


@pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferred"])
def test_data_model_load_sensor(
    start_pipeline: Callable[..., Pipeline], make_dag: Callable[..., Any], deferrable: bool
) -> None:
    """The load started before the sensor: ``started_after`` makes it the one waited for, whether the task
    starts while it runs (the usual case: the sensor defers or pokes) or after it ended (a slow start)."""
    pipeline = start_pipeline(integration_duration=4.0)
    before = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    CelonisHook().reload_data_model("dm-raw", Baseline(), data_pool_id=POOL)
    run = make_dag(
        DataModelLoadSensor,
        task_id="wait",
        data_model="Raw orders",
        deferrable=deferrable,
        started_after=before,
        **FAST,
    ).test()
    assert task_states(run) == {"wait": "success"}
    assert [ld["status"] for ld in pipeline.model("dm-raw")["loads"]] == ["SUCCESS"]


def test_data_model_load_sensor_fails_on_error(
    pipeline: Pipeline, make_dag: Callable[..., Any], task_log: Callable[[], str]
) -> None:
    pipeline.next_load("ERROR", "the model is broken")
    since = datetime.now(timezone.utc)
    CelonisHook().reload_data_model("dm-raw", Baseline(), data_pool_id=POOL)
    run = make_dag(
        DataModelLoadSensor, task_id="wait", data_model="dm-raw", started_after=since, **FAST
    ).test()
    assert task_states(run) == {"wait": "failed"}
    assert "the model is broken" in task_log()


async def first_event(trigger: Any, limit: float = 60) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("the trigger ended without an event")

    return await asyncio.wait_for(run(), limit)


def test_a_restarted_triggerer_resumes_the_wait(start_pipeline: Callable[..., Pipeline]) -> None:
    """The triggerer dies mid-wait; a new one rebuilds the trigger from its serialized kwargs and fires
    with the outcome of the same execution (not the previous one, not a new one)."""
    pipeline = start_pipeline(integration_duration=2.0, integration_status_lag=1.0)
    hook = CelonisHook()
    baseline = execution_baseline(hook.data_job_status("job-orders"))
    execute()
    trigger = DataJobTrigger("job-orders", POOL, baseline.as_dict(), poll_interval=0.2)

    async def die_early() -> None:
        task = asyncio.ensure_future(first_event(trigger))
        await asyncio.sleep(0.5)
        task.cancel()  # the triggerer process is gone; nothing was cancelled in Celonis
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(die_early())
    assert pipeline.executions()[0]["status"] in ("QUEUED", "RUNNING")
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_celonis.triggers.integration.DataJobTrigger"
    assert "key" not in str(kwargs).lower()  # ids and numbers only, no credentials
    event = asyncio.run(first_event(DataJobTrigger(**kwargs)))
    assert event["status"] == "success"
    assert event["run_status"] == "SUCCESS"
    assert [e["status"] for e in pipeline.executions()] == ["SUCCESS"]


def test_trigger_on_kill_cancels_the_execution(start_pipeline: Callable[..., Pipeline]) -> None:
    pipeline = start_pipeline(integration_duration=20.0)
    execute()
    asyncio.run(DataJobTrigger("job-orders", POOL, {}, poll_interval=0.2).on_kill())
    pipeline.wait_for(lambda: pipeline.executions()[0]["status"] == "CANCEL")


def test_operator_on_kill_cancels_the_execution(
    start_pipeline: Callable[..., Pipeline], airflow_db: Any
) -> None:
    """Airflow calls ``on_kill`` while ``execute`` waits (the task was marked failed, or timed out)."""
    del airflow_db
    pipeline = start_pipeline(integration_duration=20.0)
    op = DataJobOperator(task_id="transform", data_job="job-orders", poll_interval=0.2)

    class TaskInstance:
        def xcom_push(self, key: str, value: Any) -> None:
            del key, value  # the extra link's XCom; no metadata DB in this test

    failure: list[BaseException] = []

    def run() -> None:
        try:
            op.execute({"ti": TaskInstance()})  # type: ignore[typeddict-item]
        except BaseException as exc:  # noqa: BLE001 - what execute raised is the assertion below
            failure.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    pipeline.wait_for(lambda: bool(pipeline.executions()) and pipeline.executions()[0]["status"] == "RUNNING")
    op.on_kill()
    worker.join(timeout=30)
    assert pipeline.executions()[0]["status"] == "CANCEL"
    assert failure, "execute returned although the execution was cancelled"
    assert "ended CANCEL" in str(failure[0])


def test_data_model_trigger_fires_on_the_new_load(pipeline: Pipeline) -> None:
    hook = CelonisHook()
    hook.reload_data_model("dm-raw", Baseline(), data_pool_id=POOL)
    pipeline.wait_for(lambda: pipeline.model("dm-raw")["loads"][-1]["status"] == "SUCCESS")
    first = pipeline.model("dm-raw")["loads"][0]["id"]
    baseline = Baseline(first)
    hook.reload_data_model("dm-raw", baseline, data_pool_id=POOL)
    event = asyncio.run(
        first_event(DataModelLoadTrigger("dm-raw", POOL, baseline.as_dict(), poll_interval=0.2))
    )
    assert event["status"] == "success"
    assert event["entry"]["dataLoadId"] != first
    assert event["entry"]["dataLoadId"] == pipeline.model("dm-raw")["loads"][-1]["id"]
