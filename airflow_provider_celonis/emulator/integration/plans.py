"""What an execute asks for: a ``JobExecutionConfiguration`` checked against the job, as tasks and loads.

pycelonis sets each ``...OnlySubset...`` flag exactly when it sends a list; the emulator honours a list only
with its flag, but checks every id it is sent (400 naming the first unknown one).
"""

from __future__ import annotations

from typing import Any

from ..errors import validation_error
from .config import DataJob, DataModel, PoolConfig
from .records import LoadRequest, TaskRun

MODES = ("DELTA", "FULL")


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise validation_error(name, f"{name} must be true or false")
    return bool(value)


def _ids(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise validation_error(name, f"{name} must be a list of ids")
    return list(value)


def _objects(value: Any, name: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise validation_error(name, f"{name} must be a list of objects")
    return list(value)


def _check_ids(body: dict[str, Any], pool_id: str, job: DataJob) -> None:
    for name, expected in (("poolId", pool_id), ("jobId", job.id)):
        value = body.get(name)
        if value is not None and value != expected:
            raise validation_error(name, f"{name} '{value}' does not match the URL's '{expected}'")
    mode = body.get("mode")
    if mode is not None and mode not in MODES:
        raise validation_error("mode", f"mode must be one of {', '.join(MODES)}, got {mode!r}")


def _tasks(body: dict[str, Any], job: DataJob) -> list[TaskRun]:
    listed = _ids(body.get("transformations"), "transformations")
    for task_id in listed:
        if job.transformation(task_id) is None:
            raise validation_error(
                "transformations", f"Transformation {task_id} is not a task of data job {job.id}", "NOT_FOUND"
            )
    subset = _flag(body, "executeOnlySubsetOfTransformations")
    return [
        TaskRun(t, order)
        for order, t in enumerate(job.transformations, start=1)
        if not subset or t.id in listed
    ]


def _no_extractions(body: dict[str, Any], job: DataJob) -> None:
    _flag(body, "executeOnlySubsetOfExtractions")
    for entry in _objects(body.get("extractions"), "extractions"):
        raise validation_error(
            "extractions",
            f"Extraction {entry.get('extractionId')} is not a task of data job {job.id}",
            "NOT_FOUND",
        )


def _load(job: DataJob, pool: PoolConfig, entry: dict[str, Any]) -> tuple[str, LoadRequest]:
    """One ``DataModelExecutionConfiguration``: its model execution and the tables it selects."""
    execution_id = entry.get("dataModelExecutionId")
    execution = job.model_execution(execution_id) if isinstance(execution_id, str) else None
    if execution is None:
        raise validation_error(
            "dataModels",
            f"Data model execution {execution_id} is not a data model load of data job {job.id}",
            "NOT_FOUND",
        )
    model = pool.model(execution.data_model_id)
    assert model is not None  # checked when the config was read
    tables = []
    for table_id in _ids(entry.get("tables"), "dataModels.tables"):
        table = next((t for t in model.tables if t.id == table_id), None)
        if table is None:
            raise validation_error(
                "dataModels.tables", f"Table {table_id} is not a table of data model {model.id}", "NOT_FOUND"
            )
        tables.append(table)
    # pycelonis: the configuration "needs to contain all table ids to reload"; an empty list reloads none
    # (the least a Celonis could do with it), not the step's configured tables.
    return execution.id, LoadRequest(execution.id, model, tuple(tables), partial=True)


def _configured(model: DataModel, table_ids: tuple[str, ...], execution_id: str) -> LoadRequest:
    """The load a model execution does by its configuration: its selected tables, else all (complete)."""
    if table_ids:
        tables = tuple(t for t in model.tables if t.id in table_ids)
        return LoadRequest(execution_id, model, tables, partial=True)
    return LoadRequest(execution_id, model, model.tables, partial=False)


def _loads(body: dict[str, Any], job: DataJob, pool: PoolConfig) -> list[LoadRequest]:
    listed = dict(_load(job, pool, entry) for entry in _objects(body.get("dataModels"), "dataModels"))
    if _flag(body, "loadOnlySubsetOfDataModels"):
        return [listed[m.id] for m in job.model_executions if m.id in listed]
    loads = []
    for execution in job.model_executions:
        model = pool.model(execution.data_model_id)
        assert model is not None  # checked when the config was read
        loads.append(_configured(model, execution.table_ids, execution.id))
    return loads


def plan(body: Any, pool_id: str, job: DataJob, pool: PoolConfig) -> tuple[list[TaskRun], list[LoadRequest]]:
    """The tasks (in the job's order) and data model loads an execute asks for; 400 naming what is wrong."""
    if not isinstance(body, dict):
        raise validation_error(
            None, "The body must be a JobExecutionConfiguration (a JSON object)", "BAD_REQUEST"
        )
    _check_ids(body, pool_id, job)
    tasks = _tasks(body, job)
    _no_extractions(body, job)
    return tasks, _loads(body, job, pool)
