"""``CelonisHook``'s Integration API calls against the emulator: lookups, pool tables, columns, errors."""

from __future__ import annotations

import pytest

from airflow_provider_celonis.hooks.celonis import CelonisHook
from airflow_provider_celonis.hooks.errors import CelonisConfigError, CelonisNotFoundError
from tests.helpers import POOL
from tests.integration_api.conftest import Pipeline


def test_lookups_by_id_and_name(pipeline: Pipeline) -> None:
    del pipeline
    hook = CelonisHook()
    assert hook.find_data_job("job-orders")["name"] == "Transform orders"
    assert hook.find_data_job("transform ORDERS")["id"] == "job-orders"  # case-insensitive fallback
    tasks = hook.list_data_job_tasks("job-orders")
    assert [(t["id"], t["name"]) for t in tasks] == [("t-totals", "order totals"), ("t-big", "big orders")]
    assert [load["dataModelId"] for load in hook.list_data_job_loads("job-orders")] == ["dm-orders"]
    assert hook.find_data_model("Orders model")["id"] == "dm-orders"
    names = {t["name"] for t in hook.list_data_model_tables("dm-orders")}
    assert names == {"orders", "order_totals"}
    assert hook.data_model_load("dm-orders") is None  # never loaded
    status = hook.data_job_status("job-orders")
    assert status is None or status.get("lastExecutionStartDate") is None  # never ran


def test_pool_tables_and_columns(pipeline: Pipeline) -> None:
    del pipeline
    hook = CelonisHook()
    assert "orders" in {t["name"] for t in hook.list_pool_tables()}
    columns = {c["name"]: c["type"] for c in hook.list_pool_columns("orders", schema=POOL)}
    assert columns == {"id": "INTEGER", "customer": "STRING", "amount": "FLOAT", "note": "STRING"}


def test_unknown_names_list_what_exists(pipeline: Pipeline) -> None:
    del pipeline
    hook = CelonisHook()
    with pytest.raises(CelonisConfigError, match="has no data job 'nope'; its data jobs: Transform orders"):
        hook.find_data_job("nope")
    with pytest.raises(CelonisConfigError, match="has no data model 'nope'"):
        hook.find_data_model("nope")


def test_unknown_job_is_celonis_404_with_its_message(pipeline: Pipeline) -> None:
    del pipeline
    with pytest.raises(CelonisNotFoundError, match=r"list_data_job_tasks \(GET /integration/api/pools/"):
        CelonisHook().list_data_job_tasks("no-such-job")
