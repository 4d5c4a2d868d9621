"""The Celonis Integration API calls of ``CelonisHook``: data jobs, data model loads, pool tables.

These calls are not in the Data Push docs; pycelonis 2.x (Celonis' own SDK) is the contract, see
docs/celonis-contract.md. Same connection, auth and request loop (``http_policy.decide``) as Data Push.
Execute and the loads are not idempotent: after a lost answer the hook reads the status until it shows a
run newer than the baseline (for ``[celonis] reconcile_grace_seconds``) and sends again only if none shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow_provider_celonis.hooks.errors import CelonisConfigError, CelonisConflictError
from airflow_provider_celonis.hooks.executions import Baseline, Verdict, epoch_ms, judge_execution, judge_load
from airflow_provider_celonis.hooks.options import celonis_option
from airflow_provider_celonis.hooks.transport import CelonisTransport

#: Long: a resend after a lagging status would run the job twice, if Celonis queues it (not promised
#: either way); waiting only delays the rare start whose request was really lost.
DEFAULT_RECONCILE_GRACE = 120.0


def reconcile_grace() -> float:
    """``[celonis] reconcile_grace_seconds``: how long a lost execute/reload answer is looked for in the status."""
    return celonis_option("reconcile_grace_seconds", DEFAULT_RECONCILE_GRACE)


def pick(kind: str, ref: str, items: Sequence[Mapping[str, Any]], where: str, *names: str) -> dict[str, Any]:
    """The one item whose ``id`` or one of ``names`` equals ``ref``; else an error listing what exists."""
    ref = str(ref).strip()

    def by_id(item: Mapping[str, Any]) -> bool:
        return str(item.get("id")) == ref

    def by_name(item: Mapping[str, Any]) -> bool:
        return any(item.get(n) == ref for n in names)

    def by_name_ignoring_case(item: Mapping[str, Any]) -> bool:
        return any(str(item.get(n) or "").lower() == ref.lower() for n in names)

    for match in (by_id, by_name, by_name_ignoring_case):
        found = [dict(item) for item in items if match(item)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            ids = ", ".join(str(item.get("id")) for item in found)
            raise CelonisConfigError(f"{where} has {len(found)} {kind}s named {ref!r} ({ids}): give the id")
    known = ", ".join(f"{item.get(names[0]) if names else ''} ({item.get('id')})" for item in items[:50])
    raise CelonisConfigError(f"{where} has no {kind} {ref!r}; its {kind}s: {known or 'none'}")


class IntegrationApi(CelonisTransport):
    """Data jobs, data model loads and pool tables (``/integration/api``)."""

    # -- data jobs --------------------------------------------------------------------------------

    def list_data_jobs(self, data_pool_id: str | None = None) -> list[dict[str, Any]]:
        pool = self.resolve_pool(data_pool_id)
        return list(self._request("list_data_jobs", url=self._url("list_data_jobs", pool)) or [])

    def find_data_job(self, ref: str, data_pool_id: str | None = None) -> dict[str, Any]:
        """A data job by id or name (exact, then case-insensitive); a clear error lists the pool's jobs."""
        pool = self.resolve_pool(data_pool_id)
        return pick("data job", ref, self.list_data_jobs(pool), f"Data pool {pool}", "name")

    def list_data_job_tasks(self, job_id: str, data_pool_id: str | None = None) -> list[dict[str, Any]]:
        pool = self.resolve_pool(data_pool_id)
        url = self._url("list_data_job_tasks", pool, job_id=job_id)
        return list(self._request("list_data_job_tasks", url=url) or [])

    def list_data_job_loads(self, job_id: str, data_pool_id: str | None = None) -> list[dict[str, Any]]:
        """The data job's data model load steps (``DataModelExecutionTransport``)."""
        pool = self.resolve_pool(data_pool_id)
        url = self._url("list_data_job_loads", pool, job_id=job_id)
        return list(self._request("list_data_job_loads", url=url) or [])

    def data_job_statuses(self, data_pool_id: str | None = None) -> dict[str, dict[str, Any]]:
        """``logs/status``: one ``EntityStatus`` per data job that ever ran, by job id."""
        pool = self.resolve_pool(data_pool_id)
        found = self._request("data_job_statuses", url=self._url("data_job_statuses", pool)) or []
        return {str(entry.get("id")): dict(entry) for entry in found if isinstance(entry, Mapping)}

    def data_job_status(self, job_id: str, data_pool_id: str | None = None) -> dict[str, Any] | None:
        return self.data_job_statuses(data_pool_id).get(job_id)

    @staticmethod
    def execution_configuration(
        pool: str,
        job_id: str,
        transformations: Sequence[str] | None = None,
        data_model_loads: Sequence[Mapping[str, Any]] | None = None,
        mode: str = "DELTA",
    ) -> dict[str, Any]:
        """A ``JobExecutionConfiguration``; each ``...OnlySubset...`` flag is set exactly when a list is given."""
        return {
            "poolId": pool,
            "jobId": job_id,
            "mode": mode,
            "executeOnlySubsetOfTransformations": transformations is not None,
            "transformations": list(transformations or []),
            "executeOnlySubsetOfExtractions": False,
            "extractions": [],
            "loadOnlySubsetOfDataModels": data_model_loads is not None,
            "dataModels": [dict(load) for load in data_model_loads or []],
        }

    def execute_data_job(
        self,
        job_id: str,
        configuration: Mapping[str, Any],
        baseline: Baseline,
        data_pool_id: str | None = None,
    ) -> None:
        """Start an execution; ``baseline`` is the job's status before it (see ``hooks/executions.py``).

        A lost answer is looked for in the status; a resend refused with 409 after such a look means the
        first call did start the execution (it is the one in progress), so it is not an error.
        """
        pool = self.resolve_pool(data_pool_id)
        self._start_run(
            "execute_data_job",
            self._url("execute_data_job", pool, job_id=job_id),
            f"data job {job_id}",
            lambda: judge_execution(self.data_job_status(job_id, pool), baseline),
            json=dict(configuration),
        )

    def cancel_data_job(self, job_id: str, data_pool_id: str | None = None) -> None:
        pool = self.resolve_pool(data_pool_id)
        self._request("cancel_data_job", url=self._url("cancel_data_job", pool, job_id=job_id))
        self.log.info("Asked Celonis to cancel data job %s", job_id)

    def last_execution_tasks(
        self, job_id: str, data_pool_id: str | None = None, started: Any = None
    ) -> list[dict[str, Any]]:
        """The task executions of one execution of the job, read as pycelonis reads them (the execution list,
        no paging asked). ``started`` (the status' ``lastExecutionStartDate``) picks our execution out of
        the list: the newest may be another's, or ours may not be listed yet; then none is reported, not
        another run's tasks."""
        pool = self.resolve_pool(data_pool_id)
        url = self._url("data_job_executions", pool, job_id=job_id)
        page = self._request("data_job_executions", url=url) or {}
        items = [item for item in page.get("executionItems") or [] if item]
        if started is not None:
            ours = epoch_ms(started)
            items = [item for item in items if epoch_ms(item.get("startDate")) == ours]
        if not items:
            return []
        params = {"executionId": str(items[0].get("executionId")), "type": "TASK", "id": job_id}
        url = self._url("task_executions", pool)
        return [dict(t) for t in self._request("task_executions", url=url, params=params) or [] if t]

    def task_messages(self, task: Mapping[str, Any], data_pool_id: str | None = None) -> list[str]:
        """A task execution's log messages (the SQL error of a FAILed transformation)."""
        pool = self.resolve_pool(data_pool_id)
        params = {
            "executionId": str(task.get("executionId")),
            "id": str(task.get("taskId")),
            "type": str(task.get("type") or "TASK"),
        }
        page = self._request("execution_log", url=self._url("execution_log", pool), params=params) or {}
        messages = [m.get("logMessage") for m in page.get("logMessages") or [] if isinstance(m, Mapping)]
        return [str(m) for m in messages if m]

    def failed_task_messages(
        self, job_id: str, data_pool_id: str | None = None, started: Any = None
    ) -> list[str]:
        """``task: message`` for each FAILed task of the execution (what pycelonis raises with)."""
        messages: list[str] = []
        for task in self.last_execution_tasks(job_id, data_pool_id, started):
            if task.get("status") == "FAIL":
                found = self.task_messages(task, data_pool_id)
                messages += [f"{task.get('name') or task.get('taskId')}: {m}" for m in found[:5]]
        return messages

    # -- data models ------------------------------------------------------------------------------

    def list_data_models(self, data_pool_id: str | None = None) -> list[dict[str, Any]]:
        pool = self.resolve_pool(data_pool_id)
        return list(self._request("list_data_models", url=self._url("list_data_models", pool)) or [])

    def find_data_model(self, ref: str, data_pool_id: str | None = None) -> dict[str, Any]:
        pool = self.resolve_pool(data_pool_id)
        return pick("data model", ref, self.list_data_models(pool), f"Data pool {pool}", "name")

    def list_data_model_tables(self, model_id: str, data_pool_id: str | None = None) -> list[dict[str, Any]]:
        pool = self.resolve_pool(data_pool_id)
        url = self._url("list_data_model_tables", pool, model_id=model_id)
        return list(self._request("list_data_model_tables", url=url) or [])

    def data_model_load_info(self, model_id: str, data_pool_id: str | None = None) -> dict[str, Any]:
        pool = self.resolve_pool(data_pool_id)
        url = self._url("data_model_load_info", pool, model_id=model_id)
        return dict(self._request("data_model_load_info", url=url) or {})

    def data_model_load(self, model_id: str, data_pool_id: str | None = None) -> dict[str, Any] | None:
        """The current load (``currentComputeLoad``); None when the model was never loaded."""
        return current_load(self.data_model_load_info(model_id, data_pool_id))

    def reload_data_model(
        self, model_id: str, baseline: Baseline, force_complete: bool = True, data_pool_id: str | None = None
    ) -> None:
        """A full load (``force_complete``) or one from cache; ``baseline`` is the current load before it."""
        pool = self.resolve_pool(data_pool_id)
        self._start_load(
            "reload_data_model",
            model_id,
            pool,
            baseline,
            params={"forceComplete": "true" if force_complete else "false"},
        )

    def partial_load_data_model(
        self, model_id: str, table_ids: Sequence[str], baseline: Baseline, data_pool_id: str | None = None
    ) -> None:
        """Load only the given data model tables (their ids)."""
        pool = self.resolve_pool(data_pool_id)
        self._start_load("partial_load_data_model", model_id, pool, baseline, json=list(table_ids))

    def _start_load(self, name: str, model_id: str, pool: str, baseline: Baseline, **send: Any) -> None:
        self._start_run(
            name,
            self._url(name, pool, model_id=model_id),
            f"a load of data model {model_id}",
            lambda: judge_load(self.data_model_load(model_id, pool), baseline),
            **send,
        )

    def _start_run(self, name: str, url: str, what: str, verdict: Callable[[], Verdict], **send: Any) -> None:
        """Send a start that is not idempotent: a lost answer is looked for in the status (``verdict``), and a
        resend refused with 409 after such a look means the first call did start the run (it is in progress)."""
        looked: list[bool] = []

        def started() -> bool | None:
            looked.append(True)
            return self.appears(verdict)

        try:
            self._request(name, url=url, reconcile=started, **send)
        except CelonisConflictError as err:
            if not looked:
                raise
            self.log.warning("Celonis refused the resend of %s (%s); our first call started it", what, err)
        self.log.info("Started %s in Celonis", what)

    # -- pool tables ------------------------------------------------------------------------------

    def list_pool_tables(self, data_pool_id: str | None = None) -> list[dict[str, Any]]:
        pool = self.resolve_pool(data_pool_id)
        return list(self._request("list_pool_tables", url=self._url("list_pool_tables", pool)) or [])

    def list_pool_columns(
        self, table: str, schema: str | None = None, data_pool_id: str | None = None
    ) -> list[dict[str, Any]]:
        pool = self.resolve_pool(data_pool_id)
        params = {"tableName": table, **({"schemaName": schema} if schema else {})}
        url = self._url("list_pool_columns", pool)
        return list(self._request("list_pool_columns", url=url, params=params) or [])

    # -- async (for triggers) ---------------------------------------------------------------------

    async def adata_job_statuses(self, data_pool_id: str | None = None) -> dict[str, dict[str, Any]]:
        pool = self.resolve_pool(data_pool_id)
        found = await self._arequest("data_job_statuses", url=self._url("data_job_statuses", pool)) or []
        return {str(entry.get("id")): dict(entry) for entry in found if isinstance(entry, Mapping)}

    async def adata_model_load(self, model_id: str, data_pool_id: str | None = None) -> dict[str, Any] | None:
        pool = self.resolve_pool(data_pool_id)
        url = self._url("data_model_load_info", pool, model_id=model_id)
        return current_load(await self._arequest("data_model_load_info", url=url))

    async def acancel_data_job(self, job_id: str, data_pool_id: str | None = None) -> None:
        pool = self.resolve_pool(data_pool_id)
        await self._arequest("cancel_data_job", url=self._url("cancel_data_job", pool, job_id=job_id))

    # -- helpers ----------------------------------------------------------------------------------

    def appears(self, verdict: Callable[[], Verdict]) -> bool | None:
        """True once the status shows a run newer than the baseline, within the grace period; else None."""
        deadline = time.monotonic() + reconcile_grace()
        while True:
            if verdict() is not Verdict.NOT_YET:
                return True
            if time.monotonic() >= deadline:
                return None
            time.sleep(1.0)


def current_load(info: Any) -> dict[str, Any] | None:
    """``loadInfo.currentComputeLoad`` of a ``DataModelLoadSyncTransport`` (None: never loaded)."""
    if not isinstance(info, Mapping):
        return None
    load = (info.get("loadInfo") or {}).get("currentComputeLoad")
    return dict(load) if isinstance(load, Mapping) else None
