"""``DataPushOperator``: create -> upload every chunk -> execute -> wait, with nothing left behind."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator, BaseOperatorLink, TaskDeferred, XCom, conf

from airflow_provider_celonis.datapath.pipeline import DEFAULT_CHUNK_BYTES, DataPusher, PushReport, PushSpec
from airflow_provider_celonis.datapath.sources import hold_callable, open_source
from airflow_provider_celonis.hooks.celonis import CelonisHook
from airflow_provider_celonis.hooks.errors import (
    CelonisJobFailedError,
    CelonisNotFoundError,
    CelonisRateLimitError,
    CelonisTimeoutError,
)
from airflow_provider_celonis.lineage import openlineage_facets, report_hook_lineage
from airflow_provider_celonis.triggers.data_push import DataPushJobTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.types import TaskInstanceKey

XCOM_JOB_KEY = "celonis_job"
STATE_KEY = "celonis_data_push_job"


class _TaskState:
    """The job this task instance created, kept across tries in ``task_state_store`` (Airflow >= 3.3)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def load(self) -> dict[str, Any] | None:
        value = self.store.get(STATE_KEY) if self.store is not None else None
        return dict(value) if isinstance(value, dict) and value.get("job_id") else None

    def save(self, value: dict[str, Any]) -> None:
        if self.store is not None:
            self.store.set(STATE_KEY, value)


class CelonisDataPushJobLink(BaseOperatorLink):
    """Opens the job's data pool in the team's Celonis UI."""

    name = "Celonis data push job"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        job = XCom.get_value(ti_key=ti_key, key=XCOM_JOB_KEY)
        if not job:
            return ""
        return f"{job['team_url']}/integration/ui/pools/{job['data_pool_id']}"


class DataPushOperator(BaseOperator):
    """Push a file, folder, glob, DataFrame, Arrow table or stream into a Celonis table via Data Push.

    The sources are opened and checked (existence, columns, keys, types) before any job is created; the
    data is read as Arrow record batches and written as size-capped parquet chunks that are uploaded
    while the next one is written, so memory does not grow with the source. A failure after the job was
    created deletes it (still NEW) or cancels it (already submitted): no orphan job is left behind.

    :param celonis_conn_id: the ``celonis`` connection.
    :param data_pool_id: target data pool (templated); defaults to the connection's ``data_pool_id``.
    :param target_table: table to write (templated).
    :param source: rows to upsert/append/replace (templated when a path): a path, glob, folder, list of
        paths, ``ObjectStoragePath``, pandas DataFrame, pyarrow Table or RecordBatchReader, or a callable
        returning one of these or an iterable of record batches or DataFrames.
    :param deleted_source: rows to delete by key (same kinds as ``source``).
    :param job_type: ``DELTA`` (upsert by ``keys``, append without keys) or ``REPLACE``.
    :param keys: primary key columns (templated).
    :param file_type: ``PARQUET`` (default; any source) or ``CSV`` (CSV files sent as they are).
    :param csv_parsing_options: Celonis ``csvParsingOptions`` for ``file_type="CSV"``.
    :param table_schema: explicit ``[{"columnName", "columnType", "fieldLength", ...}]``; columns not
        listed are inferred from the Arrow schema, STRING lengths measured from the data.
    :param duplicate_removal_column: on execute, keep the row with the highest value among duplicate keys.
    :param chunk_size_bytes: cap per chunk (default 128 MiB, at most 1 GiB).
    :param wait_for_completion: wait for DONE (default) or return once the job is submitted.
    :param deferrable: wait in the triggerer, freeing the worker slot
        (default ``[operators] default_deferrable``).
    :param poll_interval: seconds between status polls while waiting.
    :param timeout: seconds to wait for the job before cancelling it and failing.
    :param delete_job_on_success: delete the job once DONE (its chunks are no longer needed).
    """

    template_fields: Sequence[str] = ("source", "deleted_source", "target_table", "data_pool_id", "keys")
    template_fields_renderers = {"keys": "json"}
    ui_color = "#1e3a8a"
    ui_fgcolor = "#ffffff"
    operator_extra_links = (CelonisDataPushJobLink(),)

    def __init__(
        self,
        *,
        target_table: str,
        source: Any = None,
        deleted_source: Any = None,
        celonis_conn_id: str = CelonisHook.default_conn_name,
        data_pool_id: str | None = None,
        job_type: str = "DELTA",
        keys: Sequence[str] | None = None,
        file_type: str = "PARQUET",
        csv_parsing_options: Mapping[str, Any] | None = None,
        table_schema: Sequence[Mapping[str, Any]] | None = None,
        connection_id: str | None = None,
        upsert_strategy: str | None = None,
        fallback_varchar_length: int | None = None,
        duplicate_removal_column: str | None = None,
        chunk_size_bytes: int = DEFAULT_CHUNK_BYTES,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 10.0,
        timeout: float | None = None,
        delete_job_on_success: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.target_table = target_table
        self.source = hold_callable(source)
        self.deleted_source = hold_callable(deleted_source)
        self.celonis_conn_id = celonis_conn_id
        self.data_pool_id = data_pool_id
        self.job_type = job_type
        self.keys = list(keys) if keys is not None else []
        self.file_type = file_type
        self.csv_parsing_options = csv_parsing_options
        self.table_schema = table_schema
        self.connection_id = connection_id
        self.upsert_strategy = upsert_strategy
        self.fallback_varchar_length = fallback_varchar_length
        self.duplicate_removal_column = duplicate_removal_column
        self.chunk_size_bytes = chunk_size_bytes
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.timeout_seconds = timeout
        self.delete_job_on_success = delete_job_on_success
        self._job_id: str | None = None
        self._pool: str | None = None
        self._state = _TaskState(None)

    @cached_property
    def hook(self) -> CelonisHook:
        return CelonisHook(self.celonis_conn_id)

    def push_spec(self) -> PushSpec:
        return PushSpec(
            target_table=self.target_table,
            job_type=str(self.job_type).upper(),
            keys=list(self.keys or []),
            file_type=str(self.file_type).upper(),
            table_schema=self.table_schema,
            csv_parsing_options=self.csv_parsing_options,
            connection_id=self.connection_id,
            upsert_strategy=self.upsert_strategy,
            fallback_varchar_length=self.fallback_varchar_length,
            chunk_size_bytes=self.chunk_size_bytes,
        )

    # -- execution --------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any] | None:
        pool = self._pool = self.hook.resolve_pool(self.data_pool_id)
        self._state = _TaskState(context.get("task_state_store"))
        resumed = self._resume(context)
        if resumed is not None:
            return resumed
        pusher = DataPusher(self.hook, pool, self.push_spec(), self.log, on_job_created=self._remember_job)
        push: Callable[[], PushReport]
        if pusher.spec.file_type == "CSV":
            push = partial(pusher.run_csv, pusher.prepare_csv(self.source, self.deleted_source))
        else:
            parts = pusher.prepare(
                self._open("source", self.source), self._open("deleted_source", self.deleted_source)
            )
            push = partial(pusher.run, parts)
        try:
            report = push()
            summary = report.as_xcom("NEW")
            self._state.save(summary)
            self._publish_job(context, summary)
            self._submit(report.job_id, pool, summary)
        except TaskDeferred:
            raise  # waiting for the execute budget: the job stays, uploaded and NEW
        except BaseException:
            pusher.abandon()
            raise
        return self._wait(context, summary)

    def _resume(self, context: Context) -> dict[str, Any] | None:
        """On a retry, pick up the job an earlier try created instead of pushing the data twice.

        DONE: succeed without pushing. QUEUED/RUNNING: wait for it. NEW (the worker died mid-upload):
        delete it and push anew. ERROR, CANCELED or gone: push anew. Needs ``task_state_store``
        (Airflow >= 3.3); on 3.2 every try pushes anew, and an earlier try's NEW job is left behind.
        """
        saved = self._state.load()
        if not saved:
            return None
        job_id, pool = str(saved["job_id"]), str(saved["data_pool_id"])
        try:
            status = str(self.hook.get_job(job_id, pool).get("status"))
        except CelonisNotFoundError:
            self.log.info("Job %s of an earlier try is gone; pushing anew", job_id)
            return None
        summary = {**saved, "status": status}
        if status == "DONE":
            self.log.info("Job %s of an earlier try is already DONE; not pushing again", job_id)
            self._publish_job(context, summary)
            return self._finish(summary, status)
        if status in ("QUEUED", "RUNNING"):
            self.log.info(
                "Job %s of an earlier try is %s; waiting for it instead of pushing again", job_id, status
            )
            self._job_id = job_id
            self._publish_job(context, summary)
            return self._wait(context, summary)
        if status == "NEW":
            self.log.warning(
                "Job %s of an earlier try was never executed; deleting it and pushing anew", job_id
            )
            self.hook.delete_job(job_id, pool)
        else:
            self.log.info("Job %s of an earlier try ended %s; pushing anew", job_id, status)
        return None

    def _open(self, what: str, source: Any) -> Any:
        return None if source is None else open_source(source, what=what)

    def _remember_job(self, job_id: str) -> None:
        self._job_id = job_id
        self._state.save({"job_id": job_id, "data_pool_id": self._pool, "target_table": self.target_table})

    def _publish_job(self, context: Context, summary: Mapping[str, Any]) -> None:
        """The job for the extra link, and the push summary for a resumption after a deferral."""
        context["ti"].xcom_push(key=XCOM_JOB_KEY, value={**summary, "team_url": self.hook.config.base_url})

    def _submit(self, job_id: str, pool: str, summary: dict[str, Any]) -> None:
        """Execute; when the team's hourly budget is spent, wait for the window instead of failing.

        Deferrable: defer until the window reopens (the worker slot is freed). Otherwise: sleep.
        """
        while True:
            try:
                self.hook.execute_job(job_id, pool, self.duplicate_removal_column)
                return
            except CelonisRateLimitError as exc:
                self.log.warning(
                    "Celonis' execute budget is spent; job %s will be executed at %s (in %.0fs)",
                    job_id,
                    exc.resume_at.isoformat(),
                    exc.retry_after,
                )
                if self.deferrable:
                    from airflow.providers.standard.triggers.temporal import DateTimeTrigger

                    self.defer(
                        trigger=DateTimeTrigger(moment=exc.resume_at),
                        method_name="execute_after_quota",
                        kwargs={"summary": summary},
                    )
                time.sleep(max(exc.retry_after, 1.0))

    def execute_after_quota(
        self, context: Context, event: Any = None, summary: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """Resumes when the execute window has reopened: execute (again deferring if needed), then wait."""
        # The deferral's kwargs carry the summary; dag.test() drops them, so the XCom is the fallback.
        summary = dict(summary or context["ti"].xcom_pull(task_ids=self.task_id, key=XCOM_JOB_KEY) or {})
        summary.pop("team_url", None)
        self._pool = str(summary["data_pool_id"])
        self._job_id = str(summary["job_id"])
        self._submit(self._job_id, self._pool, summary)
        return self._wait(context, summary)

    def _wait(self, context: Context, summary: dict[str, Any]) -> dict[str, Any] | None:
        push = {**summary, "status": "QUEUED"}
        job_id, pool = str(push["job_id"]), str(push["data_pool_id"])
        if not self.wait_for_completion:
            self.log.info(self._summary(push, "submitted"))
            return push
        if self.deferrable:
            end_time = time.time() + self.timeout_seconds if self.timeout_seconds else None
            self.defer(
                trigger=DataPushJobTrigger(
                    job_id=job_id,
                    data_pool_id=pool,
                    celonis_conn_id=self.celonis_conn_id,
                    poll_interval=self.poll_interval,
                    end_time=end_time,
                    push=push,
                ),
                method_name="execute_complete",
                timeout=timedelta(seconds=self.timeout_seconds) if self.timeout_seconds else None,
            )
        try:
            job = self.hook.wait_for_job(job_id, pool, self.poll_interval, self.timeout_seconds)
        except CelonisTimeoutError:
            self.hook.cancel_job(job_id, pool)
            raise
        return self._finish(push, str(job.get("status")))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resumes after the trigger fired: success returns the push summary, anything else fails."""
        push = dict(event.get("push") or {})
        self._job_id = event.get("job_id")
        if event.get("status") == "success":
            return self._finish(push, str(event.get("job_status")))
        if event.get("status") == "timeout":
            raise CelonisTimeoutError(event.get("message") or "timed out")
        if event.get("job_status"):
            raise CelonisJobFailedError(
                str(event["job_id"]), str(event["job_status"]), list(event.get("logs") or [])
            )
        raise CelonisJobFailedError(str(event.get("job_id")), "UNKNOWN", [str(event.get("message"))])

    def _finish(self, push: dict[str, Any], status: str) -> dict[str, Any]:
        push["status"] = status
        report_hook_lineage(self, push.get("data_pool_id"))
        if self.delete_job_on_success and push.get("job_id"):
            self.hook.delete_job(push["job_id"], push["data_pool_id"])
        self.log.info(self._summary(push, status))
        return push

    @staticmethod
    def _summary(push: Mapping[str, Any], status: str) -> str:
        return (
            f"Celonis push {status}: job {push.get('job_id')} into {push.get('data_pool_id')}/"
            f"{push.get('target_table')}: {push.get('rows', 0):,} rows in {push.get('chunks', 0)} chunk(s), "
            f"{push.get('bytes', 0) / 1e6:.1f} MB"
        )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the file, object-storage path or SQL table read -> ``celonis://<host>`` ``<pool>/<table>``
        (``None`` when ``apache-airflow-providers-openlineage`` is not installed)."""
        return openlineage_facets(self)

    def on_kill(self) -> None:
        if self._job_id and self._pool:
            self.hook.cancel_job(self._job_id, self._pool)
            self.log.info("Cancelled Celonis job %s because the task was killed", self._job_id)
