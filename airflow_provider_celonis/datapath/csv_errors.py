"""Where a CSV read failed: pyarrow's error with the file, column and row or line added.

A value that does not fit its column's type becomes a ``SchemaDrift`` carrying the source re-opened
with that column widened (see ``drift``); the row or line is found by a second, narrow read.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

import pyarrow as pa

from airflow_provider_celonis.datapath.batches import BatchSource
from airflow_provider_celonis.datapath.drift import SchemaDrift, widen
from airflow_provider_celonis.datapath.files import open_raw
from airflow_provider_celonis.datapath.text_read import ReadSettings, fine_timestamp_type, open_csv
from airflow_provider_celonis.hooks.errors import CelonisConfigError

_CSV_COLUMN_ERROR = re.compile(r"In CSV column #(\d+): (.*?invalid value '(.*)')", re.S)
#: A timestamp column read as naive (or aware) meeting a value with (or without) a zone offset.
_CSV_ZONE_ERROR = re.compile(
    r"In CSV column #(\d+): (.*?expected (?:no|a) zone offset) in '(.*)'(?:\. If these timestamps.*)?$", re.S
)
_CSV_FIELDS_ERROR = re.compile(r"Expected (\d+) columns, got (\d+): (.*)", re.S)


class Reopen(Protocol):
    """The source opened again from the start with ``column`` read as ``new`` (through its text, cut to
    microseconds, with ``text_timestamps``)."""

    def __call__(self, column: str, new: pa.DataType, *, text_timestamps: bool = False) -> BatchSource: ...


def csv_error(
    what: str,
    path: Any,
    exc: pa.ArrowInvalid,
    schema: pa.Schema | None,
    settings: ReadSettings,
    reopen: Reopen | None = None,
) -> CelonisConfigError:
    """pyarrow's CSV error with the column name and the row or line added (found by a second read).

    A value that does not fit its column's type is a ``SchemaDrift`` carrying the source re-opened
    with that column widened (see ``drift``).
    """
    text = str(exc)
    if found := _CSV_FIELDS_ERROR.search(text):
        line = csv_line_of(path, found.group(3))
        where = f"line {line}" if line else "a line"
        return CelonisConfigError(
            f"{what}: {path}: {where} has {found.group(2)} fields, but the header has {found.group(1)}: "
            f"{found.group(3)[:200]!r} (a separator or quote inside an unquoted value?)"
        )
    if "invalid UTF8" in text:
        return CelonisConfigError(
            f"{what}: {path} is not valid {(settings.encoding or 'utf-8').upper()} further on ({text}); "
            "pass encoding= with the file's encoding (e.g. encoding='cp1252' or 'latin-1')"
        )
    found = _CSV_COLUMN_ERROR.search(text) or _CSV_ZONE_ERROR.search(text)
    if found and schema is not None and int(found.group(1)) < len(schema):
        fld, value = schema.field(int(found.group(1))), found.group(3)
        row = csv_row_of(path, fld.name, value, settings)
        where = f"row {row}" if row else "a later row"
        fine = fine_timestamp_type(fld.type, value) if fld.name not in settings.text_timestamps else None
        if fine is not None and reopen is not None:
            return SchemaDrift(
                f"{what}: {path}: column {fld.name!r} holds {value[:100]!r} in {where}, a timestamp with more "
                "than six fractional digits: it is read as text and cut to microseconds (Celonis keeps "
                "milliseconds)",
                column=fld.name,
                old=fld.type,
                new=fine,
                widened=reopen(fld.name, fine, text_timestamps=True),
                what=what,
            )
        message = (
            f"{what}: {path}: column {fld.name!r} holds {value[:100]!r} in {where}, which does not fit the "
            f"type read from the rows before it ({found.group(2)}); make the column's values consistent"
        )
        new = widen(fld.type, value)
        widened = reopen(fld.name, new) if reopen is not None and not new.equals(fld.type) else None
        return SchemaDrift(message, column=fld.name, old=fld.type, new=new, widened=widened, what=what)
    return CelonisConfigError(f"{what}: cannot read csv file {path}: {text}")


def csv_line_of(path: Any, record: str) -> int | None:
    """The physical line number (1-based) where ``record`` starts; None when it cannot be found."""
    first = record.splitlines()[0].encode() if record else b""
    try:
        with open_raw(path) as handle:
            for number, line in enumerate(handle, start=1):
                if line.rstrip(b"\r\n") == first:
                    return number
    except (OSError, pa.ArrowException):
        return None
    return None


def csv_row_of(path: Any, column: str, value: str, settings: ReadSettings) -> int | None:
    """The data row (1-based, header not counted) where ``column`` first holds ``value``."""
    import pyarrow.compute as pc

    seen = 0
    try:
        with open_csv(path, settings, column_types={column: pa.string()}, include_columns=[column]) as reader:
            for batch in reader:
                index = pc.index(batch.column(0), value).as_py()
                if index is not None and index >= 0:
                    return seen + int(index) + 1
                seen += batch.num_rows
    except (OSError, pa.ArrowException):
        return None
    return None
