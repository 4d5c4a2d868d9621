"""``CelonisHook``: the Celonis Data Push API, one method per endpoint, sync and async."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol

import aiohttp
import requests
from airflow.sdk import BaseHook
from requests.adapters import HTTPAdapter
from requests_toolbelt.multipart.encoder import MultipartEncoder

from airflow_provider_celonis.hooks.auth import TOKEN_CACHE, static_authorization, token_request
from airflow_provider_celonis.hooks.connection import CONNECT_TIMEOUT, CelonisConnectionConfig
from airflow_provider_celonis.hooks.errors import (
    CelonisApiError,
    CelonisConfigError,
    CelonisJobFailedError,
    CelonisTimeoutError,
)
from airflow_provider_celonis.hooks.http_policy import (
    ENDPOINTS,
    Outcome,
    RetryableFailure,
    RetryPolicy,
    async_retrying,
    final_error,
    judge_response,
    judge_transport_error,
    sync_retrying,
)

JOB_TYPES = ("DELTA", "REPLACE")
FILE_TYPES = ("PARQUET", "CSV")
UPSERT_STRATEGIES = ("UPSERT_WITH_UNCHANGED_METADATA", "UPSERT_WITH_NULLIFICATION")
#: Answers above this size are decoded in a worker thread by the async path.
LARGE_ANSWER = 64 << 10
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


def _mask(value: str) -> None:
    from airflow.sdk.log import mask_secret

    mask_secret(value)


class CelonisHook(BaseHook):
    """Talks to one Celonis team through the Data Push API.

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
        super().__init__()
        self.celonis_conn_id = celonis_conn_id
        self._retry_policy = retry_policy

    @property
    def retry_policy(self) -> RetryPolicy:
        """Explicit policy, else the defaults with the connection's ``retries``."""
        return self._retry_policy or RetryPolicy(max_attempts=self.config.retries + 1)

    # -- connection -------------------------------------------------------------------------------

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Labels for the classic connection form (the declarative one lives in get_provider_info)."""
        from airflow_provider_celonis.get_provider_info import UI_FIELD_BEHAVIOUR

        return UI_FIELD_BEHAVIOUR

    @cached_property
    def config(self) -> CelonisConnectionConfig:
        conn = self.get_connection(self.celonis_conn_id)
        return self._config_from(conn)

    @staticmethod
    def _config_from(conn: Any) -> CelonisConnectionConfig:
        if conn.password:
            _mask(conn.password)
        return CelonisConnectionConfig.from_connection(conn)

    def get_conn(self) -> requests.Session:
        return self.session

    @cached_property
    def session(self) -> requests.Session:
        """One keep-alive session per hook: chunk uploads reuse the connection."""
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=8, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.verify = self.config.verify
        session.headers["User-Agent"] = "airflow-provider-celonis"
        return session

    def resolve_pool(self, data_pool_id: str | None = None) -> str:
        pool = data_pool_id or self.config.data_pool_id
        if not pool:
            raise CelonisConfigError(
                f"No data pool given: pass data_pool_id or set the extra 'data_pool_id' of connection "
                f"'{self.celonis_conn_id}'"
            )
        return pool

    @property
    def _timeouts(self) -> tuple[float, float]:
        return (CONNECT_TIMEOUT, self.config.timeout)

    # -- transport --------------------------------------------------------------------------------

    def _authorization(self) -> str:
        cfg = self.config
        if cfg.auth_type != "oauth":
            return static_authorization(cfg)
        token = TOKEN_CACHE.get(cfg)
        if token is None:
            form, headers, basic = token_request(cfg)
            answer = self._request("oauth_token", url=cfg.token_url, data=form, headers=headers, basic=basic)
            token = self._store_token(answer)
        return f"Bearer {token}"

    def _store_token(self, answer: Any) -> str:
        if not isinstance(answer, Mapping) or not answer.get("access_token"):
            raise CelonisApiError("oauth_token (POST /oauth2/token)", 200, "the answer holds no access_token")
        token = str(answer["access_token"])
        _mask(token)
        TOKEN_CACHE.put(self.config, token, float(answer.get("expires_in") or 899))
        return token

    def _refresh_once(self) -> Callable[[], bool] | None:
        """A 401 on an OAuth call drops the cached token and allows exactly one more try."""
        if self.config.auth_type != "oauth":
            return None
        used = False

        def refresh() -> bool:
            nonlocal used
            if used:
                return False
            used = True
            TOKEN_CACHE.invalidate(self.config)
            return True

        return refresh

    def _url(self, name: str, pool: str, **params: str) -> str:
        endpoint = ENDPOINTS[name]
        return f"{self.config.data_push_root}/{pool}/{endpoint.path.format(**params)}"

    def _call_label(self, name: str, url: str) -> str:
        path = url.split("://", 1)[-1]
        path = path[path.find("/") :] if "/" in path else "/"
        return f"{name} ({ENDPOINTS[name].method} {path})"

    def _request(
        self,
        name: str,
        *,
        url: str,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        basic: tuple[str, str] | None = None,
        body: Callable[[], tuple[Any, dict[str, str]]] | None = None,
        reconcile: Callable[[], Any] | None = None,
    ) -> Any:
        """Send one logical call under the shared policy (see ``http_policy``)."""
        endpoint = ENDPOINTS[name]
        call = self._call_label(name, url)
        is_token_call = name == "oauth_token"
        refresh = None if is_token_call else self._refresh_once()
        try:
            for attempt in sync_retrying(self.retry_policy):
                with attempt:
                    send_headers = dict(headers or {})
                    send_data = data
                    if body is not None:
                        send_data, extra_headers = body()
                        send_headers.update(extra_headers)
                    if not is_token_call:
                        send_headers["Authorization"] = self._authorization()
                    try:
                        response = self.session.request(
                            endpoint.method,
                            url,
                            json=json,
                            params=params,
                            data=send_data,
                            headers=send_headers,
                            auth=basic,
                            timeout=self._timeouts,
                        )
                    except Exception as exc:
                        outcome, failure = judge_transport_error(call, exc)
                        if outcome is Outcome.AMBIGUOUS and reconcile is not None:
                            found = reconcile()
                            if found is not None:
                                self.log.warning("%s: no answer, but the call took effect; carrying on", call)
                                return found
                        raise failure from exc
                    try:
                        return judge_response(
                            call,
                            response.status_code,
                            response.headers,
                            response.content,
                            self.retry_policy,
                            refresh,
                        )
                    except RetryableFailure:
                        if response.status_code in (502, 504) and reconcile is not None:
                            found = reconcile()
                            if found is not None:
                                return found
                        raise
        except RetryableFailure as failure:
            raise final_error(failure) from None
        raise AssertionError("unreachable")  # pragma: no cover

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
        adopt: Callable[[], dict | None] | None = None,
        **spec: Any,
    ) -> dict:
        """Create a NEW job; after an answer lost on the way back, ``adopt`` names the job that was created
        (None: create another). The default adopts the only NEW job of this table that appeared."""
        pool = self.resolve_pool(data_pool_id)
        body = self.job_body(data_pool_id=pool, target_table=target_table, job_type=job_type, **spec)
        if adopt is None:
            adopt = self._default_adopt(pool, target_table)
        job = self._request("create_job", url=self._url("create_job", pool), json=body, reconcile=adopt)
        self.log.info("Created Celonis data push job %s (%s into %s)", job.get("id"), job_type, target_table)
        return job

    def _default_adopt(self, pool: str, target_table: str) -> Callable[[], dict | None]:
        known = {job.get("id") for job in self.list_jobs(pool)}

        def adopt() -> dict | None:
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

    def list_jobs(self, data_pool_id: str | None = None) -> list[dict]:
        pool = self.resolve_pool(data_pool_id)
        return list(self._request("list_jobs", url=self._url("list_jobs", pool)) or [])

    def get_job(self, job_id: str, data_pool_id: str | None = None) -> dict:
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
        pool = self.resolve_pool(data_pool_id)
        try:
            self._request("cancel_job", url=self._url("cancel_job", pool, job_id=job_id))
        except CelonisApiError as err:
            if err.status is None or err.status >= 500:
                raise
            status = self.get_job(job_id, pool).get("status")
            if status not in TERMINAL_STATUSES:
                raise
            self.log.info("Job %s is already %s; nothing to cancel", job_id, status)

    def delete_job(self, job_id: str, data_pool_id: str | None = None) -> None:
        pool = self.resolve_pool(data_pool_id)
        self._request("delete_job", url=self._url("delete_job", pool, job_id=job_id))

    def list_chunks(self, job_id: str, data_pool_id: str | None = None) -> list[dict]:
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
    ) -> dict:
        """Stream one chunk file as multipart field ``file``; the body is never held in memory.

        ``known_chunk_ids`` are the chunks this push already sent: after a lost answer, a chunk that is
        not among them and carries this file's MD5 is this upload, so the file is not sent twice.
        """
        if kind not in ("upserted", "deleted"):
            raise CelonisConfigError(f"chunk kind must be 'upserted' or 'deleted', got {kind!r}")
        pool = self.resolve_pool(data_pool_id)
        source: UploadableChunk = _PathChunk(Path(chunk)) if isinstance(chunk, str | Path) else chunk
        known = set(known_chunk_ids)
        handles: list[Any] = []

        def body() -> tuple[Any, dict[str, str]]:
            for handle in handles:
                handle.close()
            handles.clear()
            handle = source.open()
            handles.append(handle)
            encoder = MultipartEncoder(fields={"file": (source.name, handle, content_type)})
            return encoder, {"Content-Type": encoder.content_type}

        def stored() -> dict | None:
            digest = stream_md5(source)
            fresh = [c for c in self.list_chunks(job_id, pool) if c.get("id") not in known]
            for chunk in fresh:
                if chunk.get("checksum") and str(chunk["checksum"]).lower() == digest:
                    return chunk
            if len(fresh) == 1 and not fresh[0].get("checksum"):
                return fresh[0]
            return None

        try:
            answer = self._request(
                "upload_chunk",
                url=self._url("upload_chunk", pool, job_id=job_id, kind=kind),
                body=body,
                reconcile=stored,
            )
        finally:
            for handle in handles:
                handle.close()
        return dict(answer or {})

    def wait_for_job(
        self,
        job_id: str,
        data_pool_id: str | None = None,
        poll_interval: float = 10.0,
        timeout: float | None = None,
    ) -> dict:
        """Poll until DONE (returned), ERROR or CANCELED (raised with the job's logs), or the deadline."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = min(1.0, poll_interval)
        while True:
            job = self.get_job(job_id, data_pool_id)
            status = job.get("status")
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
        """Used by the UI's Test button: authenticates and lists the default pool's jobs."""
        try:
            cfg = self.config
            pool = cfg.data_pool_id
            if pool:
                jobs = self.list_jobs(pool)
                return True, f"Connected to {cfg.base_url}: data pool {pool} has {len(jobs)} data push job(s)"
            self._authorization()
            return True, f"Credentials accepted by {cfg.base_url} (set data_pool_id to check pool access)"
        except Exception as exc:
            return False, str(exc)

    # -- async (for the trigger) ------------------------------------------------------------------

    @classmethod
    async def for_trigger(cls, celonis_conn_id: str) -> CelonisHook:
        """A hook whose connection was read without blocking the triggerer's event loop."""
        hook = cls(celonis_conn_id)
        conn = await cls.aget_connection(celonis_conn_id)
        hook.__dict__["config"] = cls._config_from(conn)
        return hook

    async def _asession(self) -> aiohttp.ClientSession:
        """One session per hook, reused by every poll (no handshake and no garbage per request)."""
        session: aiohttp.ClientSession | None = self.__dict__.get("_aio_session")
        if session is None or session.closed:
            ssl: Any = None
            if self.config.verify is False:
                ssl = False
            elif isinstance(self.config.verify, str):
                import ssl as ssl_module

                ssl = ssl_module.create_default_context(cafile=self.config.verify)
            session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(sock_connect=CONNECT_TIMEOUT, sock_read=self.config.timeout),
                connector=aiohttp.TCPConnector(ssl=ssl, limit=4),
                headers={"User-Agent": "airflow-provider-celonis", "Accept": "application/json"},
            )
            self.__dict__["_aio_session"] = session
        return session

    async def aclose(self) -> None:
        """Close the async session (triggers call this when they finish)."""
        session: aiohttp.ClientSession | None = self.__dict__.pop("_aio_session", None)
        if session is not None:
            await session.close()

    async def _arequest(self, name: str, *, url: str, data: Any = None, basic: Any = None) -> Any:
        endpoint = ENDPOINTS[name]
        call = self._call_label(name, url)
        is_token_call = name == "oauth_token"
        refresh = None if is_token_call else self._refresh_once()
        session = await self._asession()
        try:
            async for attempt in async_retrying(self.retry_policy):
                with attempt:
                    headers = {} if is_token_call else {"Authorization": await self._aauthorization()}
                    auth = aiohttp.BasicAuth(*basic) if basic else None
                    try:
                        async with session.request(
                            endpoint.method, url, headers=headers, data=data, auth=auth
                        ) as response:
                            content = await response.read()
                            status, resp_headers = response.status, response.headers
                    except Exception as exc:
                        _, failure = judge_transport_error(call, exc)
                        raise failure from exc
                    if len(content) < LARGE_ANSWER:
                        return judge_response(call, status, resp_headers, content, self.retry_policy, refresh)
                    # A long job list: decode it off the event loop so that other triggers are not stalled.
                    return await asyncio.to_thread(
                        judge_response, call, status, resp_headers, content, self.retry_policy, refresh
                    )
        except RetryableFailure as failure:
            raise final_error(failure) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _aauthorization(self) -> str:
        cfg = self.config
        if cfg.auth_type != "oauth":
            return static_authorization(cfg)
        token = TOKEN_CACHE.get(cfg)
        if token is None:
            form, _, basic = token_request(cfg)
            token = self._store_token(
                await self._arequest("oauth_token", url=cfg.token_url, data=form, basic=basic)
            )
        return f"Bearer {token}"

    async def alist_jobs(self, data_pool_id: str | None = None) -> list[dict]:
        pool = self.resolve_pool(data_pool_id)
        return list(await self._arequest("list_jobs", url=self._url("list_jobs", pool)) or [])

    async def aget_job(self, job_id: str, data_pool_id: str | None = None) -> dict:
        pool = self.resolve_pool(data_pool_id)
        return dict(await self._arequest("get_job", url=self._url("get_job", pool, job_id=job_id)))

    async def acancel_job(self, job_id: str, data_pool_id: str | None = None) -> None:
        pool = self.resolve_pool(data_pool_id)
        try:
            await self._arequest("cancel_job", url=self._url("cancel_job", pool, job_id=job_id))
        except CelonisApiError as err:
            if err.status is None or err.status >= 500:
                raise
            status = (await self.aget_job(job_id, pool)).get("status")
            if status not in TERMINAL_STATUSES:
                raise


def stream_md5(chunk: UploadableChunk, block: int = 8 << 20) -> str:
    """MD5 of a chunk's bytes; computed only after a lost answer, to recognise an upload that landed."""
    digest = hashlib.md5(usedforsecurity=False)
    with chunk.open() as handle:
        while data := handle.read(block):
            digest.update(data)
    return digest.hexdigest()
