"""The data set behind docs/data-types.md: one column per row of the table, three data rows, built as
every source kind (the same values, written the way each kind carries them).

``VALUES`` holds the Python values; ``landed_value`` (in the test) says what each kind lands.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

BIG = 2**53 + 1
LONG = "".join(chr(0x41 + i % 26) for i in range(5000))
TSZ = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))

#: column -> (Arrow type, the three values). Column names are the doc table's rows.
VALUES: dict[str, tuple[pa.DataType, list[Any]]] = {
    "id": (pa.int64(), [1, 2, 3]),
    "null_vs_empty": (pa.string(), [None, "", "x"]),
    "int_null": (pa.int64(), [None, 0, -5]),
    "flag": (pa.bool_(), [True, False, None]),
    "big_int": (pa.int64(), [BIG, -(2**63) + 1, 2**63 - 1]),
    "dec": (pa.decimal128(10, 2), [Decimal("12.34"), Decimal("-0.50"), None]),
    "day": (pa.date32(), [dt.date(2024, 2, 29), dt.date(1400, 1, 1), None]),
    "clock": (pa.time64("us"), [dt.time(13, 14, 15), dt.time(0, 0), None]),
    "ts": (pa.timestamp("us"), [dt.datetime(2024, 1, 2, 3, 4, 5, 123000), dt.datetime(9999, 12, 31), None]),
    "tsz": (pa.timestamp("us", tz="+02:00"), [TSZ, None, TSZ]),
    "uni": (pa.string(), ["日本語 ü", "😀 emoji", "ẞ Ω"]),
    "multiline": (pa.string(), ["line 1\nline 2", 'a "quoted", comma', "x\r\ny"]),
    "long": (pa.string(), [LONG, "short", None]),
    "MixedCase": (pa.string(), ["kept", "as", "is"]),
}
COLUMNS = list(VALUES)


def arrow_table() -> pa.Table:
    return pa.table({name: pa.array(values, t) for name, (t, values) in VALUES.items()})


def dataframe() -> Any:
    """A DataFrame as users build them: object columns of Python values, nullable integer/boolean dtypes."""
    import pandas as pd

    frame = {}
    for name, (t, values) in VALUES.items():
        if pa.types.is_integer(t):
            frame[name] = pd.array(values, dtype="Int64")
        elif pa.types.is_boolean(t):
            frame[name] = pd.array(values, dtype="boolean")
        else:
            frame[name] = pd.Series(values, dtype=object)
    return pd.DataFrame(frame)


def _csv_field(value: Any) -> str:
    """NULL is an unquoted empty field, a string is quoted when it must be (and ``""`` always)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ") if value.tzinfo is None else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    text = str(value)
    if text == "" or any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def write_csv(path: Path, bom: bool = True, crlf: bool = True) -> Path:
    """With a UTF-8 byte-order mark and CRLF endings, as Excel writes them: both must need no option."""
    ending = "\r\n" if crlf else "\n"
    lines = [",".join(COLUMNS)]
    for i in range(3):
        lines.append(",".join(_csv_field(VALUES[c][1][i]) for c in COLUMNS))
    path.write_bytes(("\ufeff" if bom else "").encode() + (ending.join(lines) + ending).encode())
    return path


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return _csv_field(value)
    return value


def write_jsonl(path: Path) -> Path:
    with path.open("w") as f:
        for i in range(3):
            f.write(json.dumps({c: _json_value(VALUES[c][1][i]) for c in COLUMNS}, ensure_ascii=False) + "\n")
    return path


def write_parquet(path: Path) -> Path:
    pq.write_table(arrow_table(), path)
    return path


def write_sqlite(path: Path) -> Path:
    """SQLite has no date, time or boolean type: the driver hands over text and integers."""
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE t ({', '.join(f'{c!r}' for c in COLUMNS)})")
        for i in range(3):
            row = []
            for c in COLUMNS:
                v = VALUES[c][1][i]
                if isinstance(v, Decimal):
                    v = float(v)
                elif isinstance(v, dt.datetime | dt.date | dt.time):
                    v = _csv_field(v)
                row.append(v)
            db.execute(f"INSERT INTO t VALUES ({', '.join('?' * len(row))})", row)
    return path
