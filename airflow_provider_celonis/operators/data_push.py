"""``DataPushOperator``: create -> upload every chunk -> execute -> wait, with nothing left behind."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator, BaseOperatorLink, TaskDeferred, conf

from airflow_provider_celonis.datapath.csv_split import passthrough_options
from airflow_provider_celonis.datapath.drift import push_widening
from airflow_provider_celonis.datapath.job import JobState, PushJob
from airflow_provider_celonis.datapath.pipeline import (
    DEFAULT_CHUNK_BYTES,
    PushSpec,
    normalize_keys,
    prepare,
    prepare_csv,
    summary_line,
)
from airflow_provider_celonis.datapath.schema import declared_strings
from airflow_provider_celonis.datapath.sources import hold_callable, open_source
from airflow_provider_celonis.hooks.celonis import CelonisHook
from airflow_provider_celonis.hooks.errors import (
    CelonisConfigError,
    CelonisJobFailedError,
    CelonisRateLimitError,
    CelonisTimeoutError,
)
from airflow_provider_celonis.lineage import openlineage_facets, report_hook_lineage
from airflow_provider_celonis.operators.links import quiet_xcom
from airflow_provider_celonis.triggers.data_push import DEFER_MARGIN, DataPushJobTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.types import TaskInstanceKey

XCOM_JOB_KEY = "celonis_job"


class CelonisDataPushJobLink(BaseOperatorLink):
    """Opens the job's data pool in the team's Celonis UI."""

    name = "Celonis data push job"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        # The try that published the job knows it; only a retry may find one an earlier try left.
        job = getattr(operator, "_published", None)
        if job is None and ti_key.try_number > 1:
            job = quiet_xcom(ti_key, XCOM_JOB_KEY)
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
    :param csv_parsing_options: Celonis ``csvParsingOptions`` for ``file_type="CSV"``. With the default
        ``file_type`` the separator, quote, escape and ``charSet`` apply to the client's reader, and the
        other options are refused (``.tsv`` files are tab-separated without them).
    :param table_schema: explicit ``[{"columnName", "columnType", "fieldLength", ...}]``; columns not
        listed are inferred from the Arrow schema, STRING lengths measured from the data. A CSV column
        declared STRING is read as written (``01067``, ``+4930123``, ``1.50``), never parsed as a number.
    :param duplicate_removal_column: on execute, keep the row with the highest value among duplicate keys.
    :param chunk_size_bytes: cap per chunk (default 128 MiB, at most 1 GiB).
    :param wait_for_completion: wait for DONE (default) or return once the job is submitted.
    :param deferrable: wait in the triggerer, freeing the worker slot
        (default ``[operators] default_deferrable``).
    :param poll_interval: seconds between status polls while waiting.
    :param timeout: seconds to wait for the job before cancelling it and failing.
    :param delete_job_on_success: delete the job once DONE (its chunks are no longer needed).
    :param on_empty: a source with no rows: ``"skip"`` (default; DELTA succeeds without a job, XCom
        ``status: "SKIPPED"``; REPLACE empties the table when the column types are known) or ``"fail"``.
    :param null_values: unquoted CSV values read as NULL (default ``[""]``: an unquoted empty field is
        NULL, a quoted ``""`` an empty string; see docs/data-types.md). ``file_type="PARQUET"`` only.
    :param encoding: the text encoding of CSV files (default UTF-8, with or without a byte-order mark);
        with ``file_type="CSV"`` it is sent as ``csvParsingOptions.charSet``.
    :param sanitize_names: map characters Celonis rejects in column names to ``_`` instead of failing.
    :param compression: parquet codec of the chunks: ``"snappy"`` (default, the only codec real clients
        are known to send), ``"zstd"`` (about a third fewer bytes on the wire) or ``"none"``.
    """

    template_fields: Sequence[str] = (
        "source",
        "deleted_source",
        "target_table",
        "data_pool_id",
        "keys",
        "job_type",
        "table_schema",
    )
    template_fields_renderers = {"keys": "json", "table_schema": "json"}
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
        on_empty: str = "skip",
        null_values: Sequence[str] | None = None,
        encoding: str | None = None,
        sanitize_names: bool = False,
        compression: str = "snappy",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.target_table = target_table
        self.source = hold_callable(source)
        self.deleted_source = hold_callable(deleted_source)
        self.celonis_conn_id = celonis_conn_id
        self.data_pool_id = data_pool_id
        self.job_type = job_type
        self.keys: Any = keys if keys is not None else []  # normalised after rendering
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
        self.on_empty = on_empty
        self.null_values = null_values
        self.encoding = encoding
        self.sanitize_names = sanitize_names
        self.compression = compression
        self._job_id: str | None = None
        self._pool: str | None = None
        self._published: dict[str, Any] | None = None

    @cached_property
    def hook(self) -> CelonisHook:
        return CelonisHook(self.celonis_conn_id)

    def push_spec(self) -> PushSpec:
        self.keys = normalize_keys(self.keys)
        return PushSpec(
            target_table=self.target_table,
            job_type=str(self.job_type),
            keys=self.keys,
            file_type=str(self.file_type),
            table_schema=self.table_schema,
            csv_parsing_options=passthrough_options(
                self.file_type, self.csv_parsing_options, self.encoding, self.null_values
            ),
            connection_id=self.connection_id,
            upsert_strategy=self.upsert_strategy,
            fallback_varchar_length=self.fallback_varchar_length,
            chunk_size_bytes=self.chunk_size_bytes,
            on_empty=self.on_empty,  # type: ignore[arg-type]
            sanitize_names=self.sanitize_names,
            compression=self.compression,
        )

    def push_job(self, pool: str, context: Context | None = None, spec: PushSpec | None = None) -> PushJob:
        store = context.get("task_state_store") if context is not None else None
        return PushJob(
            self.hook,
            pool,
            spec or self.push_spec(),
            self.log,
            state=JobState(store),
            on_job=self._remember_job,
        )

    # -- execution --------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any] | None:
        spec = self.push_spec()
        pool = self._pool = self.hook.resolve_pool(self.data_pool_id)
        job = self.push_job(pool, context, spec)
        resumed = job.resume()
        if resumed is not None:
            self._publish_job(context, resumed)
            if resumed["status"] == "DONE":
                return self._finish(job, resumed, "DONE")
            return self._wait(job, resumed)
        with job.access_checked():  # a wrong key, secret or pool fails here, before any conversion
            if spec.file_type == "CSV":
                parts: Sequence[Any] = prepare_csv(spec, pool, self.source, self.deleted_source)
            else:
                upserted = self._open("source", self.source)
                deleted = self._open("deleted_source", self.deleted_source)
                parts = prepare(spec, pool, upserted, deleted, self.log)
        try:
            report = push_widening(  # a column whose type drifts is widened and the source read again
                job.push,
                parts,
                lambda up, deleted: prepare(spec, pool, up, deleted, self.log),
                job.start_afresh,
                self.log,
            )
            if report.skipped:
                skipped = report.as_xcom("SKIPPED")
                self.log.info(summary_line(skipped, "SKIPPED (nothing to push)"))
                return skipped
            summary = report.as_xcom("NEW")
            job.state.save(summary)
            self._publish_job(context, summary)
            job.execute(self.duplicate_removal_column, on_quota=self._quota_deferral(summary))
        except TaskDeferred:
            raise  # waiting for the execute budget: the job stays, uploaded and NEW
        except BaseException:
            job.abandon()
            raise
        return self._wait(job, summary)

    def _open(self, what: str, source: Any) -> Any:
        if source is None:
            return None
        try:
            return open_source(
                source,
                what=what,
                null_values=self.null_values,
                encoding=self.encoding,
                sanitize_names=self.sanitize_names,
                text_columns=declared_strings(self.table_schema),
                csv_parsing_options=self.csv_parsing_options,
            )
        except CelonisConfigError as exc:
            if isinstance(source, str) and _looks_rendered(source):
                raise CelonisConfigError(
                    f"{exc}. The value looks like a DataFrame or table rendered to text by a Jinja template "
                    "(e.g. an xcom_pull string): pass the upstream task's output itself instead, "
                    "source=upstream_task.output (an XComArg), so the object arrives unrendered"
                ) from exc
            raise

    def _remember_job(self, job_id: str) -> None:
        self._job_id = job_id

    def _publish_job(self, context: Context, summary: Mapping[str, Any]) -> None:
        """The job for the extra link, and the push summary for a resumption after a deferral."""
        self._published = {**summary, "team_url": self.hook.config.base_url}
        context["ti"].xcom_push(key=XCOM_JOB_KEY, value=self._published)

    def _quota_deferral(self, summary: dict[str, Any]) -> Any:
        """Deferrable: wait for the execute window in the triggerer (the worker slot is freed)."""
        if not self.deferrable:
            return None

        def defer(exc: CelonisRateLimitError) -> None:
            from airflow.providers.standard.triggers.temporal import DateTimeTrigger

            self.defer(
                trigger=DateTimeTrigger(moment=exc.resume_at),
                method_name="execute_after_quota",
                kwargs={"summary": summary},
            )

        return defer

    def execute_after_quota(
        self,
        context: Context,
        event: Any = None,  # noqa: ARG002 - Airflow's resume signature; the summary comes in kwargs
        summary: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Resumes when the execute window has reopened: execute (again deferring if needed), then wait."""
        # The deferral's kwargs carry the summary; dag.test() drops them, so the XCom is the fallback.
        summary = dict(summary or context["ti"].xcom_pull(task_ids=self.task_id, key=XCOM_JOB_KEY) or {})
        summary.pop("team_url", None)
        self._pool = str(summary["data_pool_id"])
        job = self.push_job(self._pool, context)
        job.job_id = self._job_id = str(summary["job_id"])
        job.execute(self.duplicate_removal_column, on_quota=self._quota_deferral(summary))
        return self._wait(job, summary)

    def _wait(self, job: PushJob, summary: dict[str, Any]) -> dict[str, Any] | None:
        push = {**summary, "status": "QUEUED"}
        self._job_id = str(push["job_id"])
        if not self.wait_for_completion:
            self.log.info(summary_line(push, "submitted"))
            job.finished()
            return push
        if self.deferrable:
            end_time = time.time() + self.timeout_seconds if self.timeout_seconds else None
            # Strictly later than the trigger's own deadline: the trigger fires first and cancels the job.
            margin = max(DEFER_MARGIN, 3 * self.poll_interval)
            self.defer(
                trigger=DataPushJobTrigger(
                    job_id=self._job_id,
                    data_pool_id=str(push["data_pool_id"]),
                    celonis_conn_id=self.celonis_conn_id,
                    poll_interval=self.poll_interval,
                    end_time=end_time,
                    push=push,
                ),
                method_name="execute_complete",
                timeout=timedelta(seconds=self.timeout_seconds + margin) if self.timeout_seconds else None,
            )
        return self._finish(job, push, job.wait(self.poll_interval, self.timeout_seconds))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resumes after the trigger fired: success returns the push summary, anything else fails."""
        push = dict(event.get("push") or {})
        self._job_id = event.get("job_id")
        self._published = {**push, "team_url": self.hook.config.base_url}
        if event.get("status") == "success":
            return self._finish(
                self.push_job(str(push["data_pool_id"]), context), push, str(event.get("job_status"))
            )
        if event.get("status") == "timeout":
            raise CelonisTimeoutError(event.get("message") or "timed out")
        if event.get("job_status"):
            raise CelonisJobFailedError(
                str(event["job_id"]), str(event["job_status"]), list(event.get("logs") or [])
            )
        raise CelonisJobFailedError(str(event.get("job_id")), "UNKNOWN", [str(event.get("message"))])

    def _finish(self, job: PushJob, push: dict[str, Any], status: str) -> dict[str, Any]:
        report_hook_lineage(self, push.get("data_pool_id"))
        return job.finish(push, status, self.delete_job_on_success)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:  # noqa: ARG002 - OpenLineage's signature
        """OpenLineage: the file, object-storage path or SQL table read -> ``celonis://<host>`` ``<pool>/<table>``
        (``None`` when ``apache-airflow-providers-openlineage`` is not installed)."""
        return openlineage_facets(self)

    def on_kill(self) -> None:
        if self._job_id and self._pool:
            self.hook.cancel_job(self._job_id, self._pool)
            self.log.info("Cancelled Celonis job %s because the task was killed", self._job_id)


def _looks_rendered(text: str) -> bool:
    """A DataFrame's or table's text form (what a Jinja template makes of one): no path spans lines."""
    return "\n" in text or text.startswith("pyarrow.")
