"""``DataJobOperator`` against the emulator's Integration API, run by real Airflow (``dag.test()``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_celonis.operators.data_job import DataJobOperator
from airflow_provider_celonis.operators.data_model import DataModelLoadOperator
from airflow_provider_celonis.operators.data_push import DataPushOperator
from tests.helpers import task_states, xcom
from tests.integration_api.conftest import BIG, ORDERS, TOTALS, Pipeline

FAST: dict[str, Any] = {"poll_interval": 0.2}


def test_push_then_data_job_then_model_load(
    start_pipeline: Callable[..., Pipeline], make_dag: Callable[..., Any]
) -> None:
    """The chain of the issue: the pushed rows, the transformation's output and the model's snapshot.
    (Deferred, the same chain runs in tests/test_example_dags.py and end to end.)"""
    deferrable = False
    pipeline = start_pipeline(push=False)
    import pandas as pd

    frame = pd.DataFrame(ORDERS)

    def tasks() -> None:
        push = DataPushOperator(
            task_id="push", source=frame, target_table="orders", job_type="REPLACE", poll_interval=0.2
        )
        job = DataJobOperator(task_id="transform", data_job="Transform orders", deferrable=deferrable, **FAST)
        load = DataModelLoadOperator(task_id="load", data_model="Orders model", deferrable=deferrable, **FAST)
        push >> job >> load

    run = make_dag(tasks=tasks).test()
    assert task_states(run) == {"push": "success", "transform": "success", "load": "success"}
    assert pipeline.rows("order_totals", "customer") == TOTALS
    assert pipeline.rows("big_orders", "id") == BIG
    (execution,) = pipeline.executions()
    assert execution["status"] == "SUCCESS"
    snapshot = pipeline.model()["tables"]
    assert sorted(snapshot["order_totals"], key=lambda r: r["customer"]) == TOTALS
    assert (
        sorted(snapshot["orders"], key=lambda r: r["id"]) == ORDERS
    )  # NULL stays NULL, '' stays '', nothing cut

    result = xcom(run, "transform")
    assert result["job_id"] == "job-orders"
    assert result["status"] == "SUCCESS"
    assert str(result["start"]).endswith("Z")
    assert [(t["name"], t["status"]) for t in result["tasks"]] == [
        ("order totals", "SUCCESS"),
        ("big orders", "SUCCESS"),
    ]
    load = xcom(run, "load")
    assert load["status"] == "SUCCESS"
    assert load["load_type"] == "COMPLETE"
    assert load["load_id"]
    # The data job's own data model load step ran too, and then ours: two loads, the last one is ours.
    assert [ld["id"] for ld in pipeline.model()["loads"]][-1] == load["load_id"]


def test_only_some_transformations_and_no_model_load(
    pipeline: Pipeline, make_dag: Callable[..., Any]
) -> None:
    run = make_dag(
        DataJobOperator,
        task_id="transform",
        data_job="job-orders",
        transformations=["big orders"],
        data_model_loads=[],
        **FAST,
    ).test()
    assert task_states(run) == {"transform": "success"}
    assert pipeline.rows("big_orders", "id") == BIG
    assert pipeline.client.rows("order_totals") == []
    (execution,) = pipeline.executions()
    config = execution["configuration"]
    assert config["executeOnlySubsetOfTransformations"] is True
    assert config["transformations"] == ["t-big"]
    assert config["loadOnlySubsetOfDataModels"] is True
    assert config["dataModels"] == []
    assert pipeline.model()["loads"] == []


def test_a_chosen_data_model_load_sends_its_tables(pipeline: Pipeline, make_dag: Callable[..., Any]) -> None:
    """pycelonis: the configuration "needs to contain all table ids to reload". An empty list was sent, and
    only the emulator took it for the step's tables; it now reloads none, as a Celonis may."""
    run = make_dag(
        DataJobOperator, task_id="transform", data_job="job-orders", data_model_loads=["Orders model"], **FAST
    ).test()
    assert task_states(run) == {"transform": "success"}
    (execution,) = pipeline.executions()
    from airflow_provider_celonis.hooks.celonis import CelonisHook

    tables = [t["id"] for t in CelonisHook().list_data_job_loads("job-orders")[0]["tables"]]
    assert execution["configuration"]["dataModels"] == [
        {"dataModelExecutionId": "dme-orders", "tables": tables}
    ]
    assert len(tables) == 2
    pipeline.wait_for(lambda: [ld["status"] for ld in pipeline.model()["loads"]] == ["SUCCESS"])
    assert sorted(pipeline.model()["loads"][0]["tables"]) == ["order_totals", "orders"]


def test_a_task_list_that_cannot_be_read_does_not_fail_a_successful_job(
    pipeline: Pipeline, make_dag: Callable[..., Any], task_log: Callable[[], str]
) -> None:
    """The execution list is a report: a refusal to read it (a 403 on logs, a paging the API does not know)
    failed a data job that had succeeded, and on Airflow 3.2 every retry ran it again."""
    pipeline.client.fault(
        method="GET", path="/logs/job-orders/executions$", action="status", status=403, count=5
    )
    run = make_dag(DataJobOperator, task_id="transform", data_job="job-orders", **FAST).test()
    assert task_states(run) == {"transform": "success"}
    assert xcom(run, "transform")["tasks"] == []
    assert "Could not read the task executions of data job job-orders" in task_log()
    assert [e["status"] for e in pipeline.executions()] == ["SUCCESS"]


def test_a_refused_start_is_waited_out_while_the_status_lags(
    start_pipeline: Callable[..., Pipeline], make_dag: Callable[..., Any]
) -> None:
    """Someone else's execution just started and the status does not show it yet (a 10 s lag): each start
    is refused with 409. The task gave up after five refusals about a second apart; it waits for that run."""
    from airflow_provider_celonis.hooks.celonis import CelonisHook
    from airflow_provider_celonis.hooks.executions import Baseline

    pipeline = start_pipeline(integration_duration=4.0, integration_status_lag=10.0)
    hook = CelonisHook()
    hook.execute_data_job("job-orders", hook.execution_configuration("pool-1", "job-orders"), Baseline())
    run = make_dag(DataJobOperator, task_id="transform", data_job="job-orders", poll_interval=1.0).test()
    assert task_states(run) == {"transform": "success"}
    executions = pipeline.executions()
    assert [e["status"] for e in executions] == ["SUCCESS", "SUCCESS"]
    assert executions[1]["start"] >= executions[0]["end"]


def test_failing_sql_fails_with_the_database_error(
    pipeline: Pipeline, make_dag: Callable[..., Any], task_log: Callable[[], str]
) -> None:
    run = make_dag(DataJobOperator, task_id="transform", data_job="Broken job", **FAST).test()
    output = task_log()
    assert task_states(run) == {"transform": "failed"}
    assert "Celonis data job job-broken ended FAIL" in output
    assert "bad: " in output
    assert "no_such_table" in output  # DuckDB's own message, as the failed task logged it
    (execution,) = pipeline.executions("job-broken")
    assert [t["status"] for t in execution["tasks"]] == ["SUCCESS", "FAIL", "SKIPPED"]
    assert pipeline.client.rows("after_bad") == []


@pytest.mark.parametrize(
    ("profile", "deferrable"),
    [("documented", True), ("lenient", False)],
    ids=["documented-deferred", "lenient-sync"],
)
def test_the_previous_success_is_not_taken_for_ours(
    start_pipeline: Callable[..., Pipeline], make_dag: Callable[..., Any], profile: str, deferrable: bool
) -> None:
    """The job's last execution succeeded; ours fails. Celonis keeps showing the old SUCCESS for a moment
    after the execute: a client that reads the status alone reports success."""
    pipeline = start_pipeline(profile=profile, integration_status_lag=2.0)
    first = make_dag(DataJobOperator, task_id="once", data_job="Once only", **FAST).test()
    assert task_states(first) == {"once": "success"}
    second = make_dag(
        DataJobOperator, task_id="once", data_job="Once only", deferrable=deferrable, **FAST
    ).test()
    assert task_states(second) == {"once": "failed"}
    assert [e["status"] for e in pipeline.executions("job-once")] == ["SUCCESS", "FAIL"]


def test_a_running_execution_is_waited_for_then_ours_starts(
    start_pipeline: Callable[..., Pipeline], make_dag: Callable[..., Any]
) -> None:
    from airflow_provider_celonis.hooks.celonis import CelonisHook
    from airflow_provider_celonis.hooks.executions import Baseline

    pipeline = start_pipeline(integration_duration=3.0)
    hook = CelonisHook()
    config = hook.execution_configuration("pool-1", "job-orders")
    hook.execute_data_job("job-orders", config, Baseline())  # someone else's execution
    run = make_dag(DataJobOperator, task_id="transform", data_job="job-orders", **FAST).test()
    assert task_states(run) == {"transform": "success"}
    executions = pipeline.executions()
    assert [e["status"] for e in executions] == ["SUCCESS", "SUCCESS"]
    assert executions[1]["start"] >= executions[0]["end"]  # ours started after the other ended


def test_if_running_fail_refuses(
    start_pipeline: Callable[..., Pipeline], make_dag: Callable[..., Any]
) -> None:
    from airflow_provider_celonis.hooks.celonis import CelonisHook
    from airflow_provider_celonis.hooks.executions import Baseline

    pipeline = start_pipeline(integration_duration=3.0)
    hook = CelonisHook()
    hook.execute_data_job("job-orders", hook.execution_configuration("pool-1", "job-orders"), Baseline())
    run = make_dag(
        DataJobOperator, task_id="transform", data_job="job-orders", if_running="fail", **FAST
    ).test()
    assert task_states(run) == {"transform": "failed"}
    assert len(pipeline.executions()) == 1


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferred"])
def test_timeout_cancels_the_execution(
    start_pipeline: Callable[..., Pipeline],
    make_dag: Callable[..., Any],
    task_log: Callable[[], str],
    deferrable: bool,
) -> None:
    pipeline = start_pipeline(integration_duration=30.0)
    run = make_dag(
        DataJobOperator, task_id="transform", data_job="job-orders", timeout=2, deferrable=deferrable, **FAST
    ).test()
    assert task_states(run) == {"transform": "failed"}
    assert "cancelled it" in task_log()
    pipeline.wait_for(lambda: pipeline.executions()[0]["status"] == "CANCEL")


def test_no_wait_returns_once_started(pipeline: Pipeline, make_dag: Callable[..., Any]) -> None:
    run = make_dag(
        DataJobOperator, task_id="transform", data_job="job-orders", wait_for_completion=False
    ).test()
    assert task_states(run) == {"transform": "success"}
    assert xcom(run, "transform")["status"] == "STARTED"
    pipeline.wait_for(lambda: pipeline.executions()[0]["status"] == "SUCCESS")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"data_job": "Transfrom orders"},
            "has no data job 'Transfrom orders'; its data jobs: Transform orders",
        ),
        (
            {"data_job": "job-orders", "transformations": ["nope"]},
            "has no transformation 'nope'; its transformations: order totals",
        ),
        ({"data_job": "job-orders", "data_model_loads": ["nope"]}, "has no data model load 'nope'"),
        ({"data_job": ""}, "data_job is empty"),
    ],
)
def test_unknown_names_fail_before_anything_runs(
    pipeline: Pipeline,
    make_dag: Callable[..., Any],
    task_log: Callable[[], str],
    kwargs: dict[str, Any],
    expected: str,
) -> None:
    run = make_dag(DataJobOperator, task_id="transform", **kwargs, **FAST).test()
    assert task_states(run) == {"transform": "failed"}
    assert expected in task_log()
    assert pipeline.executions() == []
