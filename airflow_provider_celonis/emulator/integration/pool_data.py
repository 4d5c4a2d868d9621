"""Reading the DuckDB side: a pool's tables and columns (pycelonis' ``PoolTable``/``PoolColumn``) and the rows
a data model's last load holds (its snapshot schema)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..storage import Tables, find_table, q
from .config import DataModel
from .runner import snapshot_schema

_INTEGER = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
)


def column_type(duck_type: str) -> str:
    """pycelonis' ``PoolColumnType`` (STRING, DATE, FLOAT, INTEGER) of a DuckDB type.

    BOOLEAN is INTEGER (0/1, as in Celonis' data models) and TIME is STRING: the four types have no other
    place for them.
    """
    t = duck_type.upper()
    if t in _INTEGER or t == "BOOLEAN":
        return "INTEGER"
    if t in ("FLOAT", "DOUBLE", "REAL") or t.startswith("DECIMAL"):
        return "FLOAT"
    if t.startswith("TIMESTAMP") or t == "DATE":
        return "DATE"
    return "STRING"


def jsonable(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def pool_exists(tables: Tables, pool_id: str) -> bool:
    cur = tables.cursor()
    try:
        row = cur.execute(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = ?", [pool_id]
        ).fetchone()
        return row is not None
    finally:
        cur.close()


def pool_tables(tables: Tables, pool_id: str) -> list[dict[str, Any]]:
    """``PoolTable`` entries of the pool's schema, by name."""
    cur = tables.cursor()
    try:
        rows = cur.execute(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = ? "
            "ORDER BY table_name",
            [pool_id],
        ).fetchall()
    finally:
        cur.close()
    return [
        {
            "name": str(name),
            "loaderSource": None,
            "available": True,
            "dataSourceId": None,
            "dataSourceName": None,
            "schemaName": pool_id,
            "type": "VIEW" if str(kind).upper() == "VIEW" else "TABLE",
        }
        for name, kind in rows
    ]


def pool_columns(tables: Tables, pool_id: str, table: str) -> list[dict[str, Any]] | None:
    """``PoolColumn`` entries of a pool table (None when there is no such table).

    A STRING column's ``length`` is four times its longest value (Celonis reports four times the declared
    VARCHAR length; the emulator keeps no declared lengths); other types have length 0.
    """
    cur = tables.cursor()
    try:
        stored = find_table(cur, pool_id, table)
        if stored is None:
            return None
        described = cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [pool_id, stored],
        ).fetchall()
        columns = [(str(n), column_type(str(t))) for n, t in described]
        strings = [n for n, t in columns if t == "STRING"]
        longest: dict[str, int] = {}
        if strings:
            sql = ", ".join(f"max(length(CAST({q(n)} AS VARCHAR)))" for n in strings)
            row = cur.execute(f"SELECT {sql} FROM {q(pool_id)}.{q(stored)}").fetchone() or ()
            longest = {n: int(v or 0) for n, v in zip(strings, row, strict=True)}
    finally:
        cur.close()
    return [{"name": n, "length": 4 * longest.get(n, 0), "type": t} for n, t in columns]


def model_snapshot(tables: Tables, pool_id: str, model: DataModel) -> dict[str, list[dict[str, Any]]]:
    """Table name -> rows (JSON objects) of what the model's loads copied; tables never loaded are absent."""
    schema = snapshot_schema(pool_id, model.id)
    cur = tables.cursor()
    try:
        result: dict[str, list[dict[str, Any]]] = {}
        for table in model.tables:
            stored = find_table(cur, schema, table.name)
            if stored is None:
                continue
            answer = cur.execute(f"SELECT * FROM {q(schema)}.{q(stored)}")
            names = [d[0] for d in answer.description or []]
            result[table.name] = [
                {n: jsonable(v) for n, v in zip(names, row, strict=True)} for row in answer.fetchall()
            ]
        return result
    finally:
        cur.close()
