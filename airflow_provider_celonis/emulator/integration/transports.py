"""The wire format: pycelonis 2.x transports (camelCase fields, its enum values, dates as epoch milliseconds)."""

from __future__ import annotations

from typing import Any

from .config import DataJob, DataModel, ModelExecution, ModelTable
from .records import IN_PROGRESS, LOAD_SUCCESS, LOAD_WARNING, Execution, Load, LogMessage, TaskRun


def job(pool_id: str, data_job: DataJob, shown: Execution | None) -> dict[str, Any]:
    """``JobTransport``; status fields come from ``shown`` (the execution the lagging summary shows)."""
    return {
        "id": data_job.id,
        "name": data_job.name,
        "dataPoolId": pool_id,
        "dataSourceId": None,
        "timeStamp": shown.start if shown else None,
        "status": shown.status if shown else None,
        "currentExecutionId": shown.id if shown and shown.status in IN_PROGRESS else None,
        "dagBasedExecutionEnabled": False,
        "latestExecutionItemId": shown.item_id if shown else None,
    }


def task(pool_id: str, data_job: DataJob, order: int) -> dict[str, Any]:
    """``TaskInstanceTransport`` of the job's ``order``-th transformation (1-based)."""
    t = data_job.transformations[order - 1]
    return {
        "id": t.id,
        "poolId": pool_id,
        "taskId": t.id,
        "taskType": "TRANSFORMATION",
        "template": False,
        "name": t.name,
        "description": None,
        "jobId": data_job.id,
        "executionOrder": order,
        "published": True,
        "disabled": False,
    }


def model_execution(data_job: DataJob, execution: ModelExecution, model: DataModel) -> dict[str, Any]:
    """``DataModelExecutionTransport``: a data model load step of a job (``tables`` with ``selected``)."""
    selected = set(execution.table_ids)
    return {
        "id": execution.id,
        "dataModelId": model.id,
        "jobId": data_job.id,
        "disabled": False,
        "dataModelName": model.name,
        "tables": [
            {"id": t.id, "aliasOrName": t.alias or t.name, "selected": not selected or t.id in selected}
            for t in model.tables
        ],
        "partialLoad": bool(selected),
    }


def entity_status(data_job: DataJob, shown: Execution | None) -> dict[str, Any]:
    """``EntityStatus``: one per job; status and date null before the job's first (shown) execution."""
    return {
        "id": data_job.id,
        "status": shown.status if shown else None,
        "lastExecutionStartDate": shown.start if shown else None,
    }


def job_item(ex: Execution) -> dict[str, Any]:
    """``ExecutionItemTransport`` of type JOB."""
    return {
        "id": ex.item_id,
        "poolId": ex.pool_id,
        "executionId": ex.id,
        "jobId": ex.job.id,
        "taskId": None,
        "name": ex.job.name,
        "status": ex.status,
        "startDate": ex.start,
        "endDate": ex.end,
        "type": "JOB",
        "mode": ex.configuration.get("mode") or "DELTA",
    }


def task_item(ex: Execution, run: TaskRun) -> dict[str, Any]:
    """``ExecutionItemTransport`` of type TASK."""
    return {
        "id": run.item_id,
        "poolId": ex.pool_id,
        "executionId": ex.id,
        "jobId": ex.job.id,
        "taskId": run.task.id,
        "name": run.task.name,
        "status": run.status,
        "startDate": run.start,
        "endDate": run.end,
        "type": "TASK",
        "executionOrder": run.order,
    }


def log_message(item_id: str, message: LogMessage) -> dict[str, Any]:
    """``LogMessageTransport``."""
    return {
        "id": message.id,
        "executionItemId": item_id,
        "level": message.level,
        "date": message.date,
        "logMessage": message.text,
    }


def model_table(model: DataModel, table: ModelTable) -> dict[str, Any]:
    """``DataModelTableTransport``."""
    return {
        "id": table.id,
        "dataModelId": model.id,
        "dataSourceId": None,
        "name": table.name,
        "alias": table.alias,
        "aliasOrName": table.alias or table.name,
        "augmentation": False,
        "useDirectStorage": False,
    }


def data_model(pool_id: str, model: DataModel) -> dict[str, Any]:
    """``DataModelTransport``."""
    return {
        "id": model.id,
        "name": model.name,
        "poolId": pool_id,
        "description": None,
        "configurationSkipped": False,
        "unavailable": False,
        "editable": True,
        "tables": [model_table(model, t) for t in model.tables],
        "foreignKeys": [],
    }


def load_history(load: Load) -> dict[str, Any]:
    """``DataModelDataLoadHistoryTransport`` (``currentComputeLoad`` and the ``dataLoadHistory`` entries)."""
    return {
        "dataLoadId": load.id,
        "dataModelId": load.model.id,
        "startDate": load.start,
        "endDate": load.end,
        "loadStatus": load.status,
        "message": load.message,
        "loadType": load.load_type,
    }


def live_model(load: Load) -> dict[str, Any]:
    """``DataModelLoadTransport`` of the load the model now answers from."""
    return {
        "dataModelId": load.model.id,
        "dataModelName": load.model.name,
        "done": True,
        "error": False,
        "tablesLoaded": True,
        "errorMessage": None,
        "lastLoad": load.end,
        "numTables": len(load.model.tables),
        "startTime": load.start,
        "endTime": load.end,
        "dataLoadId": load.id,
    }


def load_sync(loads: list[Load], current: Load | None) -> dict[str, Any]:
    """``DataModelLoadSyncTransport``: ``currentComputeLoad`` is ``current`` (lagging), history newest first."""
    good = [ld for ld in loads if ld.status in (LOAD_SUCCESS, LOAD_WARNING)]
    last = good[-1] if good else None
    return {
        "loadInfo": {
            "liveDataModel": live_model(last) if last else None,
            "currentComputeLoad": load_history(current) if current else None,
        },
        "loadHistory": {
            "dataLoadHistory": [load_history(ld) for ld in reversed(loads)],
            "lastSuccessfulDataModel": (
                {
                    "dataModelId": last.model.id,
                    "dataLoadId": last.id,
                    "message": last.message,
                    "loadStatus": last.status,
                    "startDate": last.start,
                    "endDate": last.end,
                    "done": True,
                }
                if last
                else None
            ),
            "averageLoadTime": [],
        },
    }
