"""Applying a job's chunks to DuckDB tables: one database, one schema per data pool.

A job runs in one transaction, so a failing chunk leaves the table exactly as it was (ERROR is atomic).
Parquet is read in place with ``read_parquet`` and CSV with ``read_csv``; nothing is loaded into Python.
Identifiers are always quoted and string literals escaped, so names from clients cannot inject SQL.
"""

from __future__ import annotations

import re
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from .csv_options import ensure_utf8, java_to_strptime, read_csv_options
from .models import job_keys

DEFAULT_VARCHAR_LENGTH = 80
CELONIS_TO_DUCKDB = {
    "INTEGER": "BIGINT",
    "FLOAT": "DOUBLE",
    "DATE": "TIMESTAMP_MS",
    "DATETIME": "TIMESTAMP_MS",
    "TIME": "TIME",
    "BOOLEAN": "BOOLEAN",
    "STRING": "VARCHAR",
}
# What read_csv should parse a declared column as, so that dateFormat and separators apply while reading.
CSV_READ_TYPES = {**CELONIS_TO_DUCKDB, "DATE": "TIMESTAMP", "DATETIME": "TIMESTAMP"}
_INTEGERS = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
}
_CSV_COLUMN_RE = re.compile(r'Error when converting column "([^"]+)"')


class JobFailed(Exception):
    """The job ends in ERROR; the message becomes its log line."""


class JobAborted(Exception):
    """The job was canceled or the emulator is stopping; nothing is committed."""


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
    raise JobFailed(f"unsupported type {duck_type} of column '{column}' (flatten nested data, cast decimals)")


@dataclass
class Target:
    """The column a chunk column lands in."""

    source: str  # name in the chunk
    name: str  # name in the table
    duck_type: str
    celonis_type: str | None
    length: int


class Engine:
    """Owns the DuckDB database; ``apply_job`` is called by the single worker thread."""

    def __init__(self, path: Path) -> None:
        self._con = duckdb.connect(str(path))
        self._lock = threading.Lock()
        self._active: duckdb.DuckDBPyConnection | None = None
        self.tmp_dir = path.parent / "engine-tmp"
        self.tmp_dir.mkdir(exist_ok=True)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own for the calling thread (DuckDB connections are not shared safely)."""
        cur = self._con.cursor()
        cur.execute("SET TimeZone = 'UTC'")
        return cur

    def interrupt(self) -> None:
        """Stop the statement the worker is running (used when the emulator stops)."""
        with self._lock:
            if self._active is not None:
                self._active.interrupt()

    def close(self) -> None:
        self._con.close()

    # public API ------------------------------------------------------------------------------------
    def apply_job(
        self,
        job: dict[str, Any],
        chunks: list[dict[str, Any]],
        dedup_column: str | None,
        should_abort: Callable[[], bool],
    ) -> list[str]:
        """Apply all chunks in upload order in one transaction; returns log lines, raises JobFailed."""
        cur = self.cursor()
        with self._lock:
            self._active = cur
        try:
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {q(job['dataPoolId'])}")
            cur.begin()
            try:
                logs = _JobRun(cur, job, dedup_column, self.tmp_dir).run(chunks, should_abort)
                if should_abort():
                    raise JobAborted()
                cur.commit()
                return logs
            except BaseException:
                cur.rollback()
                raise
        except duckdb.InterruptException as exc:
            raise JobAborted() from exc
        finally:
            with self._lock:
                self._active = None
            cur.close()


def find_table(cur: duckdb.DuckDBPyConnection, pool: str, table: str) -> str | None:
    """The stored name of ``table`` in ``pool`` (names are case-insensitive), or None."""
    row = cur.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND lower(table_name) = lower(?)",
        [pool, table],
    ).fetchone()
    return None if row is None else str(row[0])


class _JobRun:
    """The state of one job execution: the target table and how each chunk maps onto it."""

    def __init__(
        self, cur: duckdb.DuckDBPyConnection, job: dict[str, Any], dedup: str | None, tmp_dir: Path
    ) -> None:
        self.cur = cur
        self.job = job
        self.pool = job["dataPoolId"]
        self.fmt = "CSV" if job["fileType"] == "CSV" else "Parquet"
        self.keys = job_keys(job)
        self.dedup = dedup
        self.fallback = job.get("fallbackVarcharLength") or DEFAULT_VARCHAR_LENGTH
        self.schema = {c["columnName"].lower(): c for c in (job.get("tableSchema") or {}).get("columns", [])}
        self.csv_extra = {
            str(o.get("columnName", "")).lower(): o
            for o in (job.get("csvParsingOptions") or {}).get("additionalColumnOptions", [])
        }
        self.tmp_dir = tmp_dir
        self.table = find_table(cur, self.pool, job["targetName"])

    @property
    def qualified(self) -> str:
        assert self.table is not None
        return f"{q(self.pool)}.{q(self.table)}"

    def table_columns(self) -> dict[str, tuple[str, str]]:
        """lower name -> (stored name, type) of the target table."""
        rows = self.cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [self.pool, self.table],
        ).fetchall()
        return {str(n).lower(): (str(n), str(t)) for n, t in rows}

    def run(self, chunks: list[dict[str, Any]], should_abort: Callable[[], bool]) -> list[str]:
        logs: list[str] = []
        if self.job["type"] == "REPLACE" and self.table is not None:
            self.cur.execute(f"DROP TABLE {self.qualified}")
            self.table = None
        for number, chunk in enumerate(chunks, start=1):
            if should_abort():
                raise JobAborted()
            with tempfile.TemporaryDirectory(dir=self.tmp_dir) as work:
                source = self.source_sql(chunk, number, Path(work))
                if chunk["type"] == "DELETE":
                    count = self.delete(source, number)
                    logs.append(f"chunk {number}: {count} rows deleted")
                else:
                    count = self.upsert(source, number)
                    logs.append(f"chunk {number}: {count} rows upserted")
        if not chunks:
            logs.append("no chunks to apply")
        return logs

    # reading -----------------------------------------------------------------------------------------
    def source_sql(self, chunk: dict[str, Any], number: int, work: Path) -> str:
        """A FROM-able expression reading the chunk file."""
        path = Path(chunk["path"])
        try:
            if self.fmt == "Parquet":
                source = f"read_parquet({lit(str(path))})"
                self.cur.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
                return source
            return self.csv_source(path, work)
        except duckdb.Error as exc:
            raise JobFailed(
                f"Internal error while validating the {self.fmt}: chunk {number} is unreadable: {exc}"
            ) from exc

    def csv_source(self, path: Path, work: Path) -> str:
        options = self.job.get("csvParsingOptions") or {}
        try:
            utf8 = ensure_utf8(path, options.get("charSet"), work)
        except (ValueError, UnicodeDecodeError) as exc:
            raise JobFailed(f"Internal error while validating the CSV: {exc}") from exc
        args = read_csv_options(options)
        base = ", ".join(f"{k} = {lit(v) if isinstance(v, str) else str(v).lower()}" for k, v in args.items())
        sniffed = self.cur.execute(f"DESCRIBE SELECT * FROM read_csv({lit(str(utf8))}, {base})").fetchall()
        types: dict[str, str] = {}
        for name, *_ in sniffed:
            lower = str(name).lower()
            if lower in self.csv_extra:
                types[str(name)] = "VARCHAR"  # converted per column in SQL, see column_expr
            elif self.schema.get(lower, {}).get("columnType"):
                types[str(name)] = CSV_READ_TYPES[self.schema[lower]["columnType"]]
        if types:
            struct = ", ".join(f"{lit(k)}: {lit(v)}" for k, v in types.items())
            base += f", types = {{{struct}}}"
        return f"read_csv({lit(str(utf8))}, {base})"

    def describe(self, source: str) -> list[tuple[str, str]]:
        rows = self.cur.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    # mapping -------------------------------------------------------------------------------------------
    def targets(self, columns: list[tuple[str, str]], existing: dict[str, tuple[str, str]]) -> list[Target]:
        result = []
        for name, src_type in columns:
            lower = name.lower()
            declared = self.schema.get(lower, {})
            celonis_type = declared.get("columnType")
            if celonis_type:
                duck_type = CELONIS_TO_DUCKDB[celonis_type]
            elif lower in existing:
                duck_type = existing[lower][1]
            elif lower in self.csv_extra:
                duck_type = "TIMESTAMP_MS" if self.csv_extra[lower].get("dateFormat") else "DOUBLE"
            else:
                duck_type = infer_type(src_type, name)
            stored = existing.get(lower, (declared.get("columnName") or name, ""))[0]
            length = declared.get("fieldLength") or self.fallback
            result.append(Target(name, stored, duck_type, celonis_type, length))
        return result

    def column_expr(self, t: Target, src_type: str) -> str:
        """The SQL turning chunk column ``t.source`` into the table's type, length and value range."""
        expr = q(t.source)
        extra = self.csv_extra.get(t.source.lower())
        if extra is not None:
            expr = self._csv_extra_expr(expr, extra)
            src_type = "TIMESTAMP" if extra.get("dateFormat") else "DOUBLE"
        if "TIME ZONE" in src_type.upper():
            expr = f"CAST({expr} AS TIMESTAMP)"
        if t.duck_type == "VARCHAR":
            return f"left(CAST({expr} AS VARCHAR), {int(t.length)})"
        if t.duck_type == "TIMESTAMP_MS":
            cast = f"CAST(date_trunc('millisecond', CAST({expr} AS TIMESTAMP)) AS TIMESTAMP_MS)"  # truncate
            # Celonis keeps dates between the years 1400 and 9999 and turns the rest into NULL.
            return f"CASE WHEN year({cast}) BETWEEN 1400 AND 9999 THEN {cast} END"
        if src_type.upper() == t.duck_type.upper():
            return expr
        return f"CAST({expr} AS {t.duck_type})"

    @staticmethod
    def _csv_extra_expr(expr: str, extra: dict[str, Any]) -> str:
        """Per-column CSV overrides (``additionalColumnOptions``), applied to the raw text."""
        if extra.get("dateFormat"):
            return f"strptime({expr}, {lit(java_to_strptime(str(extra['dateFormat'])))})"
        thousands = extra.get("thousandsSeparator") or extra.get("thousandSeparator")
        if thousands:
            expr = f"replace({expr}, {lit(str(thousands))}, '')"
        if extra.get("decimalSeparator"):
            expr = f"replace({expr}, {lit(str(extra['decimalSeparator']))}, '.')"
        return f"CAST({expr} AS DOUBLE)"

    def typed_select(
        self, source: str, number: int, only: list[str] | None = None
    ) -> tuple[str, list[Target]]:
        """``SELECT <typed columns> FROM source`` plus the targets; checks that the keys are present."""
        columns = self.describe(source)
        present = {n.lower() for n, _ in columns}
        for key in self.keys:
            if key.lower() not in present:
                raise JobFailed(
                    f"Internal error while validating the {self.fmt}: key column '{key}' not found in chunk {number}"
                )
        if only is not None:
            wanted = {k.lower() for k in only}
            columns = [c for c in columns if c[0].lower() in wanted]
        existing = self.table_columns() if self.table else {}
        targets = self.targets(columns, existing)
        src_types = dict(columns)
        exprs = [f"{self.column_expr(t, src_types[t.source])} AS {q(t.name)}" for t in targets]
        return f"SELECT {', '.join(exprs)} FROM {source}", targets

    def run_checked(self, sql: str, source: str, targets: list[Target], number: int) -> None:
        """Run a statement; on a conversion failure, name the column whose values do not fit."""
        try:
            self.cur.execute(sql)
        except duckdb.InterruptException:
            raise
        except duckdb.Error as exc:
            raise JobFailed(self.explain(exc, source, targets, number)) from exc

    def explain(self, exc: duckdb.Error, source: str, targets: list[Target], number: int) -> str:
        prefix = f"Internal error while validating the {self.fmt}"
        found = _CSV_COLUMN_RE.search(str(exc))
        if found:
            detail = next(line for line in str(exc).splitlines() if _CSV_COLUMN_RE.search(line))
            return f"{prefix}: value in column '{found.group(1)}' of chunk {number} does not fit: {detail}"
        probe = self.cur.cursor()  # the failed statement aborted our transaction; the file is still readable
        for t in targets:
            if t.duck_type == "VARCHAR":
                continue
            try:
                row = probe.execute(
                    f"SELECT {q(t.source)} FROM {source} WHERE {q(t.source)} IS NOT NULL "
                    f"AND TRY_CAST({q(t.source)} AS {t.duck_type}) IS NULL LIMIT 1"
                ).fetchone()
            except duckdb.Error:
                row = None
            if row is not None:
                probe.close()
                kind = t.celonis_type or t.duck_type
                return f"{prefix}: value {row[0]!r} in column '{t.name}' of chunk {number} does not fit type {kind}"
        probe.close()
        return f"{prefix}: chunk {number}: {str(exc).splitlines()[0]}"

    # writing ---------------------------------------------------------------------------------------------
    def add_missing_columns(self, targets: list[Target]) -> None:
        existing = self.table_columns()
        for t in targets:
            if t.name.lower() not in existing:
                self.cur.execute(f"ALTER TABLE {self.qualified} ADD COLUMN {q(t.name)} {t.duck_type}")

    def upsert(self, source: str, number: int) -> int:
        select, targets = self.typed_select(source, number)
        if not self.keys:
            if self.table is None:
                self.table = self.job["targetName"]
                self.run_checked(f"CREATE TABLE {self.qualified} AS {select}", source, targets, number)
                return self.count(self.qualified)
            before = self.count(self.qualified)
            self.add_missing_columns(targets)
            self.run_checked(f"INSERT INTO {self.qualified} BY NAME {select}", source, targets, number)
            return self.count(self.qualified) - before
        self.run_checked(f"CREATE OR REPLACE TEMP TABLE __stage AS {select}", source, targets, number)
        keys = [self._target_name(targets, k) for k in self.keys]
        order = "rowid DESC"
        dedup = self._target_name(targets, self.dedup) if self.dedup else None
        if dedup:
            order = f"{q(dedup)} DESC NULLS LAST, rowid DESC"
        part = ", ".join(q(k) for k in keys)
        self.cur.execute(
            "CREATE OR REPLACE TEMP TABLE __chunk AS SELECT * EXCLUDE (__rn) FROM ("
            f"SELECT *, row_number() OVER (PARTITION BY {part} ORDER BY {order}) AS __rn FROM __stage"
            ") WHERE __rn = 1"
        )
        if self.table is None:
            self.table = self.job["targetName"]
            self.cur.execute(f"CREATE TABLE {self.qualified} AS SELECT * FROM __chunk")
        else:
            self.add_missing_columns(targets)
            self.merge(targets, keys, dedup)
        count = self.cur.execute("SELECT count(*) FROM __chunk").fetchone()
        self.cur.execute("DROP TABLE __stage; DROP TABLE __chunk")
        return int(count[0]) if count else 0

    def merge(self, targets: list[Target], keys: list[str], dedup: str | None) -> None:
        """Update matching rows, insert the rest; absent columns keep or lose values per upsertStrategy."""
        match = " AND ".join(f"t.{q(k)} IS NOT DISTINCT FROM s.{q(k)}" for k in keys)
        key_set = {k.lower() for k in keys}
        sets = [f"{q(t.name)} = s.{q(t.name)}" for t in targets if t.name.lower() not in key_set]
        if self.job.get("upsertStrategy") == "UPSERT_WITH_NULLIFICATION":
            given = {t.name.lower() for t in targets}
            sets += [
                f"{q(name)} = NULL" for lower, (name, _) in self.table_columns().items() if lower not in given
            ]
        condition = match
        if dedup:
            condition += f" AND (t.{q(dedup)} IS NULL OR s.{q(dedup)} >= t.{q(dedup)})"
        if sets:
            self.cur.execute(
                f"UPDATE {self.qualified} AS t SET {', '.join(sets)} FROM __chunk AS s WHERE {condition}"
            )
        self.cur.execute(
            f"INSERT INTO {self.qualified} BY NAME SELECT s.* FROM __chunk AS s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {self.qualified} AS t WHERE {match})"
        )

    def delete(self, source: str, number: int) -> int:
        if not self.keys:
            raise JobFailed(f"chunk {number} deletes rows but the job defines no keys")
        select, targets = self.typed_select(source, number, only=self.keys)
        if self.table is None:
            return 0
        keys = [self._target_name(targets, k) for k in self.keys]
        self.run_checked(f"CREATE OR REPLACE TEMP TABLE __delete AS {select}", source, targets, number)
        match = " AND ".join(f"t.{q(k)} IS NOT DISTINCT FROM s.{q(k)}" for k in keys)
        before = self.count(self.qualified)
        self.cur.execute(f"DELETE FROM {self.qualified} AS t USING __delete AS s WHERE {match}")
        self.cur.execute("DROP TABLE __delete")
        return before - self.count(self.qualified)

    def count(self, source: str) -> int:
        row = self.cur.execute(f"SELECT count(*) FROM {source}").fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _target_name(targets: list[Target], column: str) -> str:
        for t in targets:
            if t.name.lower() == column.lower() or t.source.lower() == column.lower():
                return t.name
        raise JobFailed(f"column '{column}' not found in the chunk")
