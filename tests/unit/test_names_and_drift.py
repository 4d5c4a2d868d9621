"""Name rules (one for both file types) and the type-widening ladder: pure functions, no emulator."""

from __future__ import annotations

import pyarrow as pa
import pytest

from airflow_provider_celonis.datapath.drift import unify, widen
from airflow_provider_celonis.datapath.names import check_table_name, column_names, sanitize_name
from airflow_provider_celonis.datapath.text_read import FINE_TIME
from airflow_provider_celonis.hooks.errors import CelonisConfigError


@pytest.mark.parametrize("name", ["id", "Order_ID", "a-b", "_x", "-x", "9lives", "x" * 128])
def test_valid_names_pass_unchanged(name: str) -> None:
    assert column_names([name]) == [name]
    check_table_name(name)


@pytest.mark.parametrize("name", ["order id", "amount ($)", "ä", "a.b", "x" * 129])
def test_invalid_column_name_is_named_with_the_rule(name: str) -> None:
    with pytest.raises(CelonisConfigError) as raised:
        column_names(["id", name])
    assert f"column name {name!r} has characters Celonis rejects" in str(raised.value)
    assert "letters, digits, '_' and '-' only" in str(raised.value)
    assert "sanitize_names=True" in str(raised.value)


@pytest.mark.parametrize("name", ["bad table!", "orders 2024", "a.b", ""])
def test_invalid_table_name(name: str) -> None:
    with pytest.raises(CelonisConfigError, match="target_table"):
        check_table_name(name)


def test_sanitize_maps_invalid_characters_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    assert column_names(["id", "order id", "amount ($)"], sanitize=True) == ["id", "order_id", "amount____"]
    assert "'order id' -> 'order_id'" in caplog.text
    assert sanitize_name("日本") == "__"


def test_sanitize_collision_refused() -> None:
    with pytest.raises(CelonisConfigError, match="columns 'order id' and 'order_id' both become 'order_id'"):
        column_names(["order id", "order_id"], sanitize=True)
    with pytest.raises(CelonisConfigError, match="columns 'a b' and 'A_B' both become 'A_B'"):
        column_names(["a b", "A_B"], sanitize=True)


def test_case_insensitive_duplicates_and_empty_names() -> None:
    with pytest.raises(CelonisConfigError, match="columns 'id' and 'ID' clash"):
        column_names(["id", "ID"])
    with pytest.raises(CelonisConfigError, match="columns 'id' and 'id' clash"):
        column_names(["id", "id"], sanitize=True)
    with pytest.raises(CelonisConfigError, match="column 2 has an empty name"):
        column_names(["id", " "], sanitize=True)


@pytest.mark.parametrize(
    ("current", "value", "expected"),
    [
        (pa.int64(), "1.5", pa.float64()),
        (pa.int64(), "A12", pa.string()),
        (pa.int64(), "99999999999999999999", pa.string()),  # overflow: a float would round it
        (pa.float64(), "n/a", pa.string()),
        (pa.date32(), "2024-01-02 03:04:05", pa.timestamp("us")),
        (pa.date32(), "soon", pa.string()),
        (pa.timestamp("s"), "later", pa.string()),
        (pa.bool_(), "maybe", pa.string()),
        (pa.time32("s"), "noon", pa.string()),
        (pa.null(), "12", pa.int64()),
        (pa.null(), "1.5", pa.float64()),
        (pa.null(), "2024-01-02", pa.date32()),
        (pa.null(), "x", pa.string()),
        (pa.null(), "9223372036854775808", pa.string()),  # empty so far, then beyond int64: not a double
    ],
)
def test_widening_ladder(current: pa.DataType, value: str, expected: pa.DataType) -> None:
    assert widen(current, value) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (pa.int64(), pa.int64(), None),
        (pa.int32(), pa.int64(), pa.int64()),
        (pa.int64(), pa.float64(), pa.float64()),
        (pa.float64(), pa.int64(), pa.float64()),
        (pa.date32(), pa.timestamp("s"), pa.timestamp("us")),
        # Microseconds: pandas' nanoseconds hold only 1677-2262, and 9999-12-31 is the usual open end date.
        (pa.date32(), pa.timestamp("ns"), pa.timestamp("us")),
        (pa.timestamp("ms"), pa.timestamp("ns"), pa.timestamp("us")),
        # Two zones: the same instants, in UTC; a zone beside none is as ambiguous as in one CSV column.
        (pa.timestamp("us", "+02:00"), pa.timestamp("ms", "Europe/Berlin"), pa.timestamp("us", "UTC")),
        (pa.timestamp("us", "UTC"), pa.timestamp("us"), pa.string()),
        (pa.time32("s"), pa.time64("us"), pa.time64("us")),
        (pa.time32("s"), FINE_TIME, FINE_TIME),
        # Decimals of any precision land as FLOAT, through their text: one decimal holds both, as a file's.
        (pa.decimal128(10, 2), pa.decimal128(12, 4), pa.decimal128(12, 4)),
        (pa.decimal128(38, 0), pa.decimal128(38, 10), pa.decimal256(48, 10)),
        (pa.decimal128(10, 2), pa.float64(), pa.float64()),
        (pa.int64(), pa.string(), pa.string()),
        (pa.null(), pa.date32(), pa.date32()),
        (pa.bool_(), pa.int64(), pa.string()),
    ],
)
def test_unify_two_files(a: pa.DataType, b: pa.DataType, expected: pa.DataType | None) -> None:
    assert unify(a, b) == expected
