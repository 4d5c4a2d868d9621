"""Arrow schema to Celonis table schema, and batches to types Celonis reads correctly.

Celonis types: INTEGER (64-bit), FLOAT (IEEE 754 double), DATE/DATETIME (millisecond timestamps), TIME,
BOOLEAN, STRING (VARCHAR of ``fieldLength`` characters, 80 when not given). Nested and decimal columns
have no Data Push type: nested ones are refused with the column's name, decimals become FLOAT (said in
the log), because no public Celonis client reads them either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_celonis.datapath.names import column_names
from airflow_provider_celonis.datapath.text_read import TIME_OF_DAY
from airflow_provider_celonis.hooks.errors import CelonisConfigError

COLUMN_TYPES = ("INTEGER", "DATE", "TIME", "DATETIME", "FLOAT", "BOOLEAN", "STRING")
DEFAULT_VARCHAR = 80
#: Celonis' (Vertica's) VARCHAR ceiling in characters; longer strings are refused rather than cut.
MAX_VARCHAR = 65_000
#: Celonis keeps DATE/DATETIME values of the years 1400-9999 and stores NULL for the rest (days since 1970).
_FIRST_DAY = (date(1400, 1, 1) - date(1970, 1, 1)).days
_LAST_DAY = (date(9999, 12, 31) - date(1970, 1, 1)).days


def celonis_type(arrow_type: pa.DataType, column: str, what: str = "source") -> str:
    """The Celonis column type an Arrow type lands in; raises for types Data Push cannot carry."""
    t = arrow_type
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_integer(t):
        return "INTEGER"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "FLOAT"
    if pa.types.is_timestamp(t):
        return "DATETIME"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_time(t):
        return "TIME"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t):
        return "STRING"
    if pa.types.is_string_view(t) if hasattr(pa.types, "is_string_view") else False:
        return "STRING"
    if pa.types.is_dictionary(t):
        return celonis_type(t.value_type, column, what)
    if pa.types.is_nested(t):
        raise CelonisConfigError(
            f"{what}: column {column!r} is nested ({t}); the Data Push API takes flat columns only: "
            "flatten it first, or use DataIngestionOperator (the Standard Data Ingestion API unnests)"
        )
    raise CelonisConfigError(
        f"{what}: column {column!r} has type {t}, which Celonis cannot store; cast it to a string or number"
    )


def normalized_type(arrow_type: pa.DataType) -> pa.DataType:
    """The Arrow type we write to parquet for a column (see ``chunks`` for why)."""
    t = arrow_type
    if pa.types.is_dictionary(t):
        return normalized_type(t.value_type)
    if pa.types.is_integer(t):
        return pa.int64()
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return pa.float64()
    if pa.types.is_timestamp(t):
        # Celonis keeps milliseconds; naive UTC avoids readers applying a zone twice.
        return pa.timestamp("ms")
    if pa.types.is_date(t):
        return pa.date32()
    if pa.types.is_time(t):
        return pa.time32("ms")
    if pa.types.is_null(t) or pa.types.is_large_string(t) or pa.types.is_string(t):
        return pa.string()
    if hasattr(pa.types, "is_string_view") and pa.types.is_string_view(t):
        return pa.string()
    return t


def declared_strings(table_schema: Any) -> list[str]:
    """The columns ``table_schema`` declares STRING: a text source reads them as written, so that ``01067``
    is not parsed into 1067 and turned back into text. Malformed entries are ``plan_schema``'s to name."""
    if not isinstance(table_schema, Sequence) or isinstance(table_schema, str):
        return []
    return [
        str(column["columnName"])
        for column in table_schema
        if isinstance(column, Mapping)
        and isinstance(column.get("columnName"), str)
        and str(column.get("columnType", "")).upper() == "STRING"
    ]


def check_column_names(names: Sequence[str], what: str = "source") -> None:
    """The one name rule (``names.column_names``), without renaming."""
    column_names(names, what=what)


@dataclass
class SchemaPlan:
    """How batches are cast before writing, and the tableSchema sent when the job is created."""

    target: pa.Schema
    columns: list[dict[str, Any]]
    keys: list[str]
    notes: list[str] = field(default_factory=list)
    #: STRING columns whose fieldLength comes from the data (filled in while writing).
    measured: set[str] = field(default_factory=set)
    lengths: dict[str, int] = field(default_factory=dict)
    #: Rows observed so far: ``conform`` uses it to name the absolute row of a bad value.
    rows_seen: int = 0

    @property
    def declared_lengths(self) -> dict[str, int]:
        """STRING columns with an explicit ``fieldLength`` (Celonis would cut longer values silently)."""
        return {
            str(c["columnName"]): int(c["fieldLength"])
            for c in self.columns
            if c.get("columnType") == "STRING"
            and c["columnName"] not in self.measured
            and isinstance(c.get("fieldLength"), int)
            and not isinstance(c.get("fieldLength"), bool)
        }

    def table_schema(self) -> list[dict[str, Any]]:
        out = []
        for column in self.columns:
            column = dict(column)
            name = column["columnName"]
            if name in self.measured:
                column["fieldLength"] = max(1, min(self.lengths.get(name, 1), MAX_VARCHAR))
            out.append(column)
        return out

    def observe(self, batch: pa.RecordBatch) -> None:
        """Track the longest string per measured column (characters, as Celonis counts them).

        A value has at most as many characters as bytes, and byte lengths come from the offsets alone, so the
        characters are counted (a scan of every byte) only in a batch whose longest value in bytes beats the
        longest so far: after the first batches, most batches are never scanned.
        """
        first_row = self.rows_seen
        self.rows_seen += batch.num_rows
        self._measure(batch, self.measured, first_row)

    def foresee(self, rows: pa.RecordBatch) -> None:
        """Measure rows the push will read again (``BatchSource.first_rows``): the job created with the first
        chunk then declares lengths from a whole first block, not from the first chunk's rows. Columns those
        rows hold in another type than text (a type widened later) are left to the push."""
        names = rows.schema.names
        self._measure(
            rows,
            [
                name
                for name in self.measured
                if names.count(name) == 1 and pa.types.is_string(rows.schema.field(name).type)
            ],
        )

    def _measure(self, batch: pa.RecordBatch, names: Iterable[str], first_row: int = 0) -> None:
        for name in names:
            col = batch.column(name)
            if col.null_count == len(col):
                continue
            if (pc.max(pc.binary_length(col)).as_py() or 0) <= self.lengths.get(name, 0):
                continue
            characters = pc.utf8_length(col)
            longest = pc.max(characters).as_py() or 0
            if longest > self.lengths.get(name, 0):
                self.lengths[name] = longest
            if longest > MAX_VARCHAR:
                row = first_row + pc.index(pc.greater(characters, MAX_VARCHAR), True).as_py() + 1
                raise CelonisConfigError(
                    f"column {name!r} holds a string of {longest} characters in row {row}; Celonis stores at "
                    f"most {MAX_VARCHAR} and would cut it: shorten the value, or split it across columns"
                )


def plan_schema(
    schema: pa.Schema,
    *,
    keys: Iterable[str] = (),
    table_schema: Sequence[Mapping[str, Any]] | None = None,
    fallback_varchar_length: int | None = None,
    what: str = "source",
    cut_check: bool = True,
) -> SchemaPlan:
    """Validate the source's schema against keys and an explicit schema, and plan the casts.

    Without an explicit ``table_schema`` each STRING column's length is measured from the data, so that
    nothing is cut to Celonis' default of 80 characters (unless ``fallback_varchar_length`` is given: then a
    longer value is refused, as for a declared ``fieldLength``, unless ``cut_check`` is off, for rows to
    delete, whose lengths no table takes).
    """
    check_column_names(schema.names, what)
    by_lower = {n.lower(): n for n in schema.names}
    key_list = [str(k) for k in keys]
    missing = [k for k in key_list if k.lower() not in by_lower]
    if missing:
        raise CelonisConfigError(
            f"{what}: key column(s) {', '.join(map(repr, missing))} not found; columns are {schema.names}"
        )
    key_list = [by_lower[k.lower()] for k in key_list]
    notes: list[str] = []
    explicit = {str(c.get("columnName", "")).lower(): dict(c) for c in (table_schema or [])}
    for name, column in explicit.items():
        if name not in by_lower:
            raise CelonisConfigError(
                f"table_schema: column {column.get('columnName')!r} is not in the {what}"
            )
        ctype = str(column.get("columnType", "")).upper()
        if ctype not in COLUMN_TYPES:
            raise CelonisConfigError(
                f"table_schema: column {column.get('columnName')!r} has columnType {column.get('columnType')!r}; "
                f"use one of {', '.join(COLUMN_TYPES)}"
            )
    fields = []
    columns: list[dict[str, Any]] = []
    measured: set[str] = set()
    for fld in schema:
        column, measure = _column_plan(
            fld, explicit.get(fld.name.lower()), fallback_varchar_length, cut_check, what
        )
        ctype = column["columnType"]
        if pa.types.is_decimal(fld.type) and ctype == "FLOAT":
            notes.append(f"column {fld.name!r} is {fld.type}: sent as FLOAT (Data Push has no decimal type)")
        if measure:
            measured.add(fld.name)
        if fld.name in key_list:
            column["pkField"] = True
        columns.append(column)
        fields.append(pa.field(fld.name, _arrow_for(ctype, fld.type, fld.name, what)))
    return SchemaPlan(pa.schema(fields), columns, key_list, notes, measured)


def _column_plan(
    fld: pa.Field, spec: dict[str, Any] | None, fallback: int | None, cut_check: bool, what: str
) -> tuple[dict[str, Any], bool]:
    """A column's declaration, and whether its STRING length is measured from the data."""
    if spec is not None:
        ctype = str(spec["columnType"]).upper()
        column = {**spec, "columnName": fld.name, "columnType": ctype}
        if ctype != "STRING" or "fieldLength" in spec:
            return column, False
        # Declared STRING for its type only (e.g. to keep 01067's text): its length comes from the data (or
        # the fallback), not from Celonis' default of 80 characters, which would cut longer values.
    else:
        ctype = celonis_type(fld.type, fld.name, what)
        column = {"columnName": fld.name, "columnType": ctype}
        if ctype != "STRING":
            return column, False
    if fallback is None:
        return column, True
    if cut_check:  # Celonis cuts at the fallback: ``conform`` refuses a longer value instead
        column["fieldLength"] = fallback
    return column, False


def _arrow_for(ctype: str, source_type: pa.DataType, column: str, what: str) -> pa.DataType:
    natural = celonis_type(source_type, column, what)
    if natural == ctype:
        return normalized_type(source_type)
    return {
        "INTEGER": pa.int64(),
        "FLOAT": pa.float64(),
        "BOOLEAN": pa.bool_(),
        "STRING": pa.string(),
        "DATETIME": pa.timestamp("ms"),
        "DATE": pa.date32(),
        "TIME": pa.time32("ms"),
    }[ctype]


def conform(batch: pa.RecordBatch, plan: SchemaPlan, where: str) -> pa.RecordBatch:
    """Cast a batch to the planned types; a value that does not fit names its column and where.

    Values Celonis would change silently are refused too: strings longer than a declared ``fieldLength``
    (cut) and dates outside the years 1400-9999 (NULL). Rows are counted from ``plan.rows_seen``.
    """
    if batch.schema.equals(plan.target):
        _check_values(batch, plan, where)
        return batch
    out = written(batch, plan.target, where)
    _check_values(out, plan, where)
    return out


def written(batch: pa.RecordBatch, target: pa.Schema, where: str) -> pa.RecordBatch:
    """``batch``'s columns, by name, in the written types ``target`` (``cast_to``); one that cannot be
    converted names its column."""
    arrays = []
    for fld in target:
        col = batch.column(fld.name)
        try:
            arrays.append(cast_to(col, fld.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise CelonisConfigError(
                f"{where}: column {fld.name!r} cannot be converted from {col.type} to {fld.type}: {exc}"
            ) from exc
    return pa.RecordBatch.from_arrays(arrays, schema=target)


def _check_values(batch: pa.RecordBatch, plan: SchemaPlan, where: str) -> None:
    for name, limit in plan.declared_lengths.items():
        lengths = pc.utf8_length(batch.column(name))
        longest = pc.max(lengths).as_py()
        if longest is not None and longest > limit:
            row = plan.rows_seen + pc.index(pc.greater(lengths, limit), True).as_py() + 1
            raise CelonisConfigError(
                f"{where}: column {name!r} holds a string of {longest} characters in row {row}, longer than "
                f"its fieldLength {limit} (table_schema, else fallback_varchar_length); Celonis would cut it: "
                "raise it or shorten the value"
            )
    check_date_range(batch, where, plan.rows_seen)


def check_date_range(batch: pa.RecordBatch, where: str, first_row: int) -> None:
    """Refuse a DATE or DATETIME value outside the years 1400-9999 (Celonis would store NULL), naming it."""
    for fld in batch.schema:
        index = _first_out_of_range(batch.column(fld.name))
        if index is not None:
            year = pc.year(batch.column(fld.name).slice(index, 1))[0].as_py()
            raise CelonisConfigError(
                f"{where}: column {fld.name!r} holds a date in the year {year} in row "
                f"{first_row + index + 1}; Celonis keeps dates of the years 1400-9999 only and would "
                "store NULL: fix or drop the value"
            )


def _first_out_of_range(col: pa.Array) -> int | None:
    """Index of the first DATE/DATETIME value outside the years 1400-9999, else None."""
    t = col.type
    if pa.types.is_date32(t):
        low, high, ints = _FIRST_DAY, _LAST_DAY, col.cast(pa.int32())
    elif pa.types.is_timestamp(t) and t.unit in ("s", "ms", "us"):
        per_day = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000}[t.unit]
        low, high, ints = _FIRST_DAY * per_day, (_LAST_DAY + 1) * per_day - 1, col.cast(pa.int64())
    else:  # nanoseconds cannot leave 1677-2262; other types hold no dates
        return None
    bounds = pc.min_max(ints)
    lowest, highest = bounds["min"].as_py(), bounds["max"].as_py()
    if lowest is None or (lowest >= low and highest <= high):
        return None
    outside = pc.or_(pc.less(ints, low), pc.greater(ints, high))
    return int(pc.index(outside, True).as_py())


def check_keys_not_null(batch: pa.RecordBatch, keys: Sequence[str], where: str, first_row: int) -> None:
    """A NULL key can neither be upserted nor deleted: name the column and the row."""
    for key in keys:
        col = batch.column(key)
        if col.null_count:
            row = pc.index(pc.is_null(col), True).as_py()
            raise CelonisConfigError(f"{where}: key column {key!r} is NULL in row {first_row + row + 1}")


def through_text(have: pa.DataType, want: pa.DataType) -> bool:
    """Whether a cast to a double goes through the values' text: pyarrow's decimal -> double cast is not
    correctly rounded (1.005 lands as 1.0050000000000001; 14 % of random 3-place decimals, 2026-12-05), and
    a float32 0.1 is 0.1 as its owner sees it, not 0.10000000149011612. Parsing the shortest decimal text
    rounds correctly."""
    return bool(pa.types.is_floating(want)) and bool(
        pa.types.is_decimal(have) or (pa.types.is_floating(have) and have.bit_width < want.bit_width)
    )


def cast_to(col: pa.Array, target: pa.DataType) -> pa.Array:
    """``col`` as the written type ``target`` (``normalized_type``): a zoned timestamp as its instant in UTC,
    digits below a millisecond dropped, everything else exactly or not at all."""
    if pa.types.is_timestamp(col.type) and col.type.tz is not None:
        col = col.cast(pa.timestamp(col.type.unit))  # the instant in UTC, without the zone
    return col if col.type.equals(target) else _cast_array(col, target)


def _cast_array(col: pa.Array, target: pa.DataType) -> pa.Array:
    # Sub-millisecond digits of a timestamp or a time of day are dropped, as Celonis would (it keeps
    # milliseconds); every other cast must be lossless.
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()  # its values take the paths below (a categorical of Decimals, of times)
    if pa.types.is_time(target) and (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        col = _times_of_day(col.cast(pa.string()))  # pyarrow casts no text to a time (JSON declared TIME)
    if through_text(col.type, target):
        return pc.cast(pc.cast(col, pa.string()), target)
    if same_temporal_kind(col.type, target):
        return temporal_cast(col, target)
    _refuse_lossy(col, target)
    out = pc.cast(col, target)
    if pa.types.is_floating(target) and _is_text(col.type) and pc.any(pc.is_inf(out)).as_py():
        bad = pc.index(pc.is_inf(out), True).as_py()
        if not re.fullmatch(r"[+-]?inf(inity)?", str(col[bad].as_py()).strip(), re.IGNORECASE):
            raise pa.ArrowInvalid(
                f"{col[bad].as_py()!r} is beyond a double's range (it would land as infinity)"
            )
    return out


def _is_text(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


def _refuse_lossy(col: pa.Array, target: pa.DataType) -> None:
    """Refuse the casts pyarrow calls safe that drop part of a value (a declared ``table_schema`` type):
    a timestamp's time of day in a DATE, its date in a TIME, an integer other than 0 and 1 as a BOOLEAN."""
    if pa.types.is_timestamp(col.type) and pa.types.is_date(target):
        whole = pc.equal(pc.cast(pc.cast(col, target), col.type), col)
        if not pc.all(whole).as_py():
            value = col[pc.index(whole, False).as_py()]
            raise pa.ArrowInvalid(
                f"{value} has a time of day, which a DATE column would drop: declare DATETIME"
            )
    elif pa.types.is_timestamp(col.type) and pa.types.is_time(target) and col.null_count < len(col):
        raise pa.ArrowInvalid("timestamps would lose their dates in a TIME column: declare DATETIME")
    elif pa.types.is_integer(col.type) and pa.types.is_boolean(target):
        truth = pc.is_in(col, value_set=pa.array([0, 1], col.type))
        if not pc.all(truth).as_py():
            value = col[pc.index(truth, False).as_py()]
            raise pa.ArrowInvalid(f"{value} is neither 0 nor 1, which a BOOLEAN column would make true")


_FLOOR_UNITS = {"s": "second", "ms": "millisecond", "us": "microsecond"}
_UNIT_ORDER = ("s", "ms", "us", "ns")


def same_temporal_kind(have: pa.DataType, want: pa.DataType) -> bool:
    """Both timestamps, or both times of day: ``temporal_cast`` converts between them."""
    return bool(pa.types.is_timestamp(have) and pa.types.is_timestamp(want)) or bool(
        pa.types.is_time(have) and pa.types.is_time(want)
    )


def temporal_cast(col: pa.Array, target: pa.DataType) -> pa.Array:
    """A timestamp in another unit or zone (its instants kept), or a time of day in another unit. Digits
    below the target's unit are dropped, as Celonis drops those below a millisecond; a finer unit must
    hold every value (9999-12-31 does not fit nanoseconds)."""
    if _UNIT_ORDER.index(target.unit) >= _UNIT_ORDER.index(col.type.unit):
        return pc.cast(col, target)
    if pa.types.is_time(target):
        # pyarrow's unsafe cast between time units would wrap out-of-range values; a time of day has none.
        return pc.cast(col, options=pc.CastOptions(target, allow_time_truncate=True))
    if _before_1970(col) and target.unit in _FLOOR_UNITS:
        # The cast cuts toward the epoch: 1969-12-31 23:59:59.9999 would become 1970-01-01 00:00:00. Floored
        # on the instants (UTC): pyarrow floors a zoned column in local time, refusing an ambiguous hour.
        naive = pc.floor_temporal(col.cast(pa.timestamp(col.type.unit)), unit=_FLOOR_UNITS[target.unit])
        col = naive.cast(col.type)
    return pc.cast(col, options=pc.CastOptions(target, allow_time_truncate=True))


def _times_of_day(text: pa.Array) -> pa.Array:
    """``HH:MM:SS`` text, with up to nine fractional digits, as ``time64[ns]``; anything else is refused."""
    valid = pc.match_substring_regex(text, TIME_OF_DAY)
    if pc.any(pc.invert(valid)).as_py():
        bad = pc.filter(text, pc.invert(valid))[0].as_py()
        raise pa.ArrowInvalid(f"{bad!r} is not a time of day (HH:MM:SS, with up to nine fractional digits)")
    midnight = pa.scalar("1970-01-01 ")
    seconds = pc.binary_join_element_wise(midnight, pc.utf8_slice_codeunits(text, 0, 8), pa.scalar(""))
    instants = pc.strptime(seconds, format="%Y-%m-%d %H:%M:%S", unit="ns").cast(pa.int64())
    fraction = pc.utf8_rpad(pc.utf8_slice_codeunits(text, 9, 18), 9, "0").cast(pa.int64())
    return pc.add(instants, fraction).cast(pa.time64("ns"))


def _before_1970(col: pa.Array) -> bool:
    """Whether a timestamp column holds an instant before the epoch (cutting digits moves those forward)."""
    low = pc.min(col.view(pa.int64())).as_py()
    return low is not None and low < 0
