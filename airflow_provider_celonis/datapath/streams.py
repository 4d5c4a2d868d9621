"""A stream read once (an iterable of DataFrames or record batches): its types, and its later batches in them.

A file that drifts is read again with the wider type (``drift``); a stream cannot be, so its column types
are settled before the first row is sent, and a later batch must land in them without a value changing.
Two things make that hold for the streams DAGs actually produce (``pd.read_sql(..., chunksize=...)``, a
generator of frames):

* **A column with no value in the first batch** (a sparse column: all ``None``, so pyarrow types it
  ``null``, or all ``NaN``) is typed by looking further ahead: batches are held, at most
  ``LOOK_AHEAD_BYTES`` of them, until each such column holds a value. Batches with values in it decide its
  type along the files' ladder (``drift.unify``). A column with no value in the whole window keeps the
  first batch's type (a column of None lands as STRING, ``schema.celonis_type``, later values as their
  text), or lands as ``table_schema`` declares it, converted by ``schema.conform``.
* **Later batches are judged by the Celonis type they land in, not by their Arrow type**: a decimal's
  precision, an ``int32`` beside an ``int64``, a categorical beside plain strings, ``large_string`` beside
  ``string`` all land as the same column, converted by ``schema.conform`` as the first batch is. Anything
  else is cast into the type the column lands in only where that re-types values without re-reading them
  (``_keeps_values``) and pyarrow's safe cast keeps every one (an integral float into an integer column),
  and fails naming the column otherwise. Columns in another order are picked by name.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from airflow_provider_celonis.datapath.batches import BatchSource
from airflow_provider_celonis.datapath.casts import cast_column
from airflow_provider_celonis.datapath.drift import unify
from airflow_provider_celonis.datapath.frames import to_batch
from airflow_provider_celonis.datapath.names import same_names_reordered
from airflow_provider_celonis.datapath.schema import normalized_type
from airflow_provider_celonis.hooks.errors import CelonisConfigError

#: Under ``airflow.task`` so that these lines land in the task log next to the operator's own.
log = logging.getLogger(f"airflow.task.{__name__}")
#: Held at most while a column of the first batch has no value yet: about 500,000 rows of ten columns.
LOOK_AHEAD_BYTES = 64 * 2**20

_TEXTUAL = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)


def open_iterable(items: Iterator[Any], what: str) -> BatchSource:
    """The stream's types from its first batch (looking ahead for columns with no value yet); the rest
    streams as it comes."""
    first = next(items, None)
    if first is None:
        raise CelonisConfigError(f"{what}: the iterable yielded no data")
    held = [to_batch(first, what)]
    size = _held_bytes(held[0])
    valueless = [name for name in held[0].schema.names if _all_null(held[0].column(name))]
    while size < LOOK_AHEAD_BYTES and valueless:
        item = next(items, None)
        if item is None:
            break
        held.append(_same_names(to_batch(item, what), held[0].schema, what))
        size += _held_bytes(held[-1])
        valueless = [name for name in valueless if _all_null(held[-1].column(name))]
    schema = settled_schema(held)
    if size >= LOOK_AHEAD_BYTES and valueless:
        log.warning(
            "%s: column(s) %s hold no value in the stream's first %s rows (%d MiB looked ahead): they keep "
            "the first batch's type (%s; a column of None lands as STRING, later values as their text) "
            "unless table_schema declares theirs",
            what,
            ", ".join(map(repr, valueless)),
            f"{sum(b.num_rows for b in held):,}",
            LOOK_AHEAD_BYTES // 2**20,
            ", ".join(str(schema.field(name).type) for name in valueless),
        )

    def batches() -> Iterator[pa.RecordBatch]:
        while held:
            yield like_head(held.pop(0), schema, what)
        for item in items:
            yield like_head(to_batch(item, what), schema, what)

    return BatchSource(schema, batches, f"iterable of batches ({what})")


def _held_bytes(batch: pa.RecordBatch) -> int:
    """What holding a batch costs: its buffers, and at least 8 bytes a row (a column of None has none)."""
    return int(batch.nbytes) + 8 * int(batch.num_rows)


def _all_null(column: pa.Array) -> bool:
    return bool(column.null_count == len(column))


def settled_schema(held: list[pa.RecordBatch]) -> pa.Schema:
    """The first batch's schema, each column with no value in it typed by the held batches that have one."""
    schema = held[0].schema
    for index, name in enumerate(schema.names):
        if not _all_null(held[0].column(index)):
            continue
        settled: pa.DataType | None = None
        for batch in held[1:]:
            column = batch.column(name)
            if _all_null(column):
                continue
            have = _values_type(column.type)
            if settled is None or same_landing(have, settled):
                settled = settled or have
            else:
                settled = unify(settled, have) or settled
        if settled is not None:
            schema = schema.set(index, pa.field(name, settled))
    return schema


def same_landing(have: pa.DataType, want: pa.DataType) -> bool:
    """Whether two Arrow types land as one Celonis column, each batch converted by ``schema.conform`` as it
    would be alone (a zoned timestamp to its instant in UTC, a naive one as written)."""
    if pa.types.is_null(have) or pa.types.is_null(want):
        return False
    return bool(normalized_type(have).equals(normalized_type(want)))


def _same_names(batch: pa.RecordBatch, head: pa.Schema, what: str) -> pa.RecordBatch:
    """``batch`` with the first batch's columns, picked by name when they come in another order."""
    names = batch.schema.names
    if names != head.names and same_names_reordered(names, head.names):
        return batch.select(head.names)
    if names != head.names:
        raise CelonisConfigError(
            f"{what}: a later batch has a different schema than the first: columns {batch.schema.names}, "
            f"the first batch's {head.names}"
        )
    return batch


def like_head(batch: pa.RecordBatch, schema: pa.Schema, what: str) -> pa.RecordBatch:
    """A batch of the stream with every column in a type that lands as ``schema``'s does (see the module).

    Casting text into another type would change values, not only their type ("0042" -> 42, "1" -> true,
    "nan" -> NaN), so that fails and names the column; numbers are cast only where pyarrow's safe cast
    keeps them exactly.
    """
    if batch.schema.equals(schema):
        return batch
    batch = _same_names(batch, schema, what)

    def hint(name: str, have: pa.DataType, want: pa.DataType) -> str:
        return (
            f"{what}: a later batch has a different schema than the first: column {name!r} is {have}, "
            f"the first batch's is {want}; a stream is read once, so give the first batch the type that "
            "holds every batch's values (cast it), or push a file"
        )

    columns = []
    for name, column, want in zip(schema.names, batch.columns, schema.types, strict=True):
        if column.type.equals(want) or pa.types.is_null(want) or same_landing(column.type, want):
            columns.append(column)  # ``schema.conform`` converts it as it does the first batch's
        elif _all_null(column):
            columns.append(pa.nulls(len(column), want))
        else:
            if pa.types.is_dictionary(column.type):
                column = column.dictionary_decode()  # judged and cast by its values (a categorical)
            # Into the type the column lands in, not the first batch's narrower one (int8, float16, a
            # decimal's precision): 300 after int8 values is an INTEGER all the same.
            target = normalized_type(want)
            if not _keeps_values(column.type, target):
                raise CelonisConfigError(hint(name, column.type, want))
            columns.append(cast_column(name, column, target, hint))
    return pa.RecordBatch.from_arrays(columns, names=schema.names)


def _values_type(t: pa.DataType) -> pa.DataType:
    return t.value_type if pa.types.is_dictionary(t) else t


def _keeps_values(have: pa.DataType, want: pa.DataType) -> bool:
    """Whether a cast from ``have`` to ``want`` can only re-type values, never re-read them: no text parsed
    ("0042" -> 42, "nan" -> NaN), no numbers as truth values or as counts since 1970 (20200101 -> a
    timestamp), no time of day dropped (a timestamp into a DATE) or made up. Numbers may become their text
    (a STRING column, as a file's drift makes it); pyarrow's safe cast refuses what would lose digits."""
    kinds = (
        (lambda t: any(test(t) for test in _TEXTUAL), "text"),
        (pa.types.is_boolean, "truth"),
        (lambda t: pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t), "number"),
        (pa.types.is_date, "date"),
        (pa.types.is_timestamp, "timestamp"),
        (pa.types.is_time, "time"),
    )
    have_kind = next((kind for test, kind in kinds if test(have)), None)
    want_kind = next((kind for test, kind in kinds if test(want)), None)
    return have_kind is not None and (
        have_kind == want_kind or (have_kind, want_kind) in {("number", "text"), ("date", "timestamp")}
    )
