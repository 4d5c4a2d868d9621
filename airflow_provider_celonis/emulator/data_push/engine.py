"""Applying a job's chunks to the pool's tables, in upload order, in one DuckDB transaction.

A job that fails leaves the table exactly as it was (ERROR is atomic).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from ..settings import EmulatorSettings
from ..storage import Tables, find_table, key_match, q
from .columns import ChunkMapping, JobAborted, JobFailed, Target

__all__ = ["Engine", "JobAborted", "JobFailed"]


class Engine:
    """Runs jobs against the shared :class:`Tables`; ``apply_job`` is called by the single worker thread."""

    def __init__(self, tables: Tables, settings: EmulatorSettings) -> None:
        self.tables = tables
        self.settings = settings

    def interrupt(self) -> None:
        self.tables.interrupt()

    def apply_job(
        self,
        job: dict[str, Any],
        chunks: list[dict[str, Any]],
        dedup_column: str | None,
        should_abort: Callable[[], bool],
    ) -> list[str]:
        """Apply all chunks in upload order in one transaction; returns log lines, raises JobFailed."""
        cur = self.tables.cursor()
        self.tables.set_active(cur)
        try:
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {q(job['dataPoolId'])}")
            cur.begin()
            try:
                run = _JobRun(cur, job, dedup_column, self.settings, self.tables.tmp_dir)
                logs = run.run(chunks, should_abort)
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
            self.tables.set_active(None)
            cur.close()


class _JobRun(ChunkMapping):
    """One job execution: drop (REPLACE), then upsert or delete chunk by chunk."""

    def __init__(
        self,
        cur: duckdb.DuckDBPyConnection,
        job: dict[str, Any],
        dedup: str | None,
        settings: EmulatorSettings,
        tmp_dir: Path,
    ) -> None:
        super().__init__(cur, job, settings, tmp_dir)
        self.dedup = dedup
        self.table = find_table(cur, self.pool, job["targetName"])

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
        match = key_match(keys)
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
        match = key_match(keys)
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
