"""A query's values as Arrow columns that land in Celonis as the database holds them.

Types come from the driver's description where it has one (PostgreSQL OIDs), else from the values. The
rule is the data path's: a value lands as it is, or the push is refused naming the column and the row,
never changed on the way. So text is never parsed into a number, a number outside a double's range is
refused (not landed as infinity or zero), and the PostgreSQL types whose Python value differs from what
the database holds (json re-serialised, with its ``null`` made NULL; an interval's months made 30 days; a
time's offset dropped; money refused; arrays re-rendered) are read as the server's own text.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

from airflow_provider_celonis.datapath.text_read import EXACT_DOUBLE_INTEGER
from airflow_provider_celonis.hooks.errors import CelonisConfigError

#: PostgreSQL type OIDs (psycopg2 and psycopg 3 report them as ``description[i].type_code``).
#: ``None`` means "known, but decide from the data".
PG_TYPES: dict[int, pa.DataType | None] = {
    16: pa.bool_(),
    20: pa.int64(),  # int8
    21: pa.int64(),  # int2
    23: pa.int64(),  # int4
    26: pa.int64(),  # oid
    700: pa.float64(),  # float4
    701: pa.float64(),  # float8
    1700: pa.float64(),  # numeric: Data Push has no decimal type
    1082: pa.date32(),
    1083: pa.time64("us"),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
    18: pa.string(),  # "char"
    19: pa.string(),  # name
    25: pa.string(),  # text
    1042: pa.string(),  # bpchar
    1043: pa.string(),  # varchar
    2950: pa.string(),  # uuid
}

#: PostgreSQL types read as the server's text (``read_as_server_text``): json, jsonb, interval, time with
#: time zone, money, inet, cidr, the ranges and multiranges, and the arrays of every built-in type.
PG_TEXT_OIDS: frozenset[int] = frozenset(
    {114, 3802, 1186, 1266, 790, 869, 650}
    | {3904, 3906, 3908, 3910, 3912, 3926, 4451, 4532, 4533, 4534, 4535, 4536}
    | {143, 199, 271, 629, 651, 719, 775, 791, 1040, 1041, 1115, 1182, 1183, 1185, 1187, 1231, 1270}
    | {*range(1000, 1023), 1027, 1028, 1034, 1561, 1563, 2201, *range(2207, 2212), 2287, 2949, 2951}
    | {3221, 3643, 3644, 3645, 3735, 3770, 3807, 3905, 3907, 3909, 3911, 3913, 3927, 4073, 4090, 4097}
    | {4192, 6150, 6151, 6152, 6153, 6155, 6157}
)
PG_TYPES.update(dict.fromkeys(PG_TEXT_OIDS, pa.string()))

Converter = Callable[[Sequence[Any], int], pa.Array]

_BYTES = (bytes, bytearray, memoryview)
_NUMBERS = (int, float, decimal.Decimal)
_NOT_NUMBERS = (str, bool, *_BYTES)


def is_postgres(conn: Any) -> bool:
    return _driver(conn) in ("psycopg2", "psycopg")


def _driver(conn: Any) -> str:
    return type(conn).__module__.split(".")[0]


def read_as_server_text(conn: Any, cursor: Any) -> None:
    """Make ``cursor`` (before it executes) load ``PG_TEXT_OIDS`` as the text PostgreSQL sends."""
    if _driver(conn) == "psycopg":
        from psycopg.types.string import TextLoader

        for oid in PG_TEXT_OIDS:
            cursor.adapters.register_loader(oid, TextLoader)
    elif _driver(conn) == "psycopg2":
        import psycopg2.extensions as ext

        ext.register_type(ext.new_type(tuple(sorted(PG_TEXT_OIDS)), "CELONIS_TEXT", _as_sent), cursor)


def _as_sent(value: str | None, _cursor: Any) -> str | None:
    return value


def infer_type(values: Sequence[Any]) -> pa.DataType:
    """The Arrow type for a column of Python values, as Celonis can store it (see module docstring)."""
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return pa.string()  # all NULL: nothing to go by, STRING is what holds anything later
    if kinds == {bool}:
        return pa.bool_()
    if all(issubclass(k, int) and k is not bool for k in kinds):
        return pa.int64()
    if all(issubclass(k, _NUMBERS) and k is not bool for k in kinds):
        return pa.float64()
    if all(issubclass(k, dt.datetime) for k in kinds):
        aware = any(v is not None and v.tzinfo is not None for v in values)
        return pa.timestamp("us", tz="UTC") if aware else pa.timestamp("us")
    if all(issubclass(k, dt.date) and not issubclass(k, dt.datetime) for k in kinds):
        return pa.date32()
    if all(issubclass(k, dt.time) for k in kinds) and all(v is None or v.tzinfo is None for v in values):
        return pa.time64("us")  # a time with an offset lands as its text: TIME has no zone to keep it in
    return pa.string()


def is_decimal_column(values: Sequence[Any]) -> bool:
    return any(isinstance(v, decimal.Decimal) for v in values)


def _as_text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, ensure_ascii=False)
    if isinstance(value, _BYTES):
        return bytes(value).hex()
    if isinstance(value, dt.time | dt.datetime):
        return value.isoformat()
    return str(value)


def _double(value: Any) -> float | None:
    """A number as the nearest double, None when that is not the number: text, an integer beyond 2**53,
    or a decimal outside a double's range (it would land as infinity or 0.0)."""
    if isinstance(value, bool) or not isinstance(value, _NUMBERS):
        return None
    if isinstance(value, int):
        return float(value) if abs(value) <= EXACT_DOUBLE_INTEGER else None
    number = float(value)
    if not isinstance(value, decimal.Decimal) or not value.is_finite():
        return number
    return None if math.isinf(number) or (number == 0 and not value.is_zero()) else number


def converter(name: str, target: pa.DataType, from_data: bool = True) -> Converter:
    """Fast path through ``pa.array``; Decimals and odd values take a (slower) Python detour. A value that
    does not land as it is fails the push, naming the column and the row (``first_row`` counts from 1).

    ``from_data``: the type was inferred from values (not the driver's description), so a later row may hold
    any Python type, and a number column is checked for text and booleans, which pyarrow would parse.
    """
    numeric = pa.types.is_integer(target) or pa.types.is_floating(target)

    def refuse(values: Sequence[Any], first_row: int, why: str) -> CelonisConfigError:
        return CelonisConfigError(
            f"sql: column {name!r} was typed {target} from the query's description and first rows, but row "
            f"{first_row + _first_misfit(values, target)} holds a value that does not fit ({why}); CAST the "
            "column in the query"
        )

    def convert(values: Sequence[Any], first_row: int) -> pa.Array:
        if pa.types.is_string(target):
            if any(not isinstance(v, str) and v is not None for v in values):
                # pa.array would decode bytes that happen to be UTF-8 as text, and fail on the others: one
                # rule for every batch, hex. Numbers and dates land as their text.
                return pa.array([_as_text(v) for v in values], type=target)
            return pa.array(values, type=target)
        if from_data and numeric and any(isinstance(v, _NOT_NUMBERS) for v in values):
            # pyarrow parses text into numbers ("0042" -> 42, b"42" -> 42): text is never parsed.
            raise refuse(values, first_row, "text in a number column")
        try:
            if pa.types.is_integer(target):
                # pa.array(values, type=int64) cuts 2.5 (a float or a Decimal) to 2; inferred, then cast
                # safely, it fails instead, and a whole 2.0 stays 2.
                return pa.array(values).cast(target)
            return pa.array(values, type=target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
            if pa.types.is_floating(target):
                doubles = [None if v is None else _double(v) for v in values]
                if all(d is not None for d, v in zip(doubles, values, strict=True) if v is not None):
                    return pa.array(doubles, type=target)
                why = "an integer beyond 2**53 is not exactly representable, or a decimal beyond a double's range"
                raise refuse(values, first_row, why) from exc
            raise refuse(values, first_row, str(exc)) from exc

    return convert


def _first_misfit(values: Sequence[Any], target: pa.DataType) -> int:
    """The position of the first value that cannot be ``target`` (0 when none fails alone)."""
    for position, value in enumerate(values):
        if value is not None and not _fits(value, target):
            return position
    return 0


def _fits(value: Any, target: pa.DataType) -> bool:
    if pa.types.is_floating(target):
        return _double(value) is not None
    if pa.types.is_integer(target) and isinstance(value, _NOT_NUMBERS):
        return False
    try:
        pa.array([value]).cast(target) if pa.types.is_integer(target) else pa.array([value], type=target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        return False
    return True
