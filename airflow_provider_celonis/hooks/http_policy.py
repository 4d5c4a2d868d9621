"""The one HTTP error and retry policy, shared by the sync (requests) and async (aiohttp) paths.

A failed call falls in one of four classes:

* ``NOT_SENT``: the connection was never made, so nothing happened on the server: always retry.
* ``REFUSED``: 429 or 503, the server refused the call without doing it: always retry, honouring
  ``Retry-After``.
* ``AMBIGUOUS``: the request left but no usable answer came back (read timeout, connection dropped,
  502 or 504 from a gateway): the server may or may not have done the work. Idempotent endpoints retry;
  the others first ask the server what happened (see ``Endpoint.on_ambiguous``).
* ``FATAL``: any other error status: raise at once with Celonis' message.

Each Data Push endpoint states its rule in ``ENDPOINTS`` below, next to why a retry is (or is made) safe.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any, Literal

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
)

from airflow_provider_celonis.hooks.errors import (
    CelonisApiError,
    CelonisAuthError,
    CelonisConflictError,
    CelonisNotFoundError,
)


class Outcome(Enum):
    NOT_SENT = "not sent"
    REFUSED = "refused"
    AMBIGUOUS = "ambiguous"
    FATAL = "fatal"


AmbiguousRule = Literal["retry", "reconcile"]


@dataclass(frozen=True)
class Endpoint:
    """One Celonis call: how to reach it and what a retry after an ambiguous failure may do."""

    name: str
    method: str
    path: str  # relative to ``{base}/v1/data-push/{pool}/``
    on_ambiguous: AmbiguousRule
    why: str


ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        Endpoint("list_jobs", "GET", "jobs/", "retry", "a read"),
        Endpoint("get_job", "GET", "jobs/{job_id}", "retry", "a read"),
        Endpoint("list_chunks", "GET", "jobs/{job_id}/chunks", "retry", "a read"),
        Endpoint("delete_job", "DELETE", "jobs/{job_id}", "retry", "deleting twice leaves the same state"),
        Endpoint(
            "cancel_job",
            "POST",
            "jobs/{job_id}/cancel",
            "retry",
            "cancelling twice leaves the same state; a refusal on the retry is read as 'already terminal'",
        ),
        Endpoint(
            "create_job",
            "POST",
            "jobs/",
            "reconcile",
            "a lost answer may hide a created job: the hook lists the pool's jobs and adopts the new NEW job "
            "for this target instead of creating a second one",
        ),
        Endpoint(
            "execute_job",
            "POST",
            "jobs/{job_id}",
            "reconcile",
            "a lost answer may hide an accepted execute: the hook reads the job and treats any status past "
            "NEW as done (a second execute would only get 409 and spend hourly quota)",
        ),
        Endpoint(
            "upload_chunk",
            "POST",
            "jobs/{job_id}/chunks/{kind}",
            "reconcile",
            "a lost answer may hide a stored chunk: the hook lists the job's chunks and skips the re-send "
            "when a chunk with the same MD5 checksum arrived since the attempt began",
        ),
        Endpoint("oauth_token", "POST", "", "retry", "asking for a token twice only yields two tokens"),
    )
}

RETRY_STATUSES_REFUSED = frozenset({429, 503})
RETRY_STATUSES_AMBIGUOUS = frozenset({502, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff settings; ``max_inline_wait`` bounds how long a 429 is waited for inside one call."""

    max_attempts: int = 6
    max_elapsed: float = 300.0
    base_delay: float = 0.5
    max_delay: float = 30.0
    #: A 429 asking for a longer wait (the hourly budget) goes to the operator, which defers or sleeps.
    max_inline_wait: float = 10.0

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: spreads retries of many workers hitting one limit."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** max(attempt - 1, 0)))
        return random.uniform(self.base_delay / 2, max(ceiling, self.base_delay / 2))


class RetryableFailure(Exception):
    """Raised inside a tenacity attempt to ask for another one; carries the error to raise at the end."""

    def __init__(self, error: CelonisApiError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or datetime.now(timezone.utc)
    return max((when - now).total_seconds(), 0.0)


def next_full_utc_hour(now: datetime | None = None) -> datetime:
    """When Celonis' hourly execute window reopens if it did not say (windows start at the full UTC hour)."""
    now = now or datetime.now(timezone.utc)
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def classify_status(status: int) -> Outcome:
    if status in RETRY_STATUSES_REFUSED:
        return Outcome.REFUSED
    if status in RETRY_STATUSES_AMBIGUOUS:
        return Outcome.AMBIGUOUS
    return Outcome.FATAL


def classify_exception(exc: BaseException) -> Outcome | None:
    """Classify a transport exception of requests or aiohttp; None if it is not a transport failure."""
    import aiohttp
    import requests

    if isinstance(exc, requests.exceptions.ConnectTimeout | aiohttp.ClientConnectorError):
        return Outcome.NOT_SENT
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = repr(exc)
        if "NewConnectionError" in text or "NameResolutionError" in text or "Failed to establish" in text:
            return Outcome.NOT_SENT
        return Outcome.AMBIGUOUS
    if isinstance(exc, requests.exceptions.Timeout | TimeoutError):
        return Outcome.AMBIGUOUS
    if isinstance(exc, aiohttp.ClientError):
        return Outcome.AMBIGUOUS
    return None


def describe_transport_error(exc: BaseException) -> str:
    """A short, credential-free description of a transport failure."""
    kind = type(exc).__name__
    detail = str(exc)
    # requests puts the full URL in some messages; our URLs carry no secret, but keep it short.
    detail = re.sub(r"\s+", " ", detail)[:300]
    return f"{kind}: {detail}" if detail else kind


def extract_message(body: bytes | str, content_type: str | None, reason: str = "") -> str:
    """Celonis' own message from an error body, whatever shape it came in."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    stripped = text.strip()
    if not stripped:
        return reason or "empty answer"
    ctype = (content_type or "").lower()
    if "html" in ctype or stripped[:1] == "<":
        title = re.search(r"<title>(.*?)</title>", stripped, re.I | re.S)
        where = f" (title: {title.group(1).strip()[:120]})" if title else ""
        return f"an HTML page instead of a JSON answer{where}"
    try:
        data = json.loads(stripped)
    except ValueError:
        return f"{reason + ': ' if reason else ''}{stripped[:300]}"
    return _message_from_json(data) or stripped[:300]


def _message_from_json(data: Any) -> str:
    if not isinstance(data, dict):
        return ""
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        parts = []
        for err in errors[:10]:
            if isinstance(err, dict):
                attr = err.get("attribute")
                msg = err.get("error") or err.get("errorCode") or ""
                parts.append(f"{attr}: {msg}" if attr else str(msg))
        if parts:
            return "; ".join(parts)
    for key in ("message", "error_description", "shortMessage", "error", "detail"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def error_for_status(call: str, status: int, message: str) -> CelonisApiError:
    """The exception class a status maps to; 401/403 get a hint about what to check."""
    if status in (401, 403):
        hint = (
            " (check the key or OAuth client in the Celonis connection)"
            if status == 401
            else " (the key or OAuth client is not allowed on this data pool, or lacks the scope)"
        )
        return CelonisAuthError(call, status, message + hint)
    if status == 404:
        return CelonisNotFoundError(call, status, message)
    if status == 409:
        return CelonisConflictError(call, status, message)
    return CelonisApiError(call, status, message)


def parse_json_answer(call: str, status: int, body: bytes | str, content_type: str | None) -> Any:
    """Decode a successful answer; an HTML page or broken JSON is an error, not a crash later on."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise CelonisApiError(
            call, status, f"invalid JSON in the answer: {extract_message(text, content_type)}"
        ) from None


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableFailure) and exc.retry_after is not None:
            # Honour the server, plus a little jitter so that many clients do not come back at once.
            return exc.retry_after + random.uniform(0, min(1.0, policy.base_delay))
        return policy.backoff(state.attempt_number)

    return wait


def _retrying_kwargs(policy: RetryPolicy) -> dict[str, Any]:
    return {
        "retry": retry_if_exception_type(RetryableFailure),
        "wait": _wait(policy),
        "stop": stop_after_attempt(policy.max_attempts) | stop_after_delay(policy.max_elapsed),
        "reraise": True,
    }


def sync_retrying(policy: RetryPolicy) -> Retrying:
    return Retrying(**_retrying_kwargs(policy))


def async_retrying(policy: RetryPolicy) -> AsyncRetrying:
    return AsyncRetrying(**_retrying_kwargs(policy))


def judge_response(
    call: str,
    status: int,
    headers: Any,
    body: bytes,
    policy: RetryPolicy,
    on_unauthorized: Callable[[], bool] | None = None,
) -> Any:
    """Turn one HTTP answer into a result, a final error, or a request for another attempt.

    Used as is by the sync and the async transport, so both follow the same rules.
    """
    content_type = headers.get("Content-Type")
    if status < 400:
        return parse_json_answer(call, status, body, content_type)
    message = extract_message(body, content_type, _reason(status))
    error = error_for_status(call, status, message)
    if status == 401 and on_unauthorized is not None and on_unauthorized():
        # An expired or revoked OAuth token: fetch a fresh one and try once more, right away.
        raise RetryableFailure(error, retry_after=0.0)
    outcome = classify_status(status)
    if outcome is Outcome.FATAL:
        raise error
    retry_after = parse_retry_after(headers.get("Retry-After"))
    if status == 429 and retry_after is not None and retry_after > policy.max_inline_wait:
        # Waiting that long belongs to the operator (defer or sleep), not to a blocked HTTP call.
        raise rate_limit_error(call, message, retry_after)
    raise RetryableFailure(error, retry_after)


def judge_transport_error(call: str, exc: BaseException) -> tuple[Outcome, RetryableFailure]:
    """Classify a transport failure; re-raises anything that is not one."""
    outcome = classify_exception(exc)
    if outcome is None:
        raise exc
    return outcome, RetryableFailure(CelonisApiError(call, None, describe_transport_error(exc)))


def rate_limit_error(call: str, message: str, retry_after: float | None) -> CelonisApiError:
    from airflow_provider_celonis.hooks.errors import CelonisRateLimitError

    now = datetime.now(timezone.utc)
    resume_at = now + timedelta(seconds=retry_after) if retry_after is not None else next_full_utc_hour(now)
    return CelonisRateLimitError(call, message, (resume_at - now).total_seconds(), resume_at)


def final_error(failure: RetryableFailure) -> CelonisApiError:
    """The error to raise once retries are spent; a lasting 429 says when the window reopens."""
    err = failure.error
    if err.status == 429:
        return rate_limit_error(err.call, err.api_message, failure.retry_after)
    return err


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
