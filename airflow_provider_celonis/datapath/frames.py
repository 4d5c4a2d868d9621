"""DataFrames and Arrow objects as record batches, with pandas' and pyarrow's refusals named.

A DataFrame's named index is data (``set_index("id")``), an object column must hold one kind of value, and
pyarrow types an object column from its first value: these rules live here so that a whole frame and a
stream of frames (``streams``) follow the same ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pyarrow as pa

from airflow_provider_celonis.hooks.errors import CelonisConfigError

T = TypeVar("T", pa.Table, pa.RecordBatch)


def is_dataframe(obj: Any) -> bool:
    return type(obj).__name__ == "DataFrame" and hasattr(obj, "to_records")


def index_as_columns(frame: Any, what: str) -> Any:
    """``frame`` with its named index levels as columns: a named index carries data (a ``groupby``'s keys,
    a ``set_index("id")``), an unnamed integer one is row positions (the default, or left by a filter) and is
    dropped. An unnamed level of a MultiIndex (``stack()``'s) or an unnamed index of other values (dates,
    labels) carries data too, but has no column name to land under: it is refused, not dropped."""
    names = list(frame.index.names)
    positions = len(names) == 1 and (frame.index.dtype.kind in "iu" or len(frame.index) == 0)
    if None in names and not positions:
        level = names.index(None)
        fix = (
            f"df.rename_axis({names!r} with names for None), or drop it: df.reset_index(level={level}, drop=True)"
            if len(names) > 1
            else "df.rename_axis('name'), or drop it: df.reset_index(drop=True)"
        )
        raise CelonisConfigError(
            f"{what}: the DataFrame's index level {level} ({frame.index.get_level_values(level).dtype} values) "
            f"has no name, so no column to land in, and it is not row positions: name it to push it, {fix}"
        )
    named = [name for name in names if name is not None]
    if not named:
        return frame
    try:
        return frame.reset_index(level=named)
    except ValueError as exc:  # a column of the same name
        raise CelonisConfigError(
            f"{what}: the DataFrame's index level(s) {named} are pushed as columns, but {exc}; "
            "rename the index or the column, or drop the index (reset_index(drop=True))"
        ) from exc


def to_batch(item: Any, what: str) -> pa.RecordBatch:
    if isinstance(item, pa.RecordBatch):
        return item
    if isinstance(item, pa.Table):
        return (
            item.combine_chunks().to_batches()[0]
            if item.num_rows
            else pa.RecordBatch.from_pylist([], item.schema)
        )
    if is_dataframe(item):
        return from_frame(item, what, pa.RecordBatch.from_pandas)
    raise CelonisConfigError(
        f"{what}: the iterable yielded a {type(item).__name__}, not a record batch or DataFrame"
    )


def from_frame(frame: Any, what: str, convert: Callable[..., T]) -> T:
    """A DataFrame as Arrow; what pandas or pyarrow refuse names the column and how to fix it."""
    try:
        frame = index_as_columns(frame, what)
        converted = convert(frame, preserve_index=False)
        _refuse_truths_as_numbers(frame, converted.schema, what)
        mixed = dates_beside_datetimes(frame, converted.schema)
        if not mixed:
            return converted
        # pyarrow types an object column from its first value: a date first made every datetime after it a
        # date, its time of day dropped. Such a column is a timestamp column (dates at midnight).
        import pandas as pd

        frame = frame.copy()
        for name in mixed:
            try:
                frame[name] = pd.to_datetime(frame[name])
            except ValueError as exc:  # e.g. "Mixed timezones detected"
                raise CelonisConfigError(
                    f"{what}: column {name!r} holds dates and datetimes that pandas cannot read as one "
                    f"timestamp column ({exc}): convert it first (pd.to_datetime(..., utc=True))"
                ) from exc
        return convert(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        if len(exc.args) < 2:  # pyarrow adds "Conversion failed for column x with type object"
            raise CelonisConfigError(
                f"{what}: the DataFrame cannot be converted: {_named(frame, exc)}"
            ) from exc
        raise CelonisConfigError(
            f"{what}: the DataFrame cannot be converted: {exc.args[1]}: {exc.args[0]}; an object column must "
            "hold one kind of value: cast it (e.g. df[col].astype('string'))"
        ) from exc
    except (TypeError, OverflowError, UnicodeError, pa.ArrowNotImplementedError) as exc:
        # e.g. a sparse or complex column, an int beyond 64 bits, Decimal('Infinity'), a lone surrogate
        raise CelonisConfigError(
            f"{what}: the DataFrame cannot be converted: {_named(frame, exc)}; cast the column to a plain dtype"
        ) from exc
    except ValueError as exc:
        if "Duplicate column names" not in str(exc):
            raise
        raise CelonisConfigError(
            f"{what}: the DataFrame has columns of one name ({exc}): rename them"
        ) from exc


def _named(frame: Any, exc: Exception) -> str:
    """``exc``'s message with the column it comes from, found by converting the columns one at a time (only
    on the way to an error)."""
    for name in frame.columns:
        try:
            pa.Array.from_pandas(frame[name])
        except Exception:  # noqa: BLE001 - any failure names the column; the caller raises the first one
            return f"column {name!r}: {exc}"
    return str(exc)


def _refuse_truths_as_numbers(frame: Any, schema: pa.Schema, what: str) -> None:
    """pyarrow reads an object column of numbers and booleans as numbers: True lands as 1.0. (A Python loop
    over object columns read as numbers only.)"""
    import numpy as np

    for position, fld in enumerate(schema):  # by position: pyarrow names a column 0 "0"
        if not (pa.types.is_integer(fld.type) or pa.types.is_floating(fld.type)):
            continue
        column = frame.iloc[:, position]
        if column.dtype != object:
            continue
        if any(isinstance(v, bool | np.bool_) for v in column):
            raise CelonisConfigError(
                f"{what}: column {fld.name!r} holds numbers and booleans (an object column), which would land "
                "as numbers (True as 1.0); an object column must hold one kind of value: cast it (e.g. "
                "df[col].astype('string'), or map the booleans to numbers yourself)"
            )


def dates_beside_datetimes(frame: Any, schema: pa.Schema) -> list[Any]:
    """Object columns read as dates that also hold datetimes (a Python loop: object columns only)."""
    import datetime as dt

    return [
        frame.columns[position]
        for position, fld in enumerate(schema)  # by position: pyarrow names a column 0 "0"
        if pa.types.is_date(fld.type)
        and frame.iloc[:, position].dtype == object
        and any(isinstance(v, dt.datetime) for v in frame.iloc[:, position])
    ]
