"""The Standard Data Ingestion side of the emulator: files are applied per table, first in, first out.

Each uploaded parquet file becomes one queue entry; a single background thread applies them in arrival
order as delta loads by primary key, one DuckDB transaction per file (a failing file changes nothing and
is recorded with the error type Celonis shows on the connection's monitoring page). Nested columns are
unnested on the fly into child tables ``<table>_<field>`` that carry the parent's primary key as
``<table>_<pk>``; the children of every parent row a file replaces are replaced with it.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from .engine import Engine, JobFailed, find_table, infer_type, lit, q
from .settings import EmulatorSettings, IngestionTableSpec

log = logging.getLogger(__name__)

PK_NOT_FOUND = "PK NOT FOUND IN INPUT FILE"
AGE_NOT_FOUND = "AGE COLUMN NOT FOUND IN INPUT FILE"
SCHEMA_MISMATCH = "DATAPOOL SCHEMA MISMATCH"
INTERNAL = "INTERNAL ERROR"
_STOP = None


class IngestionFailure(Exception):
    """A file that cannot be applied; ``error_type`` is one of Celonis' monitoring error types."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def parquet_problem(path: Path) -> str | None:
    """Why a file is not an uncompressed parquet file (read from its footer), or None when it is."""
    try:
        meta = pq.ParquetFile(path).metadata
    except Exception as exc:
        return f"the object is not a readable parquet file: {exc}"
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            codec = group.column(c).compression
            if codec != "UNCOMPRESSED":
                return (
                    f"only uncompressed parquet files are accepted; column "
                    f"'{group.column(c).path_in_schema}' is compressed with {codec}"
                )
    return None


@dataclass
class IngestionFile:
    """One uploaded object waiting to be applied."""

    seq: int
    key: str
    path: Path
    connection_id: str
    pool_id: str
    table: str
    primary_keys: tuple[str, ...]
    age_column: str | None
    received: str
    status: str = "PENDING"
    rows: int = 0
    message: str = ""

    def public(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "key": self.key,
            "connectionId": self.connection_id,
            "poolId": self.pool_id,
            "table": self.table,
            "primaryKeys": list(self.primary_keys),
            "ageColumn": self.age_column,
            "received": self.received,
            "status": self.status,
            "rows": self.rows,
            "message": self.message,
        }


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def _is_nested(duck_type: str) -> bool:
    t = duck_type.upper()
    return t.endswith("]") or t.startswith(("STRUCT", "MAP", "UNION"))


class IngestionWorker:
    """The FIFO queue of uploaded files and the thread that applies them; errors are kept for the API."""

    def __init__(self, settings: EmulatorSettings, engine: Engine) -> None:
        self._settings = settings
        self._engine = engine
        self._queue: queue.Queue[IngestionFile | None] = queue.Queue()
        self._lock = threading.Lock()
        self._files: list[IngestionFile] = []
        self._errors: list[dict[str, Any]] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="celonis-emulator-ingestion", daemon=True)
        #: Called with a file's path once it was applied (the object store frees overwritten files).
        self.on_applied: Callable[[Path], None] | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._queue.put(_STOP)
        self._thread.join(timeout=30)

    def table_spec(self, connection_id: str, table: str) -> IngestionTableSpec | None:
        """The table configured on the connection (``--ingestion-table``), matched case-insensitively."""
        return next(
            (
                t
                for t in self._settings.ingestion_tables
                if t.connection_id == connection_id and t.table.lower() == table.lower()
            ),
            None,
        )

    def submit(
        self,
        key: str,
        path: Path,
        connection_id: str,
        pool_id: str,
        table: str,
        metadata: dict[str, str],
    ) -> IngestionFile:
        """Queue a received object; a configured table wins over keys declared in object metadata."""
        spec = self.table_spec(connection_id, table)
        if spec is not None:
            keys, age = spec.primary_keys, spec.age_column
        else:
            keys = tuple(k.strip() for k in metadata.get("primary-keys", "").split(",") if k.strip())
            age = metadata.get("age-column", "").strip() or None
        with self._lock:
            item = IngestionFile(
                len(self._files) + 1, key, path, connection_id, pool_id, table, keys, age, now_iso()
            )
            self._files.append(item)
        self._queue.put(item)
        return item

    def in_use(self, path: Path) -> bool:
        """Whether a queued file still needs ``path`` (overwritten objects are deleted after applying)."""
        with self._lock:
            return any(f.path == path and f.status == "PENDING" for f in self._files)

    def status(self) -> dict[str, Any]:
        with self._lock:
            counts = {s: sum(f.status == s for f in self._files) for s in ("PENDING", "DONE", "FAILED")}
            return {
                "pending": counts["PENDING"],
                "processed": counts["DONE"],
                "failed": counts["FAILED"],
                "files": [f.public() for f in self._files],
            }

    def errors(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._errors)

    def pools(self) -> set[str]:
        with self._lock:
            return {f.pool_id for f in self._files}

    def _loop(self) -> None:
        while not self._stopping.is_set():
            item = self._queue.get()
            if item is None:
                break
            try:
                rows = self._apply(item)
                outcome, message = "DONE", f"{rows} rows applied"
            except IngestionFailure as exc:
                outcome, message = "FAILED", exc.message
                self._record(item, exc.error_type, exc.message)
            except Exception as exc:  # the worker must survive anything a file does
                log.exception("ingestion of %s failed unexpectedly", item.key)
                outcome, message = "FAILED", str(exc)
                self._record(item, INTERNAL, str(exc))
            with self._lock:
                item.status, item.message = outcome, message
                item.rows = rows if outcome == "DONE" else 0
            self._on_applied(item)

    def _on_applied(self, item: IngestionFile) -> None:
        if self.on_applied is not None:
            self.on_applied(item.path)

    def _record(self, item: IngestionFile, error_type: str, message: str) -> None:
        with self._lock:
            self._errors.append(
                {
                    "time": now_iso(),
                    "connectionId": item.connection_id,
                    "poolId": item.pool_id,
                    "table": item.table,
                    "file": item.key,
                    "errorType": error_type,
                    "message": message,
                }
            )

    def _apply(self, item: IngestionFile) -> int:
        cur = self._engine.cursor()
        try:
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {q(item.pool_id)}")
            cur.begin()
            try:
                rows = _FileLoad(cur, item).run()
                cur.commit()
                return rows
            except BaseException:
                cur.rollback()
                raise
        finally:
            cur.close()


@dataclass
class _Column:
    name: str
    duck_type: str


@dataclass
class _FileLoad:
    """Applying one file: the parent table by primary key, then its child tables."""

    cur: duckdb.DuckDBPyConnection
    item: IngestionFile
    keys: list[str] = field(default_factory=list)

    def run(self) -> int:
        source = f"read_parquet({lit(str(self.item.path))})"
        columns = [
            _Column(str(r[0]), str(r[1]))
            for r in self.cur.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        ]
        names = {c.name.lower(): c.name for c in columns}
        for key in self.item.primary_keys:
            if key.lower() not in names:
                raise IngestionFailure(PK_NOT_FOUND, f"primary key column '{key}' is not in the file")
        self.keys = [names[k.lower()] for k in self.item.primary_keys]
        age = self.item.age_column
        if age is not None and age.lower() not in names:
            raise IngestionFailure(AGE_NOT_FOUND, f"age column '{age}' is not in the file")
        age = names[age.lower()] if age else None
        if self.keys:
            nulls = " OR ".join(f"{q(k)} IS NULL" for k in self.keys)
            missing = self._scalar(f"SELECT count(*) FROM {source} WHERE {nulls}")
            if missing:
                raise IngestionFailure(PK_NOT_FOUND, f"{missing} rows have no value for the primary key")
        order = (f"{q(age)} DESC NULLS LAST, " if age else "") + "__pos DESC"
        self.cur.execute(
            f"CREATE OR REPLACE TEMP TABLE __ing_stage AS SELECT *, row_number() OVER () AS __pos FROM {source}"
        )
        if self.keys:  # duplicates within a file: the highest age wins, else the last row
            part = ", ".join(q(k) for k in self.keys)
            self.cur.execute(
                "CREATE OR REPLACE TEMP TABLE __ing_stage AS SELECT * EXCLUDE (__rn) FROM (SELECT *, "
                f"row_number() OVER (PARTITION BY {part} ORDER BY {order}) AS __rn FROM __ing_stage) WHERE __rn = 1"
            )
        flat = [c for c in columns if not _is_nested(c.duck_type)]
        nested = [c for c in columns if _is_nested(c.duck_type)]
        table = self.item.table
        exprs = self._typed(table, flat, "__ing_stage")
        raw = [q(c.name) for c in nested]
        self.cur.execute(
            f"CREATE OR REPLACE TEMP TABLE __ing_rows AS SELECT {', '.join([*exprs, *raw])} FROM __ing_stage"
        )
        winners = "__ing_rows"
        stored = find_table(self.cur, self.item.pool_id, table)
        if self.keys and stored is not None:
            self._add_columns(stored, flat, "__ing_rows")
            match = " AND ".join(f"t.{q(k)} IS NOT DISTINCT FROM s.{q(k)}" for k in self.keys)
            if age:  # a stored row with a higher age is newer: the file's row loses
                newer = f"t.{q(age)} IS NOT NULL AND (s.{q(age)} IS NULL OR s.{q(age)} < t.{q(age)})"
                self.cur.execute(
                    "CREATE OR REPLACE TEMP TABLE __ing_win AS SELECT * FROM __ing_rows AS s WHERE NOT EXISTS "
                    f"(SELECT 1 FROM {self._qualified(stored)} AS t WHERE {match} AND {newer})"
                )
                winners = "__ing_win"
            sets = [f"{q(c.name)} = s.{q(c.name)}" for c in flat if c.name not in self.keys]
            if sets:
                self.cur.execute(
                    f"UPDATE {self._qualified(stored)} AS t SET {', '.join(sets)} FROM {winners} AS s WHERE {match}"
                )
        self._insert(table, flat, winners, only_new=bool(self.keys))
        count = self._scalar(f"SELECT count(*) FROM {winners}")
        for column in nested:
            self._child(column, winners)
        return count

    # helpers -------------------------------------------------------------------------------------------
    def _scalar(self, sql: str) -> int:
        row = self.cur.execute(sql).fetchone()
        return int(row[0]) if row else 0

    def _qualified(self, table: str) -> str:
        return f"{q(self.item.pool_id)}.{q(table)}"

    def _existing(self, table: str) -> dict[str, tuple[str, str]]:
        stored = find_table(self.cur, self.item.pool_id, table)
        if stored is None:
            return {}
        rows = self.cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ?",
            [self.item.pool_id, stored],
        ).fetchall()
        return {str(n).lower(): (str(n), str(t)) for n, t in rows}

    def _typed(self, table: str, columns: Sequence[_Column], source: str) -> list[str]:
        """Each column cast to the pool's type for it; values that do not fit are a schema mismatch."""
        existing = self._existing(table)
        exprs = []
        for c in columns:
            if _is_nested(c.duck_type):  # deeper than one level: kept as JSON text
                exprs.append(f"CAST(to_json({q(c.name)}) AS VARCHAR) AS {q(c.name)}")
                continue
            if c.name.lower() in existing:
                target = existing[c.name.lower()][1]
            else:
                try:
                    target = infer_type(c.duck_type, c.name)
                except JobFailed as exc:
                    raise IngestionFailure(SCHEMA_MISMATCH, str(exc)) from exc
            expr = q(c.name)
            if "TIME ZONE" in c.duck_type.upper():
                expr = f"CAST({expr} AS TIMESTAMP)"
            if target.upper() != c.duck_type.upper():
                bad = self.cur.execute(
                    f"SELECT {q(c.name)} FROM {source} WHERE {q(c.name)} IS NOT NULL "
                    f"AND TRY_CAST({expr} AS {target}) IS NULL LIMIT 1"
                ).fetchone()
                if bad is not None:
                    raise IngestionFailure(
                        SCHEMA_MISMATCH,
                        f"column '{c.name}' of table '{table}' is {target} in the data pool, but the file "
                        f"has {c.duck_type} values such as {bad[0]!r}",
                    )
                expr = f"CAST({expr} AS {target})"
            exprs.append(f"{expr} AS {q(c.name)}")
        return exprs

    def _add_columns(self, stored: str, columns: Sequence[_Column], source: str) -> None:
        existing = self._existing(stored)
        described = self.cur.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        types = {str(r[0]): str(r[1]) for r in described}
        for c in columns:
            if c.name.lower() not in existing:
                self.cur.execute(
                    f"ALTER TABLE {self._qualified(stored)} ADD COLUMN {q(c.name)} {types[c.name]}"
                )

    def _insert(self, table: str, flat: Sequence[_Column], source: str, only_new: bool) -> None:
        cols = ", ".join(f"s.{q(c.name)}" for c in flat)
        stored = find_table(self.cur, self.item.pool_id, table)
        if stored is None:
            self.cur.execute(f"CREATE TABLE {self._qualified(table)} AS SELECT {cols} FROM {source} AS s")
            return
        self._add_columns(stored, flat, source)
        where = ""
        if only_new:
            match = " AND ".join(f"t.{q(k)} IS NOT DISTINCT FROM s.{q(k)}" for k in self.keys)
            where = f" WHERE NOT EXISTS (SELECT 1 FROM {self._qualified(stored)} AS t WHERE {match})"
        self.cur.execute(
            f"INSERT INTO {self._qualified(stored)} BY NAME SELECT {cols} FROM {source} AS s{where}"
        )

    def _child(self, column: _Column, winners: str) -> None:
        """Unnest one nested column of the winning parent rows into ``<table>_<column>``."""
        table = f"{self.item.table}_{column.name}"
        fks = [f"{self.item.table}_{k}" for k in self.keys]
        fk_select = ", ".join(f"{q(k)} AS {q(fk)}" for k, fk in zip(self.keys, fks, strict=True))
        lead = f"{fk_select}, " if fk_select else ""
        t = column.duck_type.upper()
        if t.endswith("]") and t.removesuffix("[]").startswith("STRUCT"):  # a list of objects
            pass_fks = ", ".join(q(fk) for fk in fks)
            inner = (
                f"SELECT {pass_fks + ', ' if fks else ''}UNNEST(__item) FROM "
                f"(SELECT {lead}UNNEST({q(column.name)}) AS __item FROM {winners})"
            )
        elif t.endswith("]"):  # a list of values: one row per value, in a column named after the field
            inner = f"SELECT {lead}UNNEST({q(column.name)}) AS {q(column.name)} FROM {winners}"
        elif t.startswith("STRUCT"):  # a single object: one row per parent
            inner = f"SELECT {lead}UNNEST({q(column.name)}) FROM {winners} WHERE {q(column.name)} IS NOT NULL"
        else:  # MAP / UNION: no table shape of their own
            inner = (
                f"SELECT {lead}CAST(to_json({q(column.name)}) AS VARCHAR) AS {q(column.name)} FROM {winners}"
            )
        self.cur.execute(f"CREATE OR REPLACE TEMP TABLE __ing_child_raw AS {inner}")
        columns = [
            _Column(str(r[0]), str(r[1]))
            for r in self.cur.execute("DESCRIBE SELECT * FROM __ing_child_raw").fetchall()
        ]
        exprs = self._typed(table, columns, "__ing_child_raw")
        self.cur.execute(
            f"CREATE OR REPLACE TEMP TABLE __ing_child AS SELECT {', '.join(exprs)} FROM __ing_child_raw"
        )
        stored = find_table(self.cur, self.item.pool_id, table)
        if stored is not None and fks:  # the children of a replaced parent row are replaced with it
            match = " AND ".join(
                f"c.{q(fk)} IS NOT DISTINCT FROM w.{q(k)}" for k, fk in zip(self.keys, fks, strict=True)
            )
            self.cur.execute(
                f"DELETE FROM {self._qualified(stored)} AS c WHERE EXISTS (SELECT 1 FROM {winners} AS w WHERE {match})"
            )
        self._insert(table, columns, "__ing_child", only_new=False)
