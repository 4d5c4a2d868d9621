"""A stream read once (``datapath.streams``): what pandas' chunked readers hand over lands as the rows say.

Each case is what ``pd.read_sql(..., chunksize=...)`` or a generator of frames produces: a column with no
value in the first chunk, a decimal precision per chunk, a categorical then plain strings.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from airflow_provider_celonis.datapath import streams
from airflow_provider_celonis.datapath.schema import conform, plan_schema
from airflow_provider_celonis.datapath.sources import BatchSource, open_source
from airflow_provider_celonis.hooks.errors import CelonisConfigError


def landed(
    source: BatchSource, table_schema: list[dict[str, Any]] | None = None
) -> tuple[dict[str, str], list[Any]]:
    """The Celonis column types and the rows as the push converts them (``conform``)."""
    plan = plan_schema(source.schema, table_schema=table_schema)
    got = []
    for batch in source.batches():
        got += conform(batch, plan, "test").to_pylist()
        plan.rows_seen += batch.num_rows
    return {c["columnName"]: c["columnType"] for c in plan.columns}, got


def test_a_column_without_a_value_in_the_first_chunk_takes_the_type_of_its_first_value() -> None:
    chunks = [
        pd.DataFrame({"id": [1, 2], "note": [None, None], "score": [float("nan")] * 2}),
        pd.DataFrame({"id": [3], "note": [None], "score": [float("nan")]}),
        pd.DataFrame({"id": [4], "note": ["late"], "score": [7]}),
        pd.DataFrame({"id": [5], "note": [None], "score": [9]}),
    ]
    types, got = landed(open_source(iter(chunks)))
    assert types == {"id": "INTEGER", "note": "STRING", "score": "INTEGER"}
    assert got == [
        {"id": 1, "note": None, "score": None},
        {"id": 2, "note": None, "score": None},
        {"id": 3, "note": None, "score": None},
        {"id": 4, "note": "late", "score": 7},
        {"id": 5, "note": None, "score": 9},
    ]


def test_an_integer_column_with_a_sparse_first_chunk_stays_integer() -> None:
    # pandas: an all-None object column in chunk 1, int64 in chunk 2, float64 with NaN in chunk 3.
    chunks = [
        pd.DataFrame({"qty": pd.Series([None, None], dtype=object)}),
        pd.DataFrame({"qty": [2**60, 5]}),
        pd.DataFrame({"qty": [None, 6]}),
    ]
    types, got = landed(open_source(iter(chunks)))
    assert types == {"qty": "INTEGER"}
    assert [r["qty"] for r in got] == [None, None, 2**60, 5, None, 6]


def test_decimals_of_another_precision_per_chunk_land_as_their_text_says() -> None:
    chunks = [
        pd.DataFrame({"amount": [Decimal("1.5"), Decimal("2.0")]}),
        pd.DataFrame({"amount": [Decimal("123.25"), None, Decimal("1.005")]}),
        pd.DataFrame({"amount": [Decimal("-99999999.123456")]}),
    ]
    types, got = landed(open_source(iter(chunks)))
    assert types == {"amount": "FLOAT"}
    assert [r["amount"] for r in got] == [1.5, 2.0, 123.25, None, 1.005, -99999999.123456]


def test_categoricals_strings_and_integer_widths_mix_where_they_land_alike() -> None:
    chunks = [
        pd.DataFrame({"city": pd.Categorical(["Berlin", "Paris"]), "n": pd.Series([1, 2], dtype="int32")}),
        pd.DataFrame({"city": ["Köln"], "n": pd.Series([2**40], dtype="int64")}),
        pa.table({"city": pa.array(["Rome"], pa.large_string()), "n": pa.array([3], pa.int8())}),
    ]
    types, got = landed(open_source(iter(chunks)))
    assert types == {"city": "STRING", "n": "INTEGER"}
    assert got == [
        {"city": "Berlin", "n": 1},
        {"city": "Paris", "n": 2},
        {"city": "Köln", "n": 2**40},
        {"city": "Rome", "n": 3},
    ]


def test_zoned_and_wall_clock_timestamps_mix_as_each_lands_alone() -> None:
    """A zoned timestamp lands as its instant in UTC, a naive one as written, whichever chunk comes first."""
    naive = pd.DataFrame({"at": pd.to_datetime(["2024-01-01 10:00"])})
    zoned = pd.DataFrame({"at": pd.to_datetime(["2024-01-01 10:00"]).tz_localize("Europe/Berlin")})
    for chunks in ([naive, zoned], [zoned, naive]):
        _, got = landed(open_source(iter(chunks)))
        at = {"naive": "2024-01-01 10:00:00", "zoned": "2024-01-01 09:00:00"}
        order = ["naive", "zoned"] if chunks[0] is naive else ["zoned", "naive"]
        assert [str(r["at"]) for r in got] == [at[kind] for kind in order]


def test_a_later_float32_chunk_lands_as_its_owner_sees_it() -> None:
    chunks = [pd.DataFrame({"x": [1.5]}), pd.DataFrame({"x": np.array([0.1], dtype=np.float32)})]
    assert [r["x"] for r in landed(open_source(iter(chunks)))[1]] == [1.5, 0.1]


def test_a_column_without_a_value_in_the_whole_window_lands_as_string_or_as_declared(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(streams, "LOOK_AHEAD_BYTES", 1)  # no look-ahead beyond the first chunk
    chunks = [pd.DataFrame({"id": [1], "x": [None]}), pd.DataFrame({"id": [2], "x": [42]})]
    with caplog.at_level("WARNING"):
        types, got = landed(open_source(iter(chunks)))
    assert "column(s) 'x' hold no value in the stream's first 1 rows" in caplog.text
    assert types == {"id": "INTEGER", "x": "STRING"}
    assert [r["x"] for r in got] == [None, "42"]
    chunks = [pd.DataFrame({"id": [1], "x": [None]}), pd.DataFrame({"id": [2], "x": [42]})]
    declared = [{"columnName": "x", "columnType": "INTEGER"}]
    types, got = landed(open_source(iter(chunks)), declared)
    assert types == {"id": "INTEGER", "x": "INTEGER"}
    assert [r["x"] for r in got] == [None, 42]


def test_the_look_ahead_stops_at_its_bound_and_keeps_every_row_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(streams, "LOOK_AHEAD_BYTES", 3_000)
    pulled = []

    def chunks() -> Any:
        for i in range(100):
            pulled.append(i)
            yield pa.table({"id": pa.array([i] * 100, pa.int64()), "x": pa.nulls(100)})

    source = open_source(chunks())
    assert 2 <= len(pulled) <= 5  # held ~3 KB (800 bytes a chunk), not the whole stream
    _, got = landed(source)
    assert [r["id"] for r in got] == [i for i in range(100) for _ in range(100)]
    assert len(pulled) == 100


def test_a_later_chunk_with_other_columns_is_named() -> None:
    chunks = [pd.DataFrame({"id": [1], "x": [None]}), pd.DataFrame({"id": [2], "y": [1]})]
    with pytest.raises(CelonisConfigError, match=r"columns \['id', 'y'\], the first batch's \['id', 'x'\]"):
        open_source(iter(chunks))


def test_a_string_longer_than_celonis_stores_is_refused_naming_its_row() -> None:
    chunks = [pd.DataFrame({"note": ["a", "b"]}), pd.DataFrame({"note": ["c", None, "x" * 65_001]})]
    with pytest.raises(
        CelonisConfigError, match=r"column 'note' holds a string of 65001 characters in row 5"
    ):
        landed_with_lengths(open_source(iter(chunks)))


def landed_with_lengths(source: BatchSource) -> None:
    """The push's conversion with STRING lengths measured, as ``pipeline.parquet_chunks`` runs it."""
    plan = plan_schema(source.schema)
    for batch in source.batches():
        plan.observe(conform(batch, plan, "test"))


@pytest.mark.parametrize(
    ("first", "later"),
    [
        (pd.DataFrame({"a": [1]}), pd.DataFrame({"a": pd.Categorical(["0042"])})),  # text parsed into 42
        (pd.DataFrame({"a": [1.5]}), pd.DataFrame({"a": pd.Categorical(["nan"])})),  # text parsed into NaN
        (pd.DataFrame({"a": pd.Categorical([True])}), pd.DataFrame({"a": pd.Categorical([4])})),  # 4 as true
        (pd.DataFrame({"a": [1]}), pd.DataFrame({"a": pd.to_datetime(["2020-01-01 13:30"])})),  # epoch count
        (pd.DataFrame({"a": pd.to_datetime(["2020-01-01"])}), pd.DataFrame({"a": [20200101]})),  # 1970 + 20 s
        (
            pd.DataFrame({"a": [dt.date(2020, 1, 1)]}),
            pd.DataFrame({"a": pd.to_datetime(["2020-01-02 13:30"])}),
        ),
        (pd.DataFrame({"a": [dt.time(1)]}), pd.DataFrame({"a": pd.to_datetime(["2020-01-02 13:30"])})),
        (pd.DataFrame({"a": ["x"]}), pd.DataFrame({"a": pd.to_timedelta(["1h"])})),  # '3600000000'
    ],
)
def test_a_later_chunk_is_never_reread_into_another_kind_of_value(first: Any, later: Any) -> None:
    """Found by a hunt: a categorical's text was parsed, numbers became timestamps and back, a timestamp
    lost its time of day in a DATE column, a duration became a count in a STRING one."""
    with pytest.raises(CelonisConfigError, match=r"column 'a' is .*, the first batch's is"):
        landed(open_source(iter([first, later])))


def test_a_later_chunk_is_cast_to_the_type_the_column_lands_in_not_the_first_chunks() -> None:
    """Found by a hunt: 300 after int8 values failed, and integers after float16 ones were rounded to
    float16 (5001 -> 5000.0, 70000 -> inf)."""
    cases = [
        ([pd.DataFrame({"a": np.array([1], dtype="int8")}), pd.DataFrame({"a": [300.0]})], [1, 300]),
        (
            [pd.DataFrame({"a": np.array([1], dtype="float16")}), pd.DataFrame({"a": [5001, 70000]})],
            [1.0, 5001.0, 70000.0],
        ),
        (
            [pd.DataFrame({"a": np.array([1], dtype="float32")}), pd.DataFrame({"a": [2**24 + 1]})],
            [1.0, 2.0**24 + 1],
        ),
        ([pd.DataFrame({"a": [Decimal("1.5")]}), pd.DataFrame({"a": [100]})], [1.5, 100.0]),
    ]
    for chunks, values in cases:
        assert [r["a"] for r in landed(open_source(iter(chunks)))[1]] == values
    # A categorical of integers met in the look-ahead (``b`` has no value until the third chunk) is a
    # number: with a fraction beside it in the window, FLOAT, not STRING.
    chunks = [
        pd.DataFrame({"a": [None], "b": [None]}),
        pd.DataFrame({"a": pd.Categorical([1]), "b": [None]}),
        pd.DataFrame({"a": [2.5], "b": ["x"]}),
    ]
    assert landed(open_source(iter(chunks))) == (
        {"a": "FLOAT", "b": "STRING"},
        [{"a": None, "b": None}, {"a": 1.0, "b": None}, {"a": 2.5, "b": "x"}],
    )


def test_later_chunks_with_the_columns_in_another_order_are_matched_by_name() -> None:
    chunks = [pd.DataFrame({"a": [1], "b": ["x"]}), pd.DataFrame({"b": ["y"], "a": [2]})]
    assert landed(open_source(iter(chunks)))[1] == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
