"""``DataModelLoadOperator`` against the emulator, run by real Airflow (``dag.test()``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_celonis.hooks.celonis import CelonisHook
from airflow_provider_celonis.hooks.executions import Baseline
from airflow_provider_celonis.operators.data_model import DataModelLoadOperator
from tests.helpers import POOL, task_states, xcom
from tests.integration_api.conftest import ORDERS, Pipeline

FAST: dict[str, Any] = {"poll_interval": 0.2}


def by_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: r["id"])


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferred"])
def test_full_load_snapshots_the_model_tables(
    pipeline: Pipeline, make_dag: Callable[..., Any], deferrable: bool
) -> None:
    run = make_dag(
        DataModelLoadOperator, task_id="load", data_model="dm-raw", deferrable=deferrable, **FAST
    ).test()
    assert task_states(run) == {"load": "success"}
    model = pipeline.model("dm-raw")
    assert by_id(model["tables"]["orders"]) == ORDERS
    (load,) = model["loads"]
    result = xcom(run, "load")
    assert result["load_id"] == load["id"]
    assert result["status"] == "SUCCESS"
    assert result["load_type"] == "COMPLETE"
    assert str(result["start"]).endswith("Z")


def test_from_cache(pipeline: Pipeline, make_dag: Callable[..., Any]) -> None:
    run = make_dag(
        DataModelLoadOperator, task_id="load", data_model="Raw orders", force_complete=False, **FAST
    ).test()
    assert task_states(run) == {"load": "success"}
    assert xcom(run, "load")["load_type"] == "FROM_CACHE"
    assert [ld["type"] for ld in pipeline.model("dm-raw")["loads"]] == ["FROM_CACHE"]


def test_partial_load_reloads_only_the_named_tables(pipeline: Pipeline, make_dag: Callable[..., Any]) -> None:
    first = make_dag(DataModelLoadOperator, task_id="load", data_model="dm-raw", **FAST).test()
    assert task_states(first) == {"load": "success"}
    pipeline.push_orders(ORDERS[:1])  # the pool table changes; only a reload of it shows that
    run = make_dag(
        DataModelLoadOperator, task_id="load", data_model="dm-raw", tables=["orders"], **FAST
    ).test()
    assert task_states(run) == {"load": "success"}
    result = xcom(run, "load")
    assert result["load_type"] == "PARTIAL"
    assert result["tables"] == ["orders"]
    model = pipeline.model("dm-raw")
    assert model["tables"]["orders"] == ORDERS[:1]
    assert model["loads"][-1]["tables"] == ["orders"]


def test_warning_succeeds_with_the_message_logged(
    pipeline: Pipeline, make_dag: Callable[..., Any], task_log: Callable[[], str]
) -> None:
    pipeline.next_load("WARNING", "2 foreign keys could not be resolved")
    run = make_dag(DataModelLoadOperator, task_id="load", data_model="dm-raw", **FAST).test()
    assert task_states(run) == {"load": "success"}
    assert "loaded with a WARNING: 2 foreign keys could not be resolved" in task_log()
    assert xcom(run, "load")["status"] == "WARNING"
    assert by_id(pipeline.model("dm-raw")["tables"]["orders"]) == ORDERS


@pytest.mark.parametrize("deferrable", [True], ids=["deferred"])
def test_error_fails_with_celonis_message(
    pipeline: Pipeline,
    make_dag: Callable[..., Any],
    task_log: Callable[[], str],
    deferrable: bool,
) -> None:
    pipeline.next_load("ERROR", "Table ORDERS has duplicate primary keys")
    run = make_dag(
        DataModelLoadOperator, task_id="load", data_model="dm-raw", deferrable=deferrable, **FAST
    ).test()
    assert task_states(run) == {"load": "failed"}
    output = task_log()
    assert "Celonis data model dm-raw load ended ERROR: Table ORDERS has duplicate primary keys" in output


def test_missing_pool_table_is_a_load_error(
    start_pipeline: Callable[..., Pipeline], make_dag: Callable[..., Any], task_log: Callable[[], str]
) -> None:
    """order_totals is made by the data job, which has not run: the load ends ERROR naming it."""
    start_pipeline()
    run = make_dag(DataModelLoadOperator, task_id="load", data_model="dm-orders", **FAST).test()
    assert task_states(run) == {"load": "failed"}
    assert "order_totals" in task_log()


def test_a_load_in_progress_is_waited_for_first(
    start_pipeline: Callable[..., Pipeline], make_dag: Callable[..., Any]
) -> None:
    pipeline = start_pipeline(integration_duration=3.0)
    hook = CelonisHook()
    hook.reload_data_model("dm-raw", Baseline(), data_pool_id=POOL)  # someone else's load
    run = make_dag(DataModelLoadOperator, task_id="load", data_model="dm-raw", **FAST).test()
    assert task_states(run) == {"load": "success"}
    loads = pipeline.model("dm-raw")["loads"]
    assert [ld["status"] for ld in loads] == ["SUCCESS", "SUCCESS"]
    assert xcom(run, "load")["load_id"] == loads[1]["id"]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"data_model": "Order model"},
            "has no data model 'Order model'; its data models: Orders model (dm-orders)",
        ),
        ({"data_model": "dm-orders", "tables": ["ordres"]}, "has no table 'ordres'; its tables: orders"),
        ({"data_model": "dm-orders", "tables": []}, "tables is empty"),
    ],
)
def test_unknown_names_fail_before_any_load(
    pipeline: Pipeline,
    make_dag: Callable[..., Any],
    task_log: Callable[[], str],
    kwargs: dict[str, Any],
    expected: str,
) -> None:
    run = make_dag(DataModelLoadOperator, task_id="load", **kwargs, **FAST).test()
    assert task_states(run) == {"load": "failed"}
    assert expected in task_log()
    assert pipeline.model("dm-raw")["loads"] == []


def test_timeout_fails_and_says_the_load_goes_on(
    start_pipeline: Callable[..., Pipeline],
    make_dag: Callable[..., Any],
    task_log: Callable[[], str],
) -> None:
    start_pipeline(integration_duration=20.0)
    run = make_dag(
        DataModelLoadOperator, task_id="load", data_model="dm-raw", timeout=1.5, deferrable=True, **FAST
    ).test()
    assert task_states(run) == {"load": "failed"}
    assert "Celonis has no call to cancel it, so it goes on" in task_log()


def test_extra_links_and_lineage(pipeline: Pipeline, make_dag: Callable[..., Any]) -> None:
    """The links open the data job and the data model; the load's lineage is its pool tables -> the model."""
    from airflow_provider_celonis.lineage import integration_lineage
    from airflow_provider_celonis.operators.data_job import DataJobOperator
    from airflow_provider_celonis.operators.links import CelonisDataJobLink, CelonisDataModelLink

    def tasks() -> None:
        job = DataJobOperator(task_id="transform", data_job="Transform orders", **FAST)
        job >> DataModelLoadOperator(task_id="load", data_model="Orders model", **FAST)

    run = make_dag(tasks=tasks).test()
    assert task_states(run) == {"transform": "success", "load": "success"}
    team = pipeline.emu.url
    job_link = CelonisDataJobLink().url(xcom(run, "transform", key="celonis_run"))
    assert job_link == f"{team}/integration/ui/pools/{POOL}/data-configuration/data-jobs?jobId=job-orders"
    model_link = CelonisDataModelLink().url(xcom(run, "load", key="celonis_run"))
    assert (
        model_link == f"{team}/integration/ui/pools/{POOL}/data-configuration/process-data-models/dm-orders"
    )

    op = DataModelLoadOperator(task_id="load", data_model="dm-orders")
    lineage = integration_lineage(op, xcom(run, "load"))
    assert lineage is not None
    host = team.split("://", 1)[1]
    assert {(d.namespace, d.name) for d in lineage.inputs} == {
        (f"celonis://{host}", f"{POOL}/orders"),
        (f"celonis://{host}", f"{POOL}/order_totals"),
    }
    assert (lineage.output.namespace, lineage.output.name) == (
        f"celonis://{host}",
        f"{POOL}/data-models/dm-orders",
    )
    assert integration_lineage(op, xcom(run, "transform")) is None  # a data job's SQL is not known
