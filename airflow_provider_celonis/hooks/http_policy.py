"""The one HTTP error and retry policy: ``decide`` judges every attempt of every call, sync or async.

A failed attempt falls in one of four classes:

* ``NOT_SENT``: the connection was never made, so nothing happened on the server: retry.
* ``REFUSED``: 429 or 503, the server refused the call without doing it: retry, honouring ``Retry-After``
  when there is one (Celonis does not promise it) and backing off with jitter when there is none.
* ``AMBIGUOUS``: the request left but no usable answer came back (read timeout, connection dropped after
  sending, 502 or 504 from a gateway): the server may or may not have done the work. What an endpoint may
  do then is written once, in ``ENDPOINTS`` (``on_ambiguous``): retry, or reconcile (ask the server what
  happened, and retry only if the call did not take effect).
* ``FATAL``: any other error status: fail at once with the status, the call and Celonis' message.

``decide`` is a pure function of (endpoint, attempt, answer or exception, headers, body); the transports
in ``hooks/transport.py`` only send, sleep and reconcile as told.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any

from airflow_provider_celonis.hooks.endpoints import ENDPOINTS, Endpoint
from airflow_provider_celonis.hooks.errors import (
    CelonisApiError,
    CelonisAuthError,
    CelonisConflictError,
    CelonisNotFoundError,
    CelonisRateLimitError,
)

__all__ = ["ENDPOINTS", "Action", "Attempt", "Decision", "Endpoint", "RetryPolicy", "decide"]


class Outcome(Enum):
    NOT_SENT = "not sent"
    REFUSED = "refused"
    AMBIGUOUS = "ambiguous"
    FATAL = "fatal"


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
    # asyncio.TimeoutError is not the builtin TimeoutError before Python 3.11.
    if isinstance(exc, requests.exceptions.Timeout | TimeoutError | asyncio.TimeoutError):
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


class Action(Enum):
    ANSWER = "answer"
    RETRY = "retry"
    RECONCILE = "reconcile"
    FAIL = "fail"


@dataclass(frozen=True)
class Attempt:
    """What one attempt produced: an answer (``status``, ``headers``, ``body``) or a transport ``error``.

    ``number`` counts from 1; ``elapsed`` is the time since the first attempt began; ``can_refresh`` is
    True while an OAuth call still has its one token refresh after a 401.
    """

    number: int
    elapsed: float = 0.0
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: BaseException | None = None
    can_refresh: bool = False


@dataclass(frozen=True)
class Decision:
    """What the transport does next.

    ``ANSWER``: return ``value``. ``FAIL``: raise ``error``. ``RETRY``: sleep ``delay`` seconds (after
    dropping the cached token when ``refresh_token``), then send again. ``RECONCILE``: ask the server
    whether the call took effect; if so return what that found, else do ``then`` (a RETRY or a FAIL).
    """

    action: Action
    value: Any = None
    delay: float = 0.0
    error: BaseException | None = None
    refresh_token: bool = False
    then: Decision | None = None


def decide(
    endpoint: Endpoint, call: str, attempt: Attempt, policy: RetryPolicy, now: datetime | None = None
) -> Decision:
    """The outcome of one attempt of ``endpoint``; pure but for the jitter drawn from ``random``."""
    if attempt.error is not None:
        outcome = classify_exception(attempt.error)
        if outcome is None:  # a bug or an interrupt, not a network failure: never hidden behind a retry
            return Decision(Action.FAIL, error=attempt.error)
        error: CelonisApiError = CelonisApiError(call, None, describe_transport_error(attempt.error))
        retry_after = None
    else:
        status = attempt.status or 0
        content_type = attempt.headers.get("Content-Type")
        if status < 400:
            if not endpoint.reads_answer:
                return Decision(Action.ANSWER)
            try:
                return Decision(Action.ANSWER, parse_json_answer(call, status, attempt.body, content_type))
            except CelonisApiError as exc:
                return Decision(Action.FAIL, error=exc)
        message = extract_message(attempt.body, content_type, _reason(status))
        error = error_for_status(call, status, message)
        if status == 401 and attempt.can_refresh:
            # An expired or revoked OAuth token: fetch a fresh one and try once more, right away.
            return Decision(Action.RETRY, error=error, refresh_token=True)
        outcome = classify_status(status)
        if outcome is Outcome.FATAL:
            return Decision(Action.FAIL, error=error)
        retry_after = parse_retry_after(attempt.headers.get("Retry-After"), now)
    delay = policy.backoff(attempt.number) if retry_after is None else retry_after + _jitter(policy)
    if attempt.status == 429:
        # Inline only while the wait stays short (the per-second limit); the hourly budget, said or not,
        # goes to the operator, which defers or sleeps until the window reopens.
        error = rate_limit_error(call, error.api_message, retry_after, now)
        if attempt.elapsed + delay > policy.max_inline_wait:
            return Decision(Action.FAIL, error=error)
    spent = attempt.number >= policy.max_attempts or attempt.elapsed + delay > policy.max_elapsed
    then = Decision(Action.FAIL, error=error) if spent else Decision(Action.RETRY, delay=delay, error=error)
    if outcome is Outcome.AMBIGUOUS and endpoint.on_ambiguous == "reconcile":
        return Decision(Action.RECONCILE, error=error, then=then)
    return then


def _jitter(policy: RetryPolicy) -> float:
    """A little on top of the server's ``Retry-After``, so that many clients do not come back at once."""
    return random.uniform(0, min(1.0, policy.base_delay))


def rate_limit_error(
    call: str, message: str, retry_after: float | None, now: datetime | None = None
) -> CelonisRateLimitError:
    """A lasting 429: when the window reopens (``Retry-After``, else the next full UTC hour, per the docs)."""
    now = now or datetime.now(timezone.utc)
    resume_at = now + timedelta(seconds=retry_after) if retry_after is not None else next_full_utc_hour(now)
    return CelonisRateLimitError(call, message, (resume_at - now).total_seconds(), resume_at)


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
