"""Operator decisions that need neither the emulator nor the Airflow DB: key normalisation, the deferral
timeout against the trigger's deadline, the hint for a DataFrame rendered to text."""

from __future__ import annotations

import time

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_celonis.datapath.pipeline import human_size, normalize_keys
from airflow_provider_celonis.hooks.errors import CelonisConfigError
from airflow_provider_celonis.operators.data_push import DataPushOperator


@pytest.mark.parametrize(
    ("rendered", "keys"),
    [("id", ["id"]), (" id ", ["id"]), (["a", "b"], ["a", "b"]), (("a",), ["a"]), (None, []), ("", [])],
)
def test_rendered_keys_are_normalised(rendered: object, keys: list[str]) -> None:
    assert normalize_keys(rendered) == keys


def test_keys_of_another_type_are_refused() -> None:
    with pytest.raises(CelonisConfigError, match="keys must be a column name or a list"):
        normalize_keys(5)


def test_sizes_below_a_megabyte_are_kb() -> None:
    assert human_size(1234) == "1.2 KB" and human_size(2_500_000) == "2.5 MB"


def test_deferred_wait_times_out_after_the_trigger_deadline() -> None:
    """The scheduler's timeout must come strictly after the trigger's own deadline, so the trigger fires
    first and cancels the job."""
    op = DataPushOperator(task_id="push", target_table="t", source="x", deferrable=True, timeout=100)
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        op._wait({}, None, {"job_id": "j", "data_pool_id": "p"})  # type: ignore[arg-type]
    trigger_end = deferred.value.trigger.end_time
    assert trigger_end is not None and trigger_end <= time.time() + 100
    assert deferred.value.timeout is not None
    assert before + deferred.value.timeout.total_seconds() > trigger_end + 30


def test_dataframe_rendered_to_text_gets_a_hint() -> None:
    op = DataPushOperator(task_id="push", target_table="t", source="x")
    with pytest.raises(CelonisConfigError, match=r"source=upstream_task.output"):
        op._open("source", "   id name\n0   1    a\n1   2    b")
