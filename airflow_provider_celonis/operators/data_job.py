"""``DataJobOperator``: run a data pool's data job (its SQL transformations and data model loads) and wait."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_celonis.hooks.errors import CelonisConfigError, CelonisDataJobFailedError
from airflow_provider_celonis.hooks.executions import (
    EXECUTION_FAILED,
    Baseline,
    Verdict,
    execution_baseline,
    execution_in_progress,
    iso,
    judge_execution,
)
from airflow_provider_celonis.hooks.integration import pick
from airflow_provider_celonis.lineage import report_integration_lineage
from airflow_provider_celonis.operators.links import CelonisDataJobLink
from airflow_provider_celonis.operators.remote_run import CelonisRunOperator
from airflow_provider_celonis.triggers.integration import DataJobTrigger

MODES = ("DELTA", "FULL")


class DataJobOperator(CelonisRunOperator):
    """Execute a data job and wait for it: SUCCESS succeeds, FAIL/CANCEL fails with the failed tasks' log
    messages (the SQL error). The XCom holds the job, the status, start and end, and each task's status.

    Only an execution that started after this task's execute counts: the job's previous SUCCESS, which
    Celonis may still show for a moment, is never taken for this one's.

    :param data_job: the data job's id or name (templated).
    :param data_pool_id: its data pool (templated); defaults to the connection's ``data_pool_id``.
    :param transformations: run only these transformations (ids or names, templated); default all.
    :param data_model_loads: run only these of the job's data model load steps (their ids, or the data
        models' names or ids, templated); default all. ``[]`` runs none.
    :param mode: ``DELTA`` (default, as pycelonis) or ``FULL`` (for extractions).
    :param wait_for_completion: wait for the end (default) or return once started.
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    :param poll_interval: seconds between status polls.
    :param timeout: seconds to wait; when it passes the execution is cancelled and the task fails.
    :param if_running: when the job is already QUEUED/RUNNING (started elsewhere): ``"wait"`` for that
        execution to end, then start ours (default), or ``"fail"``.
    """

    what = "data job"
    template_fields: Sequence[str] = ("data_job", "data_pool_id", "transformations", "data_model_loads")
    template_fields_renderers = {"transformations": "json", "data_model_loads": "json"}
    ui_color = "#1e3a8a"
    ui_fgcolor = "#ffffff"
    operator_extra_links = (CelonisDataJobLink(),)

    def __init__(
        self,
        *,
        data_job: str,
        transformations: Sequence[str] | None = None,
        data_model_loads: Sequence[str] | None = None,
        mode: str = "DELTA",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if str(mode).upper() not in MODES:
            raise CelonisConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.data_job = data_job
        self.transformations = transformations
        self.data_model_loads = data_model_loads
        self.mode = str(mode).upper()

    def resolve(self, pool: str) -> dict[str, Any]:
        if not str(self.data_job or "").strip():
            raise CelonisConfigError("data_job is empty: give the data job's id or name")
        job = self.hook.find_data_job(str(self.data_job), pool)
        where = f"Data job {job.get('name')!r} ({job['id']})"
        target: dict[str, Any] = {"id": str(job["id"]), "name": job.get("name")}
        if self.transformations is not None:
            tasks = [t for t in self.hook.list_data_job_tasks(target["id"], pool) if _is_transformation(t)]
            chosen = [
                pick("transformation", ref, tasks, where, "name") for ref in _as_list(self.transformations)
            ]
            target["transformations"] = [str(t["id"]) for t in chosen]
        if self.data_model_loads is not None:
            loads = self.hook.list_data_job_loads(target["id"], pool)
            chosen = [
                pick("data model load", ref, loads, where, "dataModelName", "dataModelId")
                for ref in _as_list(self.data_model_loads)
            ]
            target["data_model_loads"] = [
                {"dataModelExecutionId": str(x["id"]), "tables": _step_tables(x, where)} for x in chosen
            ]
        return target

    def status(self) -> dict[str, Any] | None:
        return self.hook.data_job_status(self._target["id"], self._pool)

    def in_progress(self, entry: dict[str, Any] | None) -> bool:
        return execution_in_progress(entry)

    def judge(self, entry: dict[str, Any] | None, baseline: Baseline) -> Verdict:
        return judge_execution(entry, baseline)

    def baseline_of(self, entry: dict[str, Any] | None) -> Baseline:
        return execution_baseline(entry)

    def start(self, baseline: Baseline) -> None:
        assert self._pool is not None
        config = self.hook.execution_configuration(
            self._pool,
            self._target["id"],
            self._target.get("transformations"),
            self._target.get("data_model_loads"),
            self.mode,
        )
        self.hook.execute_data_job(self._target["id"], config, baseline, self._pool)

    def trigger(self, baseline: Baseline, **kwargs: Any) -> DataJobTrigger:
        assert self._pool is not None
        return DataJobTrigger(self._target["id"], self._pool, baseline.as_dict(), **kwargs)

    def cancel(self) -> None:
        self.hook.cancel_data_job(self._target["id"], self._pool)

    def result(self, entry: dict[str, Any]) -> dict[str, Any]:
        started = entry.get("lastExecutionStartDate")
        try:
            tasks = self.hook.last_execution_tasks(self._target["id"], self._pool, started)
        except Exception as exc:  # noqa: BLE001 - the job succeeded: its task list is a report, not the result
            self.log.warning("Could not read the task executions of data job %s: %s", self._target["id"], exc)
            tasks = []
        outcome = {
            **self._summary(),
            "job_id": self._target["id"],
            "status": entry.get("status"),
            "start": iso(entry.get("lastExecutionStartDate")),
            "end": max((iso(t.get("endDate")) or "" for t in tasks), default="") or None,
            "tasks": [
                {
                    "task_id": t.get("taskId"),
                    "name": t.get("name"),
                    "status": t.get("status"),
                    "start": iso(t.get("startDate")),
                    "end": iso(t.get("endDate")),
                }
                for t in tasks
            ],
        }
        self.log.info("Celonis data job %s ended %s", self._target["id"], entry.get("status"))
        report_integration_lineage(self, outcome)
        return outcome

    def failure(self, entry: dict[str, Any] | None, message: str) -> Exception:
        status = str((entry or {}).get("status") or "UNKNOWN")
        messages: list[str] = []
        if status in EXECUTION_FAILED:
            try:
                started = (entry or {}).get("lastExecutionStartDate")
                messages = self.hook.failed_task_messages(self._target["id"], self._pool, started)
            except Exception as exc:  # noqa: BLE001 - the failure is reported even if its logs cannot be read
                messages.append(f"(could not read the failed tasks' logs: {exc})")
        return CelonisDataJobFailedError(self._target.get("id", "?"), status, messages or [message])


def _step_tables(step: dict[str, Any], where: str) -> list[str]:
    """A data model load step's tables, as it is configured to load them: pycelonis' ``Job.execute`` says the
    configuration "needs to contain all table ids to reload" (an empty list is not "all")."""
    tables = [t for t in step.get("tables") or [] if isinstance(t, dict) and t.get("id")]
    chosen = [str(t["id"]) for t in tables if t.get("selected") is not False]
    if not chosen:
        name = step.get("dataModelName") or step.get("dataModelId")
        raise CelonisConfigError(
            f"{where}: its data model load {name!r} ({step.get('id')}) selects no table, so it would load "
            "nothing: select its tables in Celonis, or load the data model with DataModelLoadOperator"
        )
    return chosen


def _is_transformation(task: dict[str, Any]) -> bool:
    return str(task.get("taskType") or "TRANSFORMATION").upper() == "TRANSFORMATION"


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]
