"""Decimals and narrow floats become Celonis FLOAT (a double) as the nearest double to their text."""

from __future__ import annotations

import decimal
import random

import numpy as np
import pyarrow as pa

from airflow_provider_celonis.datapath.schema import conform, plan_schema


def floats_of(array: pa.Array) -> list[float | None]:
    batch = pa.RecordBatch.from_pydict({"x": array})
    out = conform(batch, plan_schema(batch.schema), "source rows")
    assert out.column("x").type == pa.float64()
    return list(out.column("x").to_pylist())


def test_decimals_land_as_the_correctly_rounded_double() -> None:
    """pyarrow's own cast put 1.005 as 1.0050000000000001 and -2.675 as -2.6750000000000003."""
    rng = random.Random(5)
    values = [decimal.Decimal("1.005"), decimal.Decimal("-2.675"), None] + [
        decimal.Decimal(rng.randint(-(10**12), 10**12)) / 1000 for _ in range(2000)
    ]
    got = floats_of(pa.array(values, pa.decimal128(15, 3)))
    assert got == [None if v is None else float(v) for v in values]
    assert floats_of(pa.array([decimal.Decimal("1.5")], pa.decimal256(50, 2))) == [1.5]
    assert floats_of(pa.array(values[:3], pa.decimal128(15, 3)).dictionary_encode()) == [1.005, -2.675, None]


def test_a_float32_lands_as_the_value_its_owner_sees() -> None:
    values = np.array([0.1, 3.1415927, -1e38, np.nan, np.inf], dtype=np.float32)
    got = floats_of(pa.array(values, from_pandas=False))
    assert got[:3] == [0.1, 3.1415927, -1e38]  # not 0.10000000149011612
    assert got[3] != got[3]  # NaN
    assert got[4] == float("inf")
