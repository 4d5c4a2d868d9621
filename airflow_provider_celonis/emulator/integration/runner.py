"""The thread that runs data job executions and data model loads with DuckDB, one at a time, first in first out.

A transformation's statements run one by one in the pool's schema, each committed on its own (as DDL commits
on Celonis' Vertica): a failing statement fails its task and leaves the earlier statements' effects. A load
copies the model's pool tables into the model's snapshot schema in one transaction: all or nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

import duckdb

from ..settings import EmulatorSettings
from ..storage import Tables, find_table, lit, q
from .records import (
    COMPLETE,
    FAIL,
    LOAD_ERROR,
    LOAD_RUNNING,
    LOAD_SUCCESS,
    LOAD_WARNING,
    PARTIAL,
    QUEUED,
    RUNNING,
    SKIPPED,
    SUCCESS,
    Execution,
    Load,
    Registry,
    now_ms,
)

log = logging.getLogger(__name__)
POLL = 0.05


def snapshot_schema(pool_id: str, model_id: str) -> str:
    """The DuckDB schema holding a data model's loaded tables (``:`` never occurs in a pool id)."""
    return f"datamodel:{pool_id}:{model_id}"


class Runner:
    """Executions and loads in submission order; cancel interrupts the statement running for an execution."""

    def __init__(self, registry: Registry, tables: Tables, settings: EmulatorSettings) -> None:
        self._registry = registry
        self._tables = tables
        self._settings = settings
        self._queue: queue.Queue[Execution | Load | None] = queue.Queue()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._current: Execution | Load | None = None
        self._cursor: duckdb.DuckDBPyConnection | None = None
        self._thread = threading.Thread(target=self._loop, name="celonis-emulator-integration", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, item: Execution | Load) -> None:
        self._queue.put(item)

    def interrupt(self, item: Execution | Load) -> None:
        """Stop the statement running for ``item`` (its status is already set by the caller).

        A statement that starts just after an interrupt would not see it, so this keeps interrupting (in a
        thread of its own) until the runner has left ``item``.
        """
        threading.Thread(target=self._interrupt_until_done, args=(item,), daemon=True).start()

    def _interrupt_until_done(self, item: Execution | Load) -> None:
        while not self._stopping.is_set():
            with self._lock:
                if self._current is not item:
                    return
                if self._cursor is not None:
                    self._cursor.interrupt()
            self._stopping.wait(POLL)

    def stop(self) -> None:
        """End the thread, interrupting whatever statement it runs (the item stays in progress)."""
        self._stopping.set()
        self._queue.put(None)
        deadline = time.monotonic() + 30
        while self._thread.is_alive() and time.monotonic() < deadline:
            with self._lock:
                if self._cursor is not None:
                    self._cursor.interrupt()
            self._thread.join(POLL)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            item = self._queue.get()
            if item is None:
                break
            with self._lock:
                self._current = item
            try:
                if isinstance(item, Execution):
                    self._run_execution(item)
                else:
                    self._run_load(item)
            except Exception:  # the runner must survive anything an execution or a load does
                log.exception("integration item %s crashed the runner step", item.id)
            finally:
                with self._lock:
                    self._current = None

    def _wait(self, started: float, still: Callable[[], bool]) -> bool:
        """Let the item stay in progress for the configured duration; False when it was canceled or we stop."""
        deadline = started + self._settings.integration_duration
        while (left := deadline - time.monotonic()) > 0 and not self._stopping.is_set():
            with self._registry.lock:
                if not still():
                    return False
            self._stopping.wait(min(left, POLL))
        with self._registry.lock:
            return not self._stopping.is_set() and still()

    # executions -----------------------------------------------------------------------------------------
    def _run_execution(self, ex: Execution) -> None:
        reg = self._registry
        with reg.lock:
            if ex.status != QUEUED:  # canceled while queued
                return
            ex.set_status(RUNNING)
        if not self._wait(ex.start_mono, lambda: ex.status == RUNNING):
            return
        for index, run in enumerate(ex.tasks):
            with reg.lock:
                if ex.status != RUNNING:
                    return
                run.status, run.start = RUNNING, now_ms()
            count, error = self._transform(ex.pool_id, run.task.sql)
            with reg.lock:
                if ex.status != RUNNING or self._stopping.is_set():  # canceled (statuses set) or stopping
                    return
                if error is not None:
                    run.finish(FAIL, "ERROR", error)
                    for later in ex.tasks[index + 1 :]:
                        later.finish(SKIPPED)
                    ex.set_status(FAIL)
                    return
                run.finish(SUCCESS, "INFO", f"{count} statement(s) executed")
        self._finish_execution(ex)

    def _finish_execution(self, ex: Execution) -> None:
        """The execution's data model loads run as its last steps: the job stays RUNNING until they end, and
        a load ending ERROR or CANCELED fails the job (a data job's load step is part of its execution)."""
        with self._registry.lock:
            if ex.status != RUNNING:
                return
            loads = [
                Load(
                    ex.pool_id,
                    req.model,
                    PARTIAL if req.partial else COMPLETE,
                    req.tables,
                    execution_id=ex.id,
                )
                for req in ex.loads
            ]
            for load in loads:
                self._registry.model_loads(ex.pool_id, load.model.id).append(load)
                ex.load_ids.append(load.id)
        for load in loads:
            self._run_load(load)
        with self._registry.lock:
            if ex.status != RUNNING or self._stopping.is_set():
                return
            failed = any(load.status not in (LOAD_SUCCESS, LOAD_WARNING) for load in loads)
            ex.set_status(FAIL if failed else SUCCESS)

    def _transform(self, pool_id: str, sql: str) -> tuple[int, str | None]:
        """Run one task's statements; (statements run, DuckDB's error or None)."""
        cur = self._tables.cursor()
        with self._lock:
            self._cursor = cur
        try:
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {q(pool_id)}")
            cur.execute(f"SET schema = {lit(pool_id)}")
            statements = duckdb.extract_statements(sql)
            for number, statement in enumerate(statements, start=1):
                try:
                    cur.execute(statement.query)
                except duckdb.Error as exc:
                    return number - 1, f"Statement {number} of {len(statements)} failed: {exc}"
            return len(statements), None
        except duckdb.Error as exc:  # the SQL does not parse, or the schema cannot be used
            return 0, str(exc)
        finally:
            with self._lock:
                self._cursor = None
            cur.close()

    # loads ----------------------------------------------------------------------------------------------
    def _run_load(self, load: Load) -> None:
        reg = self._registry
        if not self._wait(load.start_mono, lambda: load.status == LOAD_RUNNING):
            return
        with reg.lock:
            outcome = reg.take_outcome(load.pool_id, load.model.id)
            if outcome is not None and outcome[0] == LOAD_ERROR:
                load.finish(LOAD_ERROR, outcome[1])
                return
        error = self._snapshot(load)
        with reg.lock:
            if self._stopping.is_set():  # interrupted by the stop: it stays RUNNING
                return
            if error is not None:
                load.finish(LOAD_ERROR, error)
            elif outcome is not None:
                load.finish(LOAD_WARNING, outcome[1])
            else:
                load.finish(LOAD_SUCCESS, None)

    def _snapshot(self, load: Load) -> str | None:
        """Copy the load's pool tables into the model's snapshot schema; an error message or None."""
        schema = q(snapshot_schema(load.pool_id, load.model.id))
        cur = self._tables.cursor()
        with self._lock:
            self._cursor = cur
        try:
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            cur.begin()
            try:
                missing = self._copy_tables(cur, load, schema)
            except BaseException:
                cur.rollback()
                raise
            if missing is not None:
                cur.rollback()
                return (
                    f"Table '{missing}' of data model '{load.model.name}' does not exist "
                    f"in data pool '{load.pool_id}'"
                )
            cur.commit()
            return None
        except duckdb.Error as exc:
            return f"Loading data model '{load.model.name}' failed: {exc}"
        finally:
            with self._lock:
                self._cursor = None
            cur.close()

    @staticmethod
    def _copy_tables(cur: duckdb.DuckDBPyConnection, load: Load, schema: str) -> str | None:
        """Copy each table; the name of the first one missing from the pool (then nothing is kept), or None."""
        for table in load.tables:
            stored = find_table(cur, load.pool_id, table.name)
            if stored is None:
                return table.name
            cur.execute(
                f"CREATE OR REPLACE TABLE {schema}.{q(table.name)} AS SELECT * FROM {q(load.pool_id)}.{q(stored)}"
            )
        return None
