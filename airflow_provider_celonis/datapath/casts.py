"""Safe per-column casts shared by several files' batches and a stream's later batches.

pyarrow's safe cast fails rather than cut, round or overflow, so a value the shared type cannot hold
becomes ``DoesNotFit`` naming its column; the caller says how to read it (``hint``) and whether it can
widen instead (``sources._shared_type``).
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

from airflow_provider_celonis.datapath.schema import same_temporal_kind, temporal_cast, through_text
from airflow_provider_celonis.hooks.errors import CelonisConfigError

Hint = Callable[[str, pa.DataType, pa.DataType], str]


class DoesNotFit(CelonisConfigError):
    """A value that its column's shared type cannot hold."""

    def __init__(self, message: str, column: str, have: pa.DataType, want: pa.DataType) -> None:
        super().__init__(message)
        self.column, self.have, self.want = column, have, want


def cast_column(name: str, column: pa.Array, want: pa.DataType, hint: Hint) -> pa.Array:
    """``column`` as ``want``; a value that does not fit fails with ``hint`` (which kinds of value may be
    cast at all is the caller's rule: ``streams._keeps_values``)."""
    if column.type.equals(want):
        return column
    try:
        if same_temporal_kind(column.type, want):
            return temporal_cast(column, want)
        return column.cast(pa.string()).cast(want) if through_text(column.type, want) else column.cast(want)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        raise DoesNotFit(f"{hint(name, column.type, want)}: {exc}", name, column.type, want) from exc


def cast_columns(batch: pa.RecordBatch, schema: pa.Schema, hint: Hint) -> pa.RecordBatch:
    """``batch`` in ``schema``'s types, column by column (``cast_column``)."""
    columns = [
        cast_column(name, column, want, hint)
        for name, column, want in zip(schema.names, batch.columns, schema.types, strict=True)
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)
