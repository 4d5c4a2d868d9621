"""The two transports of ``CelonisHook``: requests (sync) and aiohttp (async, for triggers).

Both run the same loop: send, hand the answer or the exception to ``http_policy.decide``, then do what it
says (return, raise, sleep and resend, or reconcile). Neither makes a decision of its own.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from functools import cached_property
from importlib.metadata import version
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import requests
from airflow.sdk import BaseHook
from requests.adapters import HTTPAdapter

from airflow_provider_celonis.hooks.auth import TOKEN_CACHE, static_authorization, token_request
from airflow_provider_celonis.hooks.connection import CONNECT_TIMEOUT, CelonisConnectionConfig
from airflow_provider_celonis.hooks.errors import CelonisApiError, CelonisConfigError
from airflow_provider_celonis.hooks.http_policy import (
    ENDPOINTS,
    Action,
    Attempt,
    Decision,
    RetryPolicy,
    decide,
)

#: Answers above this size are decoded in a worker thread by the async path.
LARGE_ANSWER = 64 << 10
#: Bytes read from a streamed body per send. urllib3's 16 KiB default makes a 128 MiB chunk 8,192 reads of
#: the multipart encoder and 8,192 sends: CPU that a push over a fast link takes from conversion.
UPLOAD_BLOCK = 1 << 20
URLLIB3_MAJOR = int(version("urllib3").split(".")[0])
USER_AGENT = "airflow-provider-celonis"


class _UploadAdapter(HTTPAdapter):
    """Sends streamed bodies in ``UPLOAD_BLOCK`` pieces (urllib3 2 reads ``blocksize``; 1.x has none)."""

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        if URLLIB3_MAJOR >= 2:
            pool_kwargs.setdefault("blocksize", UPLOAD_BLOCK)
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)


#: What requests' per-request environment lookup depends on for an http(s) URL (``trust_env``): urllib's
#: proxy variables (REQUEST_METHOD turns HTTP_PROXY off under CGI) and the CA bundle variables.
ENVIRONMENT_NAMES = (
    *(f"{scheme}_proxy" for scheme in ("http", "https", "all", "no")),
    *(f"{scheme}_PROXY" for scheme in ("HTTP", "HTTPS", "ALL", "NO")),
    "REQUEST_METHOD",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


class _Session(requests.Session):
    """Reads the proxy and CA settings from the environment once per host, not on every request.

    With ``trust_env`` (kept: proxy users rely on it) requests walks the whole of ``os.environ`` twice per
    request in urllib's ``getproxies_environment``: about a third of a chunk upload's client CPU here with
    ~75 variables, more in a pod with hundreds. The answer is kept per scheme and host, keyed by the values
    of the variables it depends on, so a changed proxy variable still takes effect at the next request.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[Any, ...], Any] = {}

    def merge_environment_settings(
        self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:  # requests' stubs name a private TypedDict here
        if not self.trust_env or not isinstance(url, str):
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        split = urlsplit(url)
        try:
            key = (
                split.scheme,
                split.netloc,
                tuple(map(os.environ.get, ENVIRONMENT_NAMES)),
                tuple(sorted((proxies or {}).items())),
                stream,
                verify,
                cert,
                tuple(sorted(self.proxies.items())),
                self.stream,
                self.verify,
                self.cert,
            )
            settings = self._environment.get(key)
        except TypeError:  # an unhashable argument: no caching
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        if settings is None:
            settings = self._environment[key] = dict(
                super().merge_environment_settings(url, proxies, stream, verify, cert)
            )
        return {**settings, "proxies": dict(settings["proxies"])}


def _mask(value: str) -> None:
    from airflow.sdk.log import mask_secret

    mask_secret(value)


class CallLoop:
    """The state of one logical call across its attempts: counts, clock, the one token refresh."""

    def __init__(self, name: str, call: str, policy: RetryPolicy, can_refresh: bool, log: Any) -> None:
        self.endpoint = ENDPOINTS[name]
        self.call, self.policy, self.can_refresh, self.log = call, policy, can_refresh, log
        self.number = 0
        self.started = time.monotonic()

    def judge(self, status: int | None, headers: Mapping[str, str], body: bytes, error: Any) -> Decision:
        self.number += 1
        attempt = Attempt(
            self.number, time.monotonic() - self.started, status, headers, body, error, self.can_refresh
        )
        decision = decide(self.endpoint, self.call, attempt, self.policy)
        if decision.refresh_token:
            self.can_refresh = False
        if decision.action is Action.RECONCILE:
            why = self.endpoint.why
            self.log.warning("%s: %s; asking Celonis what happened (%s)", self.call, decision.error, why)
        elif decision.action is Action.RETRY:
            self.log.info("%s: %s; retrying in %.1fs", self.call, decision.error, decision.delay)
        return decision

    def reconciled(self, decision: Decision, found: Any) -> Decision:
        """After a reconcile: the call took effect (``found``), or do what ``decide`` planned otherwise."""
        if found is not None:
            self.log.warning("%s: no answer, but the call took effect; carrying on", self.call)
            return Decision(Action.ANSWER, found)
        assert decision.then is not None
        return decision.then


def outcome_of(decision: Decision) -> Any:
    """The value of an ANSWER, or the error of a FAIL raised without the transport's chain."""
    if decision.action is Action.ANSWER:
        return decision.value
    assert decision.error is not None
    raise decision.error from None


class CelonisTransport(BaseHook):
    """Connection, sessions, authorization and the request loop; endpoints live in ``CelonisHook``."""

    def __init__(self, celonis_conn_id: str, retry_policy: RetryPolicy | None = None) -> None:
        super().__init__()
        self.celonis_conn_id = celonis_conn_id
        self._retry_policy = retry_policy

    @property
    def retry_policy(self) -> RetryPolicy:
        """Explicit policy, else the defaults with the connection's ``retries``."""
        return self._retry_policy or RetryPolicy(max_attempts=self.config.retries + 1)

    @cached_property
    def config(self) -> CelonisConnectionConfig:
        conn = self.get_connection(self.celonis_conn_id)
        return self._config_from(conn)

    @staticmethod
    def _config_from(conn: Any) -> CelonisConnectionConfig:
        if conn.password:
            _mask(conn.password)
        return CelonisConnectionConfig.from_connection(conn)

    @cached_property
    def session(self) -> requests.Session:
        """One keep-alive session per hook: chunk uploads reuse the connection."""
        session = _Session()
        adapter = _UploadAdapter(pool_connections=2, pool_maxsize=8, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.verify = self.config.verify
        session.headers["User-Agent"] = USER_AGENT
        return session

    def resolve_pool(self, data_pool_id: str | None = None) -> str:
        pool = data_pool_id or self.config.data_pool_id
        if not pool:
            raise CelonisConfigError(
                f"No data pool given: pass data_pool_id or set the extra 'data_pool_id' of connection "
                f"'{self.celonis_conn_id}'"
            )
        return pool

    def _url(self, name: str, pool: str, **params: str) -> str:
        endpoint = ENDPOINTS[name]
        if endpoint.api == "integration":
            return f"{self.config.integration_root}/{endpoint.path.format(pool=pool, **params)}"
        return f"{self.config.data_push_root}/{pool}/{endpoint.path.format(**params)}"

    # -- authorization ----------------------------------------------------------------------------

    def _known_authorization(self) -> str | None:
        """The header when no token request is needed (a key, or a cached OAuth token), else None."""
        cfg = self.config
        if cfg.auth_type != "oauth":
            return static_authorization(cfg)
        token = TOKEN_CACHE.get(cfg)
        return None if token is None else f"Bearer {token}"

    def _token_call(self) -> dict[str, Any]:
        form, headers, basic = token_request(self.config)
        return {"url": self.config.token_url, "data": form, "headers": headers, "basic": basic}

    def _bearer(self, answer: Any) -> str:
        """Cache the token of a token answer and return its header."""
        if not isinstance(answer, Mapping) or not answer.get("access_token"):
            raise CelonisApiError("oauth_token (POST /oauth2/token)", 200, "the answer holds no access_token")
        token = str(answer["access_token"])
        _mask(token)
        TOKEN_CACHE.put(self.config, token, float(answer.get("expires_in") or 899))
        return f"Bearer {token}"

    def _authorization(self) -> str:
        return self._known_authorization() or self._bearer(self._request("oauth_token", **self._token_call()))

    async def _aauthorization(self) -> str:
        known = self._known_authorization()
        return known or self._bearer(await self._arequest("oauth_token", **self._token_call()))

    # -- the loop ---------------------------------------------------------------------------------

    def _loop(self, name: str, url: str) -> CallLoop:
        path = url.split("://", 1)[-1]
        path = path[path.find("/") :] if "/" in path else "/"
        call = f"{name} ({ENDPOINTS[name].method} {path})"
        can_refresh = name != "oauth_token" and self.config.auth_type == "oauth"
        return CallLoop(name, call, self.retry_policy, can_refresh, self.log)

    def _headers(
        self, name: str, headers: Mapping[str, str] | None, authorization: str | None
    ) -> dict[str, str]:
        send = dict(headers or {})
        if name != "oauth_token" and authorization:
            send["Authorization"] = authorization
        return send

    def _before_retry(self, decision: Decision) -> None:
        if decision.refresh_token:
            TOKEN_CACHE.invalidate(self.config)

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
        """One logical call: attempts judged by ``decide``; ``reconcile`` answers "did it take effect?".

        ``body`` gives a fresh request body (and its headers) per attempt, for streamed uploads.
        """
        loop = self._loop(name, url)
        _require_reconcile(name, reconcile)
        while True:
            send_data, extra = body() if body is not None else (data, {})
            auth = None if name == "oauth_token" else self._authorization()
            try:
                response = self.session.request(
                    loop.endpoint.method,
                    url,
                    json=json,
                    params=params,
                    data=send_data,
                    headers={**self._headers(name, headers, auth), **extra},
                    auth=basic,
                    timeout=(CONNECT_TIMEOUT, self.config.timeout),
                )
            except Exception as exc:  # noqa: BLE001 - judged by the request loop (retry, reconcile or fail)
                decision = loop.judge(None, {}, b"", exc)
            else:
                self._saw_server_clock(response.headers.get("Date"))
                decision = loop.judge(response.status_code, response.headers, response.content, None)
            if decision.action is Action.RECONCILE:
                decision = loop.reconciled(decision, reconcile() if reconcile else None)
            if decision.action is not Action.RETRY:
                return outcome_of(decision)
            self._before_retry(decision)
            time.sleep(decision.delay)

    # -- the server's clock -----------------------------------------------------------------------

    def _saw_server_clock(self, date: str | None) -> None:
        """Remember the last answer's ``Date`` (whole seconds of the server's clock) and when it came."""
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(date).timestamp() if date else None
        except (TypeError, ValueError):
            when = None
        self.__dict__["_server_clock"] = None if when is None else (when, time.monotonic())

    def past_server_second(self) -> int | None:
        """Epoch ms of the server's next full second after the last answer, once the server's clock has surely
        passed it (at most a second's wait); None when the last answer had no ``Date``.

        A run that started before that answer was made started before this moment, and one started by a call
        sent now starts after it, whatever a lagging status showed in that answer.
        """
        seen = self.__dict__.get("_server_clock")
        if seen is None:
            return None
        date, at = seen
        time.sleep(max(0.0, 1.0 - (time.monotonic() - at)))
        return int((int(date) + 1) * 1000)

    # -- async (for triggers) ---------------------------------------------------------------------

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
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            )
            self.__dict__["_aio_session"] = session
        return session

    async def aclose(self) -> None:
        """Close the async session (triggers call this when they finish)."""
        session: aiohttp.ClientSession | None = self.__dict__.pop("_aio_session", None)
        if session is not None:
            await session.close()

    async def _arequest(
        self,
        name: str,
        *,
        url: str,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        basic: tuple[str, str] | None = None,
    ) -> Any:
        """The async twin of ``_request`` for calls that are safe to retry (reads, cancel, token)."""
        loop = self._loop(name, url)
        _require_reconcile(name, None)
        session = await self._asession()
        while True:
            auth = None if name == "oauth_token" else await self._aauthorization()
            try:
                async with session.request(
                    loop.endpoint.method,
                    url,
                    headers=self._headers(name, headers, auth),
                    data=data,
                    auth=aiohttp.BasicAuth(*basic) if basic else None,
                ) as response:
                    content = await response.read()
                    status, answer_headers = response.status, response.headers
            except Exception as exc:  # noqa: BLE001 - judged by the request loop (retry, reconcile or fail)
                decision = loop.judge(None, {}, b"", exc)
            else:
                judged = (status, answer_headers, content, None)
                # A long job list is decoded off the event loop so that other triggers are not stalled.
                small = len(content) < LARGE_ANSWER
                decision = loop.judge(*judged) if small else await asyncio.to_thread(loop.judge, *judged)
            if decision.action is not Action.RETRY:
                return outcome_of(decision)
            self._before_retry(decision)
            await asyncio.sleep(decision.delay)


def _require_reconcile(name: str, reconcile: Callable[[], Any] | None) -> None:
    """An endpoint whose table entry says "reconcile" is never sent without a way to reconcile."""
    if ENDPOINTS[name].on_ambiguous == "reconcile" and reconcile is None:
        raise TypeError(f"{name} needs a reconcile callback (see ENDPOINTS['{name}'].why)")
