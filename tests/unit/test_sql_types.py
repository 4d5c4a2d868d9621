"""How the SQL transfer types a query's Python values and converts them (no database, no Airflow)."""

from __future__ import annotations

import datetime as dt
import decimal

import pyarrow as pa
import pytest

from airflow_provider_celonis.hooks.errors import CelonisConfigError
from airflow_provider_celonis.transfers.sql_types import PG_TEXT_OIDS, PG_TYPES, converter, infer_type


def test_infer_type_from_first_rows() -> None:
    assert infer_type([1, None, 3]) == pa.int64()
    assert infer_type([1, 2.5]) == pa.float64()
    assert infer_type([decimal.Decimal("1.5"), None]) == pa.float64()
    assert infer_type([True, False]) == pa.bool_()
    assert infer_type([dt.date(2024, 1, 1)]) == pa.date32()
    assert infer_type([dt.datetime(2024, 1, 1)]) == pa.timestamp("us")
    assert infer_type([dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)]) == pa.timestamp("us", tz="UTC")
    assert infer_type([dt.time(12, 0)]) == pa.time64("us")
    assert infer_type([None, None]) == pa.string()
    assert infer_type(["a", 1]) == pa.string()
    assert PG_TYPES[1700] == pa.float64()  # numeric -> FLOAT


def test_a_time_with_an_offset_lands_as_its_text() -> None:
    """TIME has no zone: 12:00+02:00 landed as 12:00, its offset dropped."""
    berlin = dt.timezone(dt.timedelta(hours=2))
    values = [dt.time(12, 0, tzinfo=berlin), None]
    target = infer_type(values)
    assert target == pa.string()
    assert converter("t", target)(values, 1).to_pylist() == ["12:00:00+02:00", None]


def test_the_postgres_types_whose_python_value_differs_are_read_as_text() -> None:
    # json, jsonb, interval, timetz, money, inet, cidr, int4[], numeric[], int4range
    for oid in (114, 3802, 1186, 1266, 790, 869, 650, 1007, 1231, 3904):
        assert oid in PG_TEXT_OIDS
        assert PG_TYPES[oid] == pa.string()
    assert not PG_TEXT_OIDS & {16, 20, 21, 23, 700, 701, 1700, 1082, 1083, 1114, 1184, 25, 1043}


def test_an_integer_a_float_column_cannot_hold_exactly_fails_naming_the_column() -> None:
    convert = converter("amount", pa.float64())
    assert convert([0.5, decimal.Decimal("1.25"), 2**53], 1).to_pylist() == [0.5, 1.25, 2.0**53]
    with pytest.raises(CelonisConfigError, match=r"column 'amount' .*row 12 .*exactly representable.*CAST"):
        convert([0.5, 2**53 + 1], 11)  # would land as 9007199254740992.0


def test_a_decimal_outside_a_doubles_range_is_refused_not_landed_as_infinity_or_zero() -> None:
    convert = converter("n", pa.float64())
    assert convert([decimal.Decimal("1e308"), decimal.Decimal("-0"), decimal.Decimal("NaN")], 1).to_pylist()[
        :2
    ] == [1e308, -0.0]
    for value in ("1e400", "-1e400", "1e-400"):
        with pytest.raises(CelonisConfigError, match=r"column 'n' .*row 3 .*beyond a double's range"):
            convert([decimal.Decimal("1.5"), decimal.Decimal(value)], 2)


def test_text_is_never_parsed_into_a_number_column() -> None:
    """SQLite hands over whatever a row holds: '0042' in a column typed FLOAT landed as 42.0, b'42' in an
    INTEGER one as 42."""
    for target, first in ((pa.float64(), 1.5), (pa.int64(), 1)):
        convert = converter("qty", target)
        for later in ("0042", " 7 ", "nan", "Infinity", b"42", True):
            with pytest.raises(CelonisConfigError, match=r"column 'qty' .*row 101 .*CAST the column"):
                convert([first, None, later], 99)


def test_a_later_fraction_in_an_integer_column_fails_instead_of_being_cut() -> None:
    """pa.array([2.5], type=int64) gives 2: a NUMERIC column typed INTEGER by its first rows landed 2.5 as 2."""
    convert = converter("p", pa.int64())
    assert convert([10, None, 2.0], 1).to_pylist() == [10, None, 2]
    for later in (2.5, decimal.Decimal("-0.9")):
        with pytest.raises(CelonisConfigError, match=r"column 'p' was typed int64 .*row 2 .*CAST the column"):
            convert([20, later], 1)


def test_blobs_land_as_hex_in_every_batch() -> None:
    """Before, a batch whose blobs were all UTF-8 landed them decoded (b'ab' as 'ab'), another as hex."""
    convert = converter("b", pa.string())
    assert convert([b"ab", None], 1).to_pylist() == ["6162", None]
    assert convert([b"\xff\x00", memoryview(b"ef")], 1).to_pylist() == ["ff00", "6566"]
    assert convert([{"name": "Müller"}, 3], 1).to_pylist() == ['{"name": "Müller"}', "3"]
