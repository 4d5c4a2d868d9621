"""Type drift: a later block holds a value that does not fit the type read from the first one.

Readers infer a column's type from the first block (pyarrow's CSV reader) or from each file's own
metadata (several files). Failing a 2-million-row push because row 2,000,001 says ``A12`` helps nobody,
so the column is widened along a fixed ladder and the source is read again from the start:

* integer -> float -> string (an integer that overflows 64 bits goes straight to string);
* date -> timestamp -> string; time (whole seconds) -> time (nanoseconds) -> string; boolean -> string;
  a column NULL in the whole first block takes the type of its first value.

Only re-readable sources (files) can be read again; ``SchemaDrift`` carries the widened source. For a
stream that can be read once (an iterable, a reader, a query cursor) the drift stays the clear error
it always was. Memory stays bounded: nothing read is kept, the rows are read and converted again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_celonis.datapath.batches import BatchSource
from airflow_provider_celonis.datapath.text_read import FINE_TIME, TIME_OF_DAY
from airflow_provider_celonis.hooks.errors import CelonisConfigError

#: Under ``airflow.task`` so that these lines land in the task log next to the operator's own.
log = logging.getLogger(f"airflow.task.{__name__}")
T = TypeVar("T")

_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")
_TIME_OF_DAY = re.compile(TIME_OF_DAY)
#: Each widening moves one column up its ladder (at most three steps), so this bounds the restarts.
MAX_RESTARTS = 64


class SchemaDrift(CelonisConfigError):
    """A column's type read from the first rows does not fit a later value.

    ``widened`` is the same source, to be read again from the start with the wider column type, or
    None when the source cannot be read twice (then this is the final error, as it always was).
    """

    def __init__(
        self,
        message: str,
        *,
        column: str,
        old: pa.DataType,
        new: pa.DataType,
        widened: BatchSource | None,
        what: str = "source",
    ) -> None:
        super().__init__(message)
        self.column, self.old, self.new, self.widened, self.what = column, old, new, widened, what

    @property
    def explanation(self) -> str:
        if self.old.equals(self.new):  # a timestamp column read through its text (``text_timestamps``)
            return str(self)
        return f"column {self.column!r} widened from {self.old} to {self.new}: {self}"


def _fits(value: str, target: pa.DataType) -> bool:
    try:
        pc.cast(pa.array([value.strip()]), target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
        return False
    return True


def widen(current: pa.DataType, value: str | None) -> pa.DataType:
    """The next type up ``current``'s ladder that can hold ``value`` (a text value from the source)."""
    text = value if value is not None else ""
    if pa.types.is_null(current):
        if _INTEGER.match(text) and not _fits(text, pa.int64()):
            return pa.string()  # beyond int64: a double would round it
        for candidate in (pa.int64(), pa.float64(), pa.date32(), pa.timestamp("us"), pa.bool_()):
            if _fits(text, candidate):
                return candidate
        return FINE_TIME if _TIME_OF_DAY.match(text.strip()) else pa.string()
    if pa.types.is_integer(current):
        if not _INTEGER.match(text) and _fits(text, pa.float64()):
            return pa.float64()
        return pa.string()
    if pa.types.is_date(current) and _fits(text, pa.timestamp("us")):
        return pa.timestamp("us")
    if pa.types.is_time(current) and not current.equals(FINE_TIME) and _TIME_OF_DAY.match(text.strip()):
        return FINE_TIME  # a fraction after whole seconds (pyarrow cannot cast text to a time: a pattern)
    return pa.string()


def unify(first: pa.DataType, other: pa.DataType) -> pa.DataType | None:
    """The narrowest type on the ladders holding both (columns of two files); None when they are equal."""
    if first.equals(other):
        return None
    for a, b in ((first, other), (other, first)):
        if (wider := _one_way(a, b)) is not None:
            return wider
    if pa.types.is_decimal(first) and pa.types.is_decimal(other):
        return _wider_decimal(first, other)
    if pa.types.is_nested(first) or pa.types.is_nested(other):
        return None  # not ours to widen: the schema check names the nested column
    return pa.string()


def _one_way(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    """``unify``'s rules for ``a`` beside ``b`` (tried both ways round); None when none applies."""
    if pa.types.is_null(a):
        return b
    if pa.types.is_integer(a) and (pa.types.is_floating(b) or pa.types.is_decimal(b)):
        return pa.float64()
    if pa.types.is_integer(a) and pa.types.is_integer(b):
        return pa.int64()
    if (pa.types.is_floating(a) or pa.types.is_decimal(a)) and pa.types.is_floating(b):
        return pa.float64()
    # Microseconds hold every year Celonis keeps (nanoseconds only 1677-2262), and it keeps milliseconds.
    if pa.types.is_date(a) and pa.types.is_timestamp(b):
        return pa.timestamp("us", b.tz)
    if pa.types.is_timestamp(a) and pa.types.is_timestamp(b) and (a.tz is None) == (b.tz is None):
        return pa.timestamp("us", a.tz if a.tz == b.tz else "UTC")  # zones apart: the same instants
    if pa.types.is_time(a) and pa.types.is_time(b):
        return FINE_TIME if FINE_TIME in (a, b) else pa.time64("us")  # FINE_TIME: a CSV's text is parsed so
    return None


def _wider_decimal(one: pa.DataType, other: pa.DataType) -> pa.DataType:
    """The decimal holding both (each lands as FLOAT, through its text, as one file's would)."""
    scale = max(one.scale, other.scale)
    precision = max(one.precision - one.scale, other.precision - other.scale) + scale
    if precision <= 38:
        return pa.decimal128(precision, scale)
    return pa.decimal256(precision, scale) if precision <= 76 else pa.float64()


def widened_schema(schema: pa.Schema, column: str, new: pa.DataType) -> pa.Schema:
    index = schema.get_field_index(column)
    return schema.set(index, pa.field(column, new))


def with_widening(attempt: Callable[[], T], on_drift: Callable[[SchemaDrift], None], log_to: Any = None) -> T:
    """Run ``attempt`` and, each time it raises a ``SchemaDrift`` with a widened source, let
    ``on_drift`` swap that source in (and clean up what the attempt made), log it, and run it again.
    """
    logger = log_to or log
    for _ in range(MAX_RESTARTS):
        try:
            return attempt()
        except SchemaDrift as drift:
            if drift.widened is None:
                raise
            logger.warning("Type drift: %s; reading the source again from the start", drift.explanation)
            on_drift(drift)
    return attempt()


class _Part(Protocol):
    kind: str
    source: BatchSource


P = TypeVar("P", bound=_Part)


def push_widening(
    push: Callable[[list[P]], T],
    parts: Sequence[P],
    replan: Callable[[BatchSource | None, BatchSource | None], list[P]],
    clean_up: Callable[[], None],
    log_to: Any = None,
) -> T:
    """The lifecycle's entry point: ``push(parts)``, and on type drift clean up (``clean_up``: delete the
    job if one was created), re-plan with the widened source (``replan(upserted, deleted)``, the same
    planning step that made ``parts``) and push again from the start.

    A drift in one part while another part's source cannot be read twice stays the clear error.
    """
    current = list(parts)

    def on_drift(drift: SchemaDrift) -> None:
        nonlocal current
        assert drift.widened is not None
        kind = "deleted" if drift.what == "deleted_source" else "upserted"
        sources: dict[str, BatchSource | None] = {p.kind: p.source for p in current}
        if any(k != kind and s is not None and not s.rereadable for k, s in sources.items()):
            raise drift
        sources[kind] = drift.widened
        clean_up()
        current = replan(sources.get("upserted"), sources.get("deleted"))

    return with_widening(lambda: push(current), on_drift, log_to)
