"""The Integration API without HTTP: data jobs, their executions and logs, data model loads, pool tables.

Routes hand it parsed values and get dicts (pycelonis' transports) back, or an :class:`ApiError`. Summary
statuses (a job's ``logs/status`` entry and ``JobTransport`` status, a model's ``currentComputeLoad``) lag:
for ``settings.status_lag`` seconds after an execution or load starts they still show the previous one (see
``docs/emulator.md``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..errors import ApiError, not_found, validation_error
from ..settings import EmulatorSettings
from ..storage import Tables
from . import transports
from .config import DataJob, DataModel, PoolConfig
from .plans import plan
from .pool_data import model_snapshot, pool_columns, pool_exists, pool_tables
from .records import (
    CANCEL,
    COMPLETE,
    FROM_CACHE,
    IN_PROGRESS,
    LOAD_ERROR,
    LOAD_IN_PROGRESS,
    LOAD_WARNING,
    PARTIAL,
    QUEUED,
    RUNNING,
    SKIPPED,
    Execution,
    Load,
    LogMessage,
    Registry,
    visible,
)
from .runner import Runner

DEFAULT_PAGE_SIZE = 20


def conflict(message: str) -> ApiError:
    return ApiError(409, message, short="CONFLICT")


def _page(items: list[Any], limit: int | None, page: int | None) -> tuple[list[Any], int]:
    """One page (0-based) of ``limit`` items (default 20) and the number of pages."""
    size = limit or DEFAULT_PAGE_SIZE
    start = (page or 0) * size
    return items[start : start + size], math.ceil(len(items) / size)


class IntegrationBackend:
    """One per running emulator; ``start``/``stop`` run and end its runner thread."""

    def __init__(self, settings: EmulatorSettings, tables: Tables) -> None:
        self.settings = settings
        self.tables = tables
        self.registry = Registry()
        self._runner: Runner | None = None

    def start(self) -> None:
        self._runner = Runner(self.registry, self.tables, self.settings)
        self._runner.start()

    def stop(self) -> None:
        if self._runner is not None:
            self._runner.stop()

    @property
    def runner(self) -> Runner:
        assert self._runner is not None, "emulator not started"
        return self._runner

    # look-ups ---------------------------------------------------------------------------------------------
    def pool(self, pool_id: str) -> PoolConfig:
        """The pool's configuration; 404 unless it is configured, declared (``--pool``) or holds tables."""
        known = pool_id in self.settings.integration.pools or pool_id in self.settings.pools
        if not known and not pool_exists(self.tables, pool_id):
            raise not_found(f"Data pool {pool_id}")
        return self.settings.integration.pool(pool_id)

    def job(self, pool_id: str, job_id: str) -> DataJob:
        found = self.pool(pool_id).job(job_id)
        if found is None:
            raise not_found(f"Data job {job_id}")
        return found

    def model(self, pool_id: str, model_id: str) -> DataModel:
        found = self.pool(pool_id).model(model_id)
        if found is None:
            raise not_found(f"Data model {model_id}")
        return found

    def _shown(self, pool_id: str, job_id: str) -> Execution | None:
        with self.registry.lock:
            return visible(self.registry.job_executions(pool_id, job_id), self.settings.status_lag)

    # data jobs --------------------------------------------------------------------------------------------
    def jobs(self, pool_id: str) -> list[dict[str, Any]]:
        return [transports.job(pool_id, j, self._shown(pool_id, j.id)) for j in self.pool(pool_id).jobs]

    def job_transport(self, pool_id: str, job_id: str) -> dict[str, Any]:
        return transports.job(pool_id, self.job(pool_id, job_id), self._shown(pool_id, job_id))

    def tasks(self, pool_id: str, job_id: str) -> list[dict[str, Any]]:
        data_job = self.job(pool_id, job_id)
        return [transports.task(pool_id, data_job, i) for i in range(1, len(data_job.transformations) + 1)]

    def model_executions(self, pool_id: str, job_id: str) -> list[dict[str, Any]]:
        data_job, pool = self.job(pool_id, job_id), self.pool(pool_id)
        result = []
        for execution in data_job.model_executions:
            model = pool.model(execution.data_model_id)
            assert model is not None  # checked when the config was read
            result.append(transports.model_execution(data_job, execution, model))
        return result

    def execute(self, pool_id: str, job_id: str, body: Any) -> None:
        """Queue an execution; 400 for a bad configuration, 409 while one of this job is in progress."""
        data_job = self.job(pool_id, job_id)
        tasks, loads = plan(body, pool_id, data_job, self.pool(pool_id))
        with self.registry.lock:
            runs = self.registry.job_executions(pool_id, job_id)
            running = next((e for e in runs if e.status in IN_PROGRESS), None)
            if running is not None:
                raise conflict(
                    f"Data job {job_id} is already {running.status} (execution {running.id}); "
                    "wait for it to end or cancel it"
                )
            execution = Execution(pool_id, data_job, dict(body), tasks, loads)
            runs.append(execution)
        self.runner.submit(execution)

    def cancel(self, pool_id: str, job_id: str) -> None:
        """Cancel the job's execution in progress (the running task CANCEL, the rest SKIPPED); else nothing."""
        self.job(pool_id, job_id)
        with self.registry.lock:
            runs = self.registry.job_executions(pool_id, job_id)
            execution = next((e for e in runs if e.status in IN_PROGRESS), None)
            if execution is None:
                return
            for run in execution.tasks:
                if run.status == RUNNING:
                    run.finish(CANCEL, "WARNING", "Canceled by user")
                elif run.status == QUEUED:
                    run.finish(SKIPPED)
            execution.messages.append(LogMessage("WARNING", "Execution canceled by user"))
            execution.set_status(CANCEL)
        self.runner.interrupt(execution)

    # execution logs ---------------------------------------------------------------------------------------
    def statuses(self, pool_id: str) -> list[dict[str, Any]]:
        return [transports.entity_status(j, self._shown(pool_id, j.id)) for j in self.pool(pool_id).jobs]

    def execution_items(
        self, pool_id: str, job_id: str, limit: int | None, page: int | None
    ) -> dict[str, Any]:
        self.job(pool_id, job_id)
        with self.registry.lock:
            items = [transports.job_item(e) for e in reversed(self.registry.job_executions(pool_id, job_id))]
        shown, pages = _page(items, limit, page)
        return {"executionItems": shown, "numOfPages": pages}

    def _execution(self, pool_id: str, execution_id: str | None) -> Execution:
        self.pool(pool_id)
        found = self.registry.execution(pool_id, execution_id or "")
        if found is None:
            raise not_found(f"Execution {execution_id}")
        return found

    def execution_children(
        self, pool_id: str, execution_id: str | None, kind: str | None, entity_id: str | None
    ) -> list[dict[str, Any]]:
        """The execution's items of type ``kind``: TASK (its tasks) or JOB (itself)."""
        with self.registry.lock:
            execution = self._execution(pool_id, execution_id)
            if entity_id is not None and entity_id != execution.job.id:
                return []
            if kind == "JOB":
                return [transports.job_item(execution)]
            if kind in (None, "TASK"):
                return [transports.task_item(execution, run) for run in execution.tasks]
        raise validation_error("type", f"type must be TASK or JOB, got {kind!r}")

    def log_detail(
        self,
        pool_id: str,
        execution_id: str | None,
        entity_id: str | None,
        kind: str | None,
        limit: int | None,
        page: int | None,
    ) -> dict[str, Any]:
        """The log messages of a task (``type=TASK``, ``id`` = task id) or the job (``type=JOB``)."""
        with self.registry.lock:
            execution = self._execution(pool_id, execution_id)
            if kind == "JOB":
                item_id, messages = execution.item_id, list(execution.messages)
            elif kind in (None, "TASK"):
                run = execution.task(entity_id or "")
                if run is None:
                    raise not_found(f"Task {entity_id} in execution {execution_id}")
                item_id, messages = run.item_id, list(run.messages)
            else:
                raise validation_error("type", f"type must be TASK or JOB, got {kind!r}")
        shown, pages = _page([transports.log_message(item_id, m) for m in messages], limit, page)
        return {"logMessages": shown, "numOfPages": pages}

    # data models ------------------------------------------------------------------------------------------
    def data_models(self, pool_id: str) -> list[dict[str, Any]]:
        return [transports.data_model(pool_id, m) for m in self.pool(pool_id).models]

    def data_model(self, pool_id: str, model_id: str) -> dict[str, Any]:
        return transports.data_model(pool_id, self.model(pool_id, model_id))

    def model_tables(self, pool_id: str, model_id: str) -> list[dict[str, Any]]:
        model = self.model(pool_id, model_id)
        return [transports.model_table(model, t) for t in model.tables]

    def reload(self, pool_id: str, model_id: str, force_complete: bool) -> None:
        """A load of every table: COMPLETE, or FROM_CACHE (the same data here) without ``forceComplete``."""
        model = self.model(pool_id, model_id)
        self._start_load(Load(pool_id, model, COMPLETE if force_complete else FROM_CACHE, model.tables))

    def partial_reload(self, pool_id: str, model_id: str, table_ids: Any) -> None:
        """A PARTIAL load of the tables with these ids; 400 naming an id that is no table of the model."""
        model = self.model(pool_id, model_id)
        if not isinstance(table_ids, list) or not table_ids or not all(isinstance(t, str) for t in table_ids):
            raise validation_error(None, "The body must be a non-empty JSON list of data model table ids")
        tables = []
        for table_id in table_ids:
            table = next((t for t in model.tables if t.id == table_id), None)
            if table is None:
                raise validation_error(
                    None, f"Table {table_id} is not a table of data model {model_id}", "NOT_FOUND"
                )
            tables.append(table)
        self._start_load(Load(pool_id, model, PARTIAL, tuple(tables)))

    def _start_load(self, load: Load) -> None:
        with self.registry.lock:
            loads = self.registry.model_loads(load.pool_id, load.model.id)
            running = next((ld for ld in loads if ld.status in LOAD_IN_PROGRESS), None)
            if running is not None:
                raise conflict(f"Data model {load.model.id} is already loading (load {running.id})")
            loads.append(load)
        self.runner.submit(load)

    def load_info(self, pool_id: str, model_id: str) -> dict[str, Any]:
        self.model(pool_id, model_id)
        with self.registry.lock:
            loads = list(self.registry.model_loads(pool_id, model_id))
            return transports.load_sync(loads, visible(loads, self.settings.status_lag))

    # pool tables ------------------------------------------------------------------------------------------
    def pool_tables(self, pool_id: str) -> list[dict[str, Any]]:
        self.pool(pool_id)
        return pool_tables(self.tables, pool_id)

    def pool_columns(self, pool_id: str, table: str | None, schema: str | None) -> list[dict[str, Any]]:
        self.pool(pool_id)
        if not table:
            raise validation_error("tableName", "tableName is required")
        if schema not in (None, "", pool_id):
            raise not_found(f"Schema {schema}")
        columns = pool_columns(self.tables, pool_id, table)
        if columns is None:
            raise not_found(f"Table {table}")
        return columns

    # inspection and faults (emulator only) ----------------------------------------------------------------
    def inspect_model(self, pool_id: str, model_id: str) -> dict[str, Any]:
        """The model, every load of it, and the rows its last successful load holds."""
        model = self.model(pool_id, model_id)
        with self.registry.lock:
            loads = [
                {
                    "id": ld.id,
                    "status": ld.status,
                    "type": ld.load_type,
                    "start": ld.start,
                    "end": ld.end,
                    "message": ld.message,
                    "tables": [t.name for t in ld.tables],
                    "executionId": ld.execution_id,
                }
                for ld in self.registry.model_loads(pool_id, model_id)
            ]
        tables = model_snapshot(self.tables, pool_id, model)
        return {"id": model.id, "name": model.name, "loads": loads, "tables": tables}

    def inspect_executions(self, pool_id: str, job_id: str) -> list[dict[str, Any]]:
        """Every execution of the job, oldest first, with the configuration it was sent and its tasks."""
        self.job(pool_id, job_id)
        with self.registry.lock:
            return [
                {
                    "executionId": e.id,
                    "status": e.status,
                    "start": e.start,
                    "end": e.end,
                    "history": list(e.history),
                    "configuration": e.configuration,
                    "tasks": [
                        {
                            "taskId": r.task.id,
                            "name": r.task.name,
                            "status": r.status,
                            "start": r.start,
                            "end": r.end,
                            "messages": [m.text for m in r.messages],
                        }
                        for r in e.tasks
                    ],
                    "loads": list(e.load_ids),
                }
                for e in self.registry.job_executions(pool_id, job_id)
            ]

    def next_load_status(self, body: Any) -> None:
        """The next load of a model ends with this status (ERROR: nothing loaded; WARNING: data loaded)."""
        if not isinstance(body, dict):
            raise validation_error(None, "expected {pool_id, data_model_id, status, message}")
        pool_id, model_id, status, message = (
            body.get(k) for k in ("pool_id", "data_model_id", "status", "message")
        )
        if status not in (LOAD_ERROR, LOAD_WARNING):
            raise validation_error("status", "status must be ERROR or WARNING")
        if not isinstance(message, str) or not message:
            raise validation_error("message", "message must be a non-empty string")
        if not isinstance(pool_id, str) or not isinstance(model_id, str):
            raise validation_error("data_model_id", "pool_id and data_model_id must be strings")
        self.model(pool_id, model_id)
        with self.registry.lock:
            self.registry.load_outcomes.setdefault((pool_id, model_id), []).append((status, message))

    def clear_faults(self) -> None:
        with self.registry.lock:
            self.registry.load_outcomes.clear()

    def overview(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Configured data jobs and data models with their latest status, for the HTML page."""
        jobs: list[dict[str, Any]] = []
        models: list[dict[str, Any]] = []
        with self.registry.lock:
            for pool_id, pool in self.settings.integration.pools.items():
                for j in pool.jobs:
                    jobs.append(_summary(pool_id, j.id, j.name, self.registry.job_executions(pool_id, j.id)))
                for m in pool.models:
                    models.append(_summary(pool_id, m.id, m.name, self.registry.model_loads(pool_id, m.id)))
        return jobs, models


def _summary(pool_id: str, entity_id: str, name: str, records: Sequence[Execution | Load]) -> dict[str, Any]:
    return {
        "pool": pool_id,
        "id": entity_id,
        "name": name,
        "runs": len(records),
        "last status": records[-1].status if records else "",
    }
