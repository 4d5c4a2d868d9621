"""Lost answers, refusals and crashes around execute and reload: each run starts exactly once, in both profiles."""

from __future__ import annotations

import datetime
import importlib.util
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from airflow_provider_celonis.hooks.celonis import CelonisHook
from airflow_provider_celonis.hooks.executions import Baseline, execution_baseline, load_baseline
from airflow_provider_celonis.operators.data_job import DataJobOperator
from airflow_provider_celonis.operators.data_model import DataModelLoadOperator
from tests.helpers import POOL, task_states, xcom
from tests.integration_api.conftest import APP_KEY, TOTALS, Pipeline

HAS_TASK_STATE_STORE = importlib.util.find_spec("airflow.models.task_state_store") is not None
PROFILES = ["documented", "lenient"]
FAST: dict[str, Any] = {"poll_interval": 0.2}
EXECUTE = {"method": "POST", "path": "/jobs/job-orders/execute$"}
RELOAD = {"method": "POST", "path": "/data-models/dm-raw/reload$"}

LOST: dict[str, dict[str, Any]] = {
    "answer lost after the call took effect": {"action": "close_after"},
    "502 after the call took effect": {"action": "status_after", "status": 502},
    "503 before the call was processed": {"action": "status", "status": 503},
    "connection dropped before the call was processed": {"action": "close"},
}


@pytest.fixture(autouse=True)
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lost answer is looked for in the status for 4 s (the emulator's lag is 1 s at most here)."""
    monkeypatch.setenv("AIRFLOW__CELONIS__RECONCILE_GRACE_SECONDS", "4")


@pytest.mark.parametrize("profile", PROFILES)
def test_every_lost_execute_answer_runs_the_job_once(
    start_pipeline: Callable[..., Pipeline], profile: str
) -> None:
    """Each way an execute's answer can go missing, one after the other on one job: one execution each."""
    pipeline = start_pipeline(profile=profile, integration_duration=0.1)
    hook = CelonisHook()
    for name, fault in LOST.items():
        before = len(pipeline.executions())
        pipeline.client.fault(**EXECUTE, **fault, count=1)
        entry = hook.data_job_status("job-orders")
        baseline = Baseline(execution_baseline(entry).run, hook.past_server_second())
        hook.execute_data_job("job-orders", hook.execution_configuration(POOL, "job-orders"), baseline)
        pipeline.wait_for(partial(_executions_done, pipeline, before))
        time.sleep(0.3)  # a resend would show up as a second execution by now
        assert [e["status"] for e in pipeline.executions()[before:]] == ["SUCCESS"], name
        time.sleep(1.5)  # past the emulator's status lag: the next scenario starts from a settled status


@pytest.mark.parametrize("profile", PROFILES)
def test_every_lost_reload_answer_loads_once(start_pipeline: Callable[..., Pipeline], profile: str) -> None:
    pipeline = start_pipeline(profile=profile, integration_duration=0.1)
    hook = CelonisHook()
    for name, fault in LOST.items():
        before = len(pipeline.model("dm-raw")["loads"])
        pipeline.client.fault(**RELOAD, **fault, count=1)
        baseline = Baseline(load_baseline(hook.data_model_load("dm-raw")).run, hook.past_server_second())
        hook.reload_data_model("dm-raw", baseline)
        pipeline.wait_for(partial(_loads_done, pipeline, before))
        time.sleep(0.3)
        assert [ld["status"] for ld in pipeline.model("dm-raw")["loads"][before:]] == ["SUCCESS"], name
        time.sleep(1.5)


def _executions_done(pipeline: Pipeline, before: int) -> bool:
    executions = pipeline.executions()
    return len(executions) > before and all(e["status"] not in ("QUEUED", "RUNNING") for e in executions)


def _loads_done(pipeline: Pipeline, before: int) -> bool:
    loads = pipeline.model("dm-raw")["loads"]
    return len(loads) > before and all(ld["status"] != "RUNNING" for ld in loads)


@pytest.mark.parametrize(("profile", "call"), [("documented", "execute"), ("lenient", "reload")])
def test_the_operators_reconcile_a_lost_answer(
    start_pipeline: Callable[..., Pipeline], make_dag: Callable[..., Any], profile: str, call: str
) -> None:
    """The same through the operators, in a real task (the answer lost after the call took effect)."""
    pipeline = start_pipeline(profile=profile)
    if call == "execute":
        pipeline.client.fault(**EXECUTE, action="close_after", count=1)
        run = make_dag(DataJobOperator, task_id="run", data_job="job-orders", **FAST).test()
        assert [e["status"] for e in pipeline.executions()] == ["SUCCESS"]
        assert pipeline.rows("order_totals", "customer") == TOTALS
    else:
        pipeline.client.fault(**RELOAD, action="close_after", count=1)
        run = make_dag(DataModelLoadOperator, task_id="run", data_model="dm-raw", **FAST).test()
        loads = pipeline.model("dm-raw")["loads"]
        assert [ld["status"] for ld in loads] == ["SUCCESS"]
        assert xcom(run, "run")["load_id"] == loads[0]["id"]
    assert task_states(run) == {"run": "success"}


@pytest.mark.parametrize("profile", PROFILES)
def test_status_reads_survive_5xx(
    start_pipeline: Callable[..., Pipeline], make_dag: Callable[..., Any], profile: str
) -> None:
    pipeline = start_pipeline(profile=profile, integration_duration=1.0)
    pipeline.client.fault(method="GET", path="/logs/status$", status=503, count=3, skip=1)
    run = make_dag(
        DataJobOperator, task_id="transform", data_job="job-orders", deferrable=True, **FAST
    ).test()
    assert task_states(run) == {"transform": "success"}
    assert len(pipeline.executions()) == 1


CRASH = '{"message": "crash"}'
#: How a try dies with its execution started (no retries in the hook): the retry must take it over.
DIES: dict[str, dict[str, Any]] = {
    "a status read fails while it waits": {
        "method": "GET", "path": "/logs/status$", "status": 500, "count": 1, "skip": 1, "body": CRASH
    },
    # between the send and any record of it: only the state kept before the send tells the retry
    "the execute took effect but answered an error no retry covers": {
        **EXECUTE, "action": "status_after", "status": 400, "count": 1, "body": CRASH
    },
}  # fmt: skip


@pytest.mark.skipif(
    not HAS_TASK_STATE_STORE, reason="resuming a retried try needs task_state_store (Airflow >= 3.3)"
)
@pytest.mark.parametrize(
    ("profile", "dies"),
    [(profile, "a status read fails while it waits") for profile in PROFILES]
    + [("documented", "the execute took effect but answered an error no retry covers")],
)
def test_a_retried_try_takes_over_the_execution_it_started(
    start_pipeline: Callable[..., Pipeline],
    make_dag: Callable[..., Any],
    airflow_conn: Callable[..., str],
    task_log: Callable[[], str],
    profile: str,
    dies: str,
) -> None:
    """The try dies after its execute started the job; the retry takes the execution over instead of
    starting a second one."""
    pipeline = start_pipeline(profile=profile, integration_duration=3.0)
    airflow_conn("celonis_default", host=pipeline.emu.url, password=APP_KEY, data_pool_id=POOL, retries=0)
    pipeline.client.fault(**DIES[dies])
    run = make_dag(
        DataJobOperator,
        task_id="transform",
        data_job="job-orders",
        retries=1,
        retry_delay=datetime.timedelta(seconds=0),
        **FAST,
    ).test()
    assert task_states(run) == {"transform": "success"}
    assert "An earlier try started this data job run and it is running: taking it over" in task_log()
    assert [e["status"] for e in pipeline.executions()] == ["SUCCESS"]


@pytest.mark.parametrize("profile", PROFILES)
def test_a_retry_after_a_failed_run_runs_again(
    start_pipeline: Callable[..., Pipeline], make_dag: Callable[..., Any], profile: str
) -> None:
    """A retry is a new attempt: a FAILed execution of the earlier try is not waited for again."""
    pipeline = start_pipeline(profile=profile)
    run = make_dag(
        DataJobOperator,
        task_id="broken",
        data_job="job-broken",
        retries=1,
        retry_delay=datetime.timedelta(seconds=0),
        **FAST,
    ).test()
    assert task_states(run) == {"broken": "failed"}
    assert [e["status"] for e in pipeline.executions("job-broken")] == ["FAIL", "FAIL"]


def test_a_task_cleared_after_success_starts_a_new_run(
    start_pipeline: Callable[..., Pipeline], airflow_db: Any
) -> None:
    """Airflow keeps a task's state past its success (``[state_store] clear_on_success`` is off by default):
    run again after a clear, the operator must start the data job anew, not take the finished run for its
    own. ``store`` stands in for the ``task_state_store`` Airflow hands both runs of the task instance."""
    del airflow_db
    pipeline = start_pipeline()

    class Store:
        def __init__(self) -> None:
            self.kept: dict[str, Any] = {}

        def get(self, key: str) -> Any:
            return self.kept.get(key)

        def set(self, key: str, value: Any) -> None:
            self.kept[key] = value

    class TaskInstance:
        def xcom_push(self, key: str, value: Any) -> None:
            del key, value  # the extra link's XCom; no task runner here

    context = {"ti": TaskInstance(), "task_state_store": Store()}
    for runs in (1, 2):
        op = DataJobOperator(task_id="transform", data_job="job-orders", **FAST)
        assert op.execute(context)["status"] == "SUCCESS"  # type: ignore[arg-type,index]
        assert [e["status"] for e in pipeline.executions()] == ["SUCCESS"] * runs
