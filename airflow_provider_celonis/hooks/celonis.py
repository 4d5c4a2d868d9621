"""``CelonisHook``: the Celonis Data Push API, one method per endpoint (sync, and async for triggers).

The Integration API calls (data jobs, data model loads) live in ``hooks/integration.py``.

The transports, authorization and the retry loop live in ``hooks/transport.py``; every attempt's outcome
is decided by ``http_policy.decide``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol

import requests
from requests_toolbelt.multipart.encoder import MultipartEncoder

from airflow_provider_celonis.hooks.errors import (
    CelonisApiError,
    CelonisConfigError,
    CelonisJobFailedError,
    CelonisNotFoundError,
    CelonisTimeoutError,
)
from airflow_provider_celonis.hooks.http_policy import RetryPolicy
from airflow_provider_celonis.hooks.integration import IntegrationApi
from airflow_provider_celonis.hooks.reconcile import chunk_upload_stored
from airflow_provider_celonis.hooks.status_log import StatusLog

JOB_TYPES = ("DELTA", "REPLACE")
FILE_TYPES = ("PARQUET", "CSV")
UPSERT_STRATEGIES = ("UPSERT_WITH_UNCHANGED_METADATA", "UPSERT_WITH_NULLIFICATION")
TERMINAL_STATUSES = frozenset({"DONE", "ERROR", "CANCELED"})
ACTIVE_STATUSES = frozenset({"QUEUED", "RUNNING"})
ChunkKind = Literal["upserted", "deleted"]


class UploadableChunk(Protocol):
    """Anything that can be streamed as a chunk: a name and a fresh binary stream per attempt."""

    @property
    def name(self) -> str: ...

    def open(self) -> Any:
        """A fresh readable binary stream (file-like with ``read``); closed by the caller."""
        ...


class _PathChunk:
    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def name(self) -> str:
        return self.path.name

    def open(self) -> BinaryIO:
        return self.path.open("rb")


def _refused_as_terminal(err: CelonisApiError) -> bool:
    """A 4xx to cancel may mean "already DONE/ERROR/CANCELED": worth one look at the job."""
    return err.status is not None and err.status < 500


class CelonisHook(IntegrationApi):
    """Talks to one Celonis team: the Data Push API here, the Integration API (data jobs, data model loads)
    in ``IntegrationApi``.

    :param celonis_conn_id: the ``celonis`` connection (team URL, key or OAuth client, default pool).
    :param retry_policy: backoff settings; the defaults suit a nightly push.
    """

    conn_name_attr = "celonis_conn_id"
    default_conn_name = "celonis_default"
    conn_type = "celonis"
    hook_name = "Celonis"

    def __init__(
        self, celonis_conn_id: str = default_conn_name, retry_policy: RetryPolicy | None = None
    ) -> None:
        super().__init__(celonis_conn_id, retry_policy)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Labels for the classic connection form (the declarative one lives in get_provider_info)."""
        from airflow_provider_celonis.get_provider_info import UI_FIELD_BEHAVIOUR

        return UI_FIELD_BEHAVIOUR

    def get_conn(self) -> requests.Session:
        return self.session

    # -- Data Push endpoints ----------------------------------------------------------------------

    @staticmethod
    def job_body(
        *,
        data_pool_id: str,
        target_table: str,
        job_type: str,
        file_type: str = "PARQUET",
        keys: Sequence[str] | None = None,
        table_schema: Sequence[Mapping[str, Any]] | None = None,
        csv_parsing_options: Mapping[str, Any] | None = None,
        connection_id: str | None = None,
        upsert_strategy: str | None = None,
        fallback_varchar_length: int | None = None,
    ) -> dict[str, Any]:
        """A DataPushJob body with Celonis' field names, checked before anything is sent."""
        job_type = str(job_type).upper()
        if job_type not in JOB_TYPES:
            raise CelonisConfigError(f"job_type must be one of {', '.join(JOB_TYPES)}, got {job_type!r}")
        file_type = str(file_type).upper()
        if file_type not in FILE_TYPES:
            raise CelonisConfigError(f"file_type must be one of {', '.join(FILE_TYPES)}, got {file_type!r}")
        if upsert_strategy is not None and upsert_strategy not in UPSERT_STRATEGIES:
            raise CelonisConfigError(
                f"upsert_strategy must be one of {', '.join(UPSERT_STRATEGIES)}, got {upsert_strategy!r}"
            )
        if not target_table or not str(target_table).strip():
            raise CelonisConfigError("target_table is empty")
        body: dict[str, Any] = {
            "targetName": target_table,
            "type": job_type,
            "fileType": file_type,
            "dataPoolId": data_pool_id,
            "keys": list(keys or []),
        }
        if table_schema is not None:
            body["tableSchema"] = {"tableName": target_table, "columns": [dict(c) for c in table_schema]}
        if csv_parsing_options:
            body["csvParsingOptions"] = dict(csv_parsing_options)
        if connection_id:
            body["connectionId"] = connection_id
        if upsert_strategy:
            body["upsertStrategy"] = upsert_strategy
        if fallback_varchar_length is not None:
            body["fallbackVarcharLength"] = int(fallback_varchar_length)
        return body

    def create_job(
        self,
        target_table: str,
        job_type: str,
        data_pool_id: str | None = None,
        adopt: Callable[[], dict[str, Any] | None] | None = None,
        **spec: Any,
    ) -> dict[str, Any]:
        """Create a NEW job; after an answer lost on the way back, ``adopt`` names the job that was created
        (None: create another). The default adopts the only NEW job of this table that appeared."""
        pool = self.resolve_pool(data_pool_id)
        body = self.job_body(data_pool_id=pool, target_table=target_table, job_type=job_type, **spec)
        if adopt is None:
            adopt = self._default_adopt(pool, target_table)
        job = self._request("create_job", url=self._url("create_job", pool), json=body, reconcile=adopt)
        if not isinstance(job, Mapping) or not job.get("id"):
            # The reference lists "201 Created No Content": the job exists but its id was not given.
            job = adopt()
            if job is None:
                raise CelonisApiError(
                    f"create_job (POST {self._url('create_job', pool).split('://', 1)[-1]})",
                    None,
                    "the answer holds no job id and the pool's job list shows no single new NEW job for "
                    f"{target_table!r}; a NEW job may be left for Celonis to expire",
                )
        self.log.info("Created Celonis data push job %s (%s into %s)", job.get("id"), job_type, target_table)
        return dict(job)

    def _default_adopt(self, pool: str, target_table: str) -> Callable[[], dict[str, Any] | None]:
        known = {job.get("id") for job in self.list_jobs(pool)}

        def adopt() -> dict[str, Any] | None:
            fresh = [
                job
                for job in self.list_jobs(pool)
                if job.get("id") not in known
                and job.get("status") == "NEW"
                and str(job.get("targetName", "")).lower() == target_table.lower()
            ]
            if len(fresh) == 1:
                return fresh[0]
            return None

        return adopt

    def list_jobs(self, data_pool_id: str | None = None) -> list[dict[str, Any]]:
        pool = self.resolve_pool(data_pool_id)
        return list(self._request("list_jobs", url=self._url("list_jobs", pool)) or [])

    def get_job(self, job_id: str, data_pool_id: str | None = None) -> dict[str, Any]:
        pool = self.resolve_pool(data_pool_id)
        return dict(self._request("get_job", url=self._url("get_job", pool, job_id=job_id)))

    def execute_job(
        self, job_id: str, data_pool_id: str | None = None, duplicate_removal_column: str | None = None
    ) -> None:
        """Submit the job; a 429 beyond the inline wait raises ``CelonisRateLimitError`` with ``resume_at``."""
        pool = self.resolve_pool(data_pool_id)
        params = {"duplicateRemovalColumn": duplicate_removal_column} if duplicate_removal_column else None

        def already_executed() -> bool | None:
            return True if self.get_job(job_id, pool).get("status") != "NEW" else None

        self._request(
            "execute_job",
            url=self._url("execute_job", pool, job_id=job_id),
            params=params,
            reconcile=already_executed,
        )
        self.log.info("Executed Celonis data push job %s", job_id)

    def cancel_job(self, job_id: str, data_pool_id: str | None = None) -> None:
        """Cancel a job; a job that is already DONE, ERROR or CANCELED is left as it is."""
        pool = self.resolve_pool(data_pool_id)
        try:
            self._request("cancel_job", url=self._url("cancel_job", pool, job_id=job_id))
        except CelonisApiError as err:
            if not _refused_as_terminal(err):
                raise
            self._already_terminal(err, job_id, self.get_job(job_id, pool))

    def _already_terminal(self, err: CelonisApiError, job_id: str, job: Mapping[str, Any]) -> None:
        """After a refused cancel: fine if the job already ended, else the refusal stands."""
        if job.get("status") not in TERMINAL_STATUSES:
            raise err
        self.log.info("Job %s is already %s; nothing to cancel", job_id, job.get("status"))

    def delete_job(self, job_id: str, data_pool_id: str | None = None) -> None:
        """Delete a job. After a lost answer the job is looked up: gone means deleted (a resend would get
        404 for a delete that took effect), still there means send again."""
        pool = self.resolve_pool(data_pool_id)

        def gone() -> dict[str, Any] | None:
            try:
                self.get_job(job_id, pool)
            except CelonisNotFoundError:
                return {}
            return None

        self._request("delete_job", url=self._url("delete_job", pool, job_id=job_id), reconcile=gone)

    def list_chunks(self, job_id: str, data_pool_id: str | None = None) -> list[dict[str, Any]]:
        pool = self.resolve_pool(data_pool_id)
        return list(self._request("list_chunks", url=self._url("list_chunks", pool, job_id=job_id)) or [])

    def upload_chunk(
        self,
        job_id: str,
        chunk: str | Path | UploadableChunk,
        kind: ChunkKind = "upserted",
        data_pool_id: str | None = None,
        known_chunk_ids: Iterable[str] = (),
        content_type: str = "application/octet-stream",
        chunks_before: int | None = None,
    ) -> dict[str, Any]:
        """Stream one chunk file as multipart field ``file``; the body is never held in memory.

        Celonis answers 200/201 with no content, so nothing is read from the answer. The job has one
        writer, so what it held before the upload decides a lost answer from the list taken afterwards:
        one more chunk means stored, as many as before means send again, and anything else raises
        ``ChunkUploadUndecided`` (the caller starts the job over rather than guess). ``chunks_before``: how
        many chunks the job holds, from a caller that counts its own confirmed uploads (a push does); it
        saves listing the job before every upload, a round trip per chunk. None: the list is taken first.
        Returns the chunk's record from the listing when a lost answer was reconciled and the record can be
        told apart, else ``{"kind": ..., "name": ...}`` (no id: the answer carries none).
        ``known_chunk_ids`` is accepted for compatibility and unused.
        """
        del known_chunk_ids
        if kind not in ("upserted", "deleted"):
            raise CelonisConfigError(f"chunk kind must be 'upserted' or 'deleted', got {kind!r}")
        if chunks_before is not None and (isinstance(chunks_before, bool) or chunks_before < 0):
            raise CelonisConfigError(
                f"chunks_before must be a count of chunks (0 or more), got {chunks_before!r}"
            )
        pool = self.resolve_pool(data_pool_id)
        source: UploadableChunk = _PathChunk(Path(chunk)) if isinstance(chunk, str | Path) else chunk
        before = self.list_chunks(job_id, pool) if chunks_before is None else chunks_before
        handles: list[Any] = []

        def body() -> tuple[Any, dict[str, str]]:
            for handle in handles:
                handle.close()
            handles.clear()
            handle = source.open()
            handles.append(handle)
            encoder = MultipartEncoder(fields={"file": (source.name, handle, content_type)})
            return encoder, {"Content-Type": encoder.content_type}

        def stored() -> dict[str, Any] | None:
            return chunk_upload_stored(job_id, before, self.list_chunks(job_id, pool))

        try:
            found = self._request(
                "upload_chunk",
                url=self._url("upload_chunk", pool, job_id=job_id, kind=kind),
                body=body,
                reconcile=stored,
            )
        finally:
            for handle in handles:
                handle.close()
        return dict(found) if isinstance(found, Mapping) and found else {"kind": kind, "name": source.name}

    def wait_for_job(
        self,
        job_id: str,
        data_pool_id: str | None = None,
        poll_interval: float = 10.0,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Poll until DONE (returned), ERROR or CANCELED (raised with the job's logs), or the deadline.

        The status is logged when it changes and every ``[celonis] status_log_interval`` seconds while not.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = min(1.0, poll_interval)
        status_log = StatusLog(self.log, job_id)
        while True:
            job = self.get_job(job_id, data_pool_id)
            status = job.get("status")
            status_log.seen(status)
            if status == "DONE":
                return job
            if status in TERMINAL_STATUSES:
                raise CelonisJobFailedError(job_id, str(status), list(job.get("logs") or []))
            if deadline is not None and time.monotonic() + delay > deadline:
                raise CelonisTimeoutError(
                    f"Celonis data push job {job_id} still {status} after {timeout:.0f}s; giving up waiting"
                )
            time.sleep(delay)
            # Start fast (small jobs finish in seconds), then settle at the configured interval.
            delay = min(poll_interval, delay * 2)

    def test_connection(self) -> tuple[bool, str]:
        """The UI's Test button: a call that needs the key (or OAuth client) to be right, in every case.

        With a ``data_pool_id``, lists that pool's jobs (proves key and pool access). Without one, a key
        cannot be checked without a pool: the Data Push API has no pool-free call. The test then lists the
        jobs of a pool that does not exist: a wrong key answers 401, a right one 403 or 404, and the
        message says that pool access was not tested.
        """
        try:
            cfg = self.config
            pool = cfg.data_pool_id
            if pool:
                jobs = self.list_jobs(pool)
                return True, f"Connected to {cfg.base_url}: data pool {pool} has {len(jobs)} data push job(s)"
            return self._test_key_without_pool()
        except Exception as exc:  # noqa: BLE001 - test_connection reports every failure as its message
            return False, str(exc)

    def _test_key_without_pool(self) -> tuple[bool, str]:
        from airflow_provider_celonis.hooks.errors import CelonisAuthError, CelonisNotFoundError

        try:
            self.list_jobs(PROBE_POOL)
        except CelonisNotFoundError:
            pass  # the key was accepted; the probe pool does not exist, as intended
        except CelonisAuthError as err:
            if err.status == 401:
                raise
        return True, (
            f"Credentials accepted by {self.config.base_url}; pool access NOT tested: set the extra "
            "'data_pool_id' to check it"
        )

    # -- async (for the trigger) ------------------------------------------------------------------

    @classmethod
    async def for_trigger(cls, celonis_conn_id: str) -> CelonisHook:
        """A hook whose connection was read without blocking the triggerer's event loop.

        Checking the connection and registering its secret with the masker (whose first use compiles its
        patterns: ~45 ms) run in a worker thread too.
        """
        hook = cls(celonis_conn_id)
        conn = await cls.aget_connection(celonis_conn_id)
        hook.__dict__["config"] = await asyncio.to_thread(cls._config_from, conn)
        return hook

    async def alist_jobs(self, data_pool_id: str | None = None) -> list[dict[str, Any]]:
        pool = self.resolve_pool(data_pool_id)
        return list(await self._arequest("list_jobs", url=self._url("list_jobs", pool)) or [])

    async def aget_job(self, job_id: str, data_pool_id: str | None = None) -> dict[str, Any]:
        pool = self.resolve_pool(data_pool_id)
        return dict(await self._arequest("get_job", url=self._url("get_job", pool, job_id=job_id)))

    async def acancel_job(self, job_id: str, data_pool_id: str | None = None) -> None:
        pool = self.resolve_pool(data_pool_id)
        try:
            await self._arequest("cancel_job", url=self._url("cancel_job", pool, job_id=job_id))
        except CelonisApiError as err:
            if not _refused_as_terminal(err):
                raise
            self._already_terminal(err, job_id, await self.aget_job(job_id, pool))


#: A pool id no team has: listing its jobs checks the key without needing pool access (see test_connection).
PROBE_POOL = "00000000-0000-0000-0000-000000000000"
