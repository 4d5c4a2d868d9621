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


@pytest.mark.parametrize("zone", [None, "UTC", "Europe/Berlin"])
def test_an_instant_before_1970_loses_its_digits_toward_the_past_not_toward_1970(zone: str | None) -> None:
    """Cutting the epoch's microseconds toward zero moved 1969-12-31 23:59:59.9999 to 1970-01-01."""
    values = [
        dt.datetime(1969, 12, 31, 23, 59, 59, 999900),
        dt.datetime(1960, 1, 1, 0, 0, 0, 500),
        dt.datetime(2024, 1, 1, 0, 0, 0, 123456),
        None,
    ]
    utc = [v.replace(tzinfo=dt.timezone.utc) if v and zone else v for v in values]
    batch = pa.RecordBatch.from_pydict({"ts": pa.array(utc, pa.timestamp("us", tz=zone))})
    out = conform(batch, plan_schema(batch.schema), "source rows 1-4").column("ts").to_pylist()
    expected = [
        dt.datetime(1969, 12, 31, 23, 59, 59, 999000),
        dt.datetime(1960, 1, 1),
        dt.datetime(2024, 1, 1, 0, 0, 0, 123000),
        None,
    ]
    assert [v.replace(tzinfo=None) if v else v for v in out] == expected
