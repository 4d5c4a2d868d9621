"""Operator decisions that need neither the emulator nor the Airflow DB: key normalisation, the deferral
timeout against the trigger's deadline, the hint for a DataFrame rendered to text."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_celonis.datapath.pipeline import human_size, normalize_keys
from airflow_provider_celonis.hooks.errors import CelonisConfigError
from airflow_provider_celonis.operators.data_push import DataPushOperator
from airflow_provider_celonis.triggers.data_push import DEFER_MARGIN


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
    assert human_size(1234) == "1.2 KB"
    assert human_size(2_500_000) == "2.5 MB"


def test_deferred_wait_times_out_after_the_trigger_deadline() -> None:
    """The scheduler's timeout must come strictly after the trigger's own deadline, so the trigger fires
    first and cancels the job."""
    op = DataPushOperator(task_id="push", target_table="t", source="x", deferrable=True, timeout=100)
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        op._wait(None, {"job_id": "j", "data_pool_id": "p"})  # type: ignore[arg-type]
    trigger_end = deferred.value.trigger.end_time
    assert trigger_end is not None
    assert trigger_end <= time.time() + 100
    assert deferred.value.timeout is not None
    assert before + deferred.value.timeout.total_seconds() > trigger_end + DEFER_MARGIN - 1


def test_dataframe_rendered_to_text_gets_a_hint() -> None:
    op = DataPushOperator(task_id="push", target_table="t", source="x")
    with pytest.raises(CelonisConfigError, match=r"source=upstream_task.output"):
        op._open("source", "   id name\n0   1    a\n1   2    b")


def test_conversion_logs_progress_at_a_bounded_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Big sources log conversion progress; at most one line per PROGRESS_SECONDS (0 here: every batch)."""
    import logging

    import pyarrow as pa

    from airflow_provider_celonis.datapath import pipeline
    from airflow_provider_celonis.datapath.sources import open_source

    batches = [pa.record_batch({"id": list(range(i, i + 100))}) for i in range(0, 300, 100)]
    spec = pipeline.PushSpec(target_table="t")
    log = logging.getLogger("progress")
    (part,) = pipeline.prepare(spec, "p", open_source(lambda: iter(batches)), None, log)
    with caplog.at_level(logging.INFO, logger="progress"):
        monkeypatch.setattr(pipeline, "PROGRESS_SECONDS", 0.0)
        chunks = list(pipeline.parquet_chunks(part, tmp_path, spec, log))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Converting source")]
    assert sum(c.rows for c in chunks) == 300
    assert [line.split(":")[1].split(" rows")[0].strip() for line in lines] == ["100", "200", "300"]
