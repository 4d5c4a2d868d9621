"""How a chunk's columns map onto the target table: reading the file, types, lengths, conversion errors.

Parquet is read in place with ``read_parquet`` and CSV with ``read_csv``; nothing is loaded into Python.
CSV follows the PostgreSQL ``COPY ... CSV`` convention (as DuckDB and Spark do): an unquoted empty field is
NULL, a quoted ``""`` is an empty string, in every column type; a UTF-8 byte-order mark and CRLF work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from ..settings import EmulatorSettings
from ..storage import NAME_RULE, UnsupportedType, infer_type, lit, q, table_columns, valid_name
from .csv_options import ensure_utf8, java_to_strptime, ragged_record, read_csv_options
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
_CSV_COLUMN_RE = re.compile(r'Error when converting column "([^"]+)"')


class JobFailed(Exception):
    """The job ends in ERROR; the message becomes its log line."""


class JobAborted(Exception):
    """The job was canceled or the emulator is stopping; nothing is committed."""


@dataclass
class Target:
    """The column a chunk column lands in."""

    source: str  # name in the chunk
    name: str  # name in the table
    duck_type: str
    celonis_type: str | None
    length: int


class ChunkMapping:
    """The target table of one job and how each of its chunks maps onto it."""

    def __init__(
        self, cur: duckdb.DuckDBPyConnection, job: dict[str, Any], settings: EmulatorSettings, tmp_dir: Path
    ) -> None:
        self.cur = cur
        self.job = job
        self.settings = settings
        self.pool = job["dataPoolId"]
        self.fmt = "CSV" if job["fileType"] == "CSV" else "Parquet"
        self.keys = job_keys(job)
        self.fallback = job.get("fallbackVarcharLength") or DEFAULT_VARCHAR_LENGTH
        self.schema = {c["columnName"].lower(): c for c in (job.get("tableSchema") or {}).get("columns", [])}
        self.csv_extra = {
            str(o.get("columnName", "")).lower(): o
            for o in (job.get("csvParsingOptions") or {}).get("additionalColumnOptions", [])
        }
        self.tmp_dir = tmp_dir
        self.table: str | None = None
        self._reading: tuple[Path, Path] | None = None

    @property
    def qualified(self) -> str:
        assert self.table is not None
        return f"{q(self.pool)}.{q(self.table)}"

    def table_columns(self) -> dict[str, tuple[str, str]]:
        """lower name -> (stored name, type) of the target table."""
        return table_columns(self.cur, self.pool, self.table)

    def failed(self, detail: str) -> JobFailed:
        return JobFailed(f"Internal error while validating the {self.fmt}: {detail}")

    # reading -----------------------------------------------------------------------------------------
    def source_sql(self, chunk: dict[str, Any], number: int, work: Path) -> str:
        """A FROM-able expression reading the chunk file."""
        path = Path(chunk["path"])
        self._reading = (path, work)  # for ``explain``: a record found ragged while the rows are read
        try:
            if self.fmt == "Parquet":
                source = f"read_parquet({lit(str(path))})"
                self.cur.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
                return source
            return self.csv_source(path, work)
        except duckdb.Error as exc:
            ragged = self.fmt == "CSV" and self._ragged(path, work)
            raise self.failed(f"chunk {number} is unreadable: {ragged or exc}") from exc

    def _ragged(self, path: Path, work: Path) -> str | None:
        options = self.job.get("csvParsingOptions") or {}
        try:
            return ragged_record(ensure_utf8(path, options.get("charSet"), work), read_csv_options(options))
        except (ValueError, UnicodeDecodeError, OSError):
            return None

    def csv_source(self, path: Path, work: Path) -> str:
        options = self.job.get("csvParsingOptions") or {}
        try:
            utf8 = ensure_utf8(path, options.get("charSet"), work)
        except (ValueError, UnicodeDecodeError) as exc:
            raise self.failed(str(exc)) from exc
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
                try:
                    duck_type = infer_type(src_type, name)
                except UnsupportedType as exc:
                    raise JobFailed(str(exc)) from exc
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
        if t.duck_type == "BIGINT" and self.settings.documented:
            return self._exact_integer(expr, src_type, t)
        return f"CAST({expr} AS {t.duck_type})"

    @staticmethod
    def _exact_integer(expr: str, src_type: str, t: Target) -> str:
        """An INTEGER column takes only the values it holds as they are. A bare CAST would round ``2.5`` to 3
        and read ``'007'`` as 7; the docs say nothing of either, so the documented profile fails the job,
        naming the value and the column (``lenient`` casts)."""
        exact = f"CAST({expr} AS BIGINT)"
        upper = src_type.upper()
        if upper in ("VARCHAR", "TEXT", "STRING"):
            lost = f"CAST({exact} AS VARCHAR) <> {expr}"
        elif upper in ("DOUBLE", "FLOAT", "REAL") or upper.startswith("DECIMAL"):
            lost = f"{exact} <> {expr}"
        else:
            return exact
        message = lit(f" in column '{t.name}' does not fit type INTEGER exactly")
        return (
            f"CASE WHEN {lost} THEN error('value ' || CAST({expr} AS VARCHAR) || {message}) ELSE {exact} END"
        )

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
        if self.settings.documented:  # the same rule for parquet and CSV, as for names in the job
            for name, _ in columns:
                if not valid_name(name):
                    raise self.failed(f"column name {name!r} in chunk {number} is not valid: {NAME_RULE}")
        present = {n.lower() for n, _ in columns}
        for key in self.keys:
            if key.lower() not in present:
                raise self.failed(f"key column '{key}' not found in chunk {number}")
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
        ragged = self.fmt == "CSV" and self._reading is not None and self._ragged(*self._reading)
        return f"{prefix}: chunk {number}: {ragged or str(exc).splitlines()[0]}"
