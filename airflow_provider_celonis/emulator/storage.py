"""The tables both services write: one DuckDB database, one schema per data pool, and the name rules.

Identifiers are always quoted and string literals escaped, so names from clients cannot inject SQL.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import duckdb

#: Table and column names: letters, digits, ``_`` and ``-``, at most 128 characters (what Celonis
#: recommends; the same rule for Data Push parquet and CSV jobs, and for ingestion tables).
NAME_RULE = "letters, digits, '_' and '-' only, 1 to 128 characters"
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
POOL_RE = re.compile(r"^[A-Za-z0-9_\-]{1,100}$")
#: DuckDB's own schemas: a pool of that name would share them (each pool is a schema).
RESERVED_SCHEMAS = frozenset({"main", "information_schema", "pg_catalog", "temp", "system"})

_INTEGERS = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
)


class UnsupportedType(ValueError):
    """A file column whose type no Celonis column type can hold."""


def valid_name(name: object) -> bool:
    """Whether ``name`` follows :data:`NAME_RULE`."""
    return isinstance(name, str) and bool(NAME_RE.match(name))


def valid_pool(pool_id: str) -> bool:
    return bool(POOL_RE.match(pool_id)) and pool_id.lower() not in RESERVED_SCHEMAS


def q(name: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """Quote a string literal for DuckDB (standard SQL: only ``'`` needs doubling)."""
    return "'" + value.replace("'", "''") + "'"


def infer_type(duck_type: str, column: str) -> str:
    """Map a type found in a file to the DuckDB type of the Celonis type that would hold it."""
    t = duck_type.upper()
    if t in _INTEGERS:
        return "BIGINT"
    if t in {"FLOAT", "DOUBLE", "REAL"} or t.startswith("DECIMAL"):
        return "DOUBLE"
    if t.startswith("TIMESTAMP") or t == "DATE":
        return "TIMESTAMP_MS"
    if t.startswith("TIME"):
        return "TIME"
    if t in {"BOOLEAN", "VARCHAR", "BLOB", "UUID", '"NULL"', "NULL"}:
        return "BOOLEAN" if t == "BOOLEAN" else "VARCHAR"
    raise UnsupportedType(
        f"unsupported type {duck_type} of column '{column}' (flatten nested data, cast decimals)"
    )


def find_table(cur: duckdb.DuckDBPyConnection, pool: str, table: str) -> str | None:
    """The stored name of ``table`` in ``pool`` (names are case-insensitive), or None."""
    row = cur.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND lower(table_name) = lower(?)",
        [pool, table],
    ).fetchone()
    return None if row is None else str(row[0])


def table_columns(cur: duckdb.DuckDBPyConnection, pool: str, table: str | None) -> dict[str, tuple[str, str]]:
    """lower name -> (stored name, type) of a stored table (empty when there is none)."""
    if table is None:
        return {}
    rows = cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [pool, table],
    ).fetchall()
    return {str(n).lower(): (str(n), str(t)) for n, t in rows}


def key_match(keys: list[str], left: str = "t", right: str = "s") -> str:
    """``t.k1 IS NOT DISTINCT FROM s.k1 AND ...`` (NULL keys match NULL keys)."""
    return " AND ".join(f"{left}.{q(k)} IS NOT DISTINCT FROM {right}.{q(k)}" for k in keys)


class Tables:
    """Owns the DuckDB database; each thread takes its own cursor, the active job can be interrupted."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp_dir = path.parent / "engine-tmp"
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()
        self._active: duckdb.DuckDBPyConnection | None = None

    def open(self) -> None:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(str(self.path))

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own for the calling thread (DuckDB connections are not shared safely)."""
        assert self._con is not None, "emulator not started"
        cur = self._con.cursor()
        cur.execute("SET TimeZone = 'UTC'")
        return cur

    def set_active(self, cur: duckdb.DuckDBPyConnection | None) -> None:
        """Register the cursor :meth:`interrupt` stops (the Data Push worker's running job)."""
        with self._lock:
            self._active = cur

    def interrupt(self) -> None:
        """Stop the statement the worker is running (used on cancel and when the emulator stops)."""
        with self._lock:
            if self._active is not None:
                self._active.interrupt()

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
