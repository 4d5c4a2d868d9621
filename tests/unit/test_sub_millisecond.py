"""Celonis keeps milliseconds: finer digits of timestamps and times of day are dropped, never refused."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from airflow_provider_celonis.datapath.schema import conform, plan_schema


@pytest.mark.parametrize("unit", ["us", "ns"])
def test_times_of_day_and_timestamps_keep_their_milliseconds(unit: str) -> None:
    batch = pa.RecordBatch.from_pydict(
        {
            "t": pa.array([dt.time(13, 14, 15, 123456), None, dt.time(23, 59, 59, 999999)], pa.time64(unit)),
            "ts": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5, 678901)] * 3, pa.timestamp(unit)),
        }
    )
    plan = plan_schema(batch.schema)
    out = conform(batch, plan, "source rows 1-3")
    assert out.column("t").type == pa.time32("ms")
    assert out.column("t").to_pylist() == [dt.time(13, 14, 15, 123000), None, dt.time(23, 59, 59, 999000)]
    assert out.column("ts").to_pylist() == [dt.datetime(2024, 1, 2, 3, 4, 5, 678000)] * 3
