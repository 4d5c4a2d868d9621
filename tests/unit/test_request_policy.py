"""``http_policy.decide``: the outcome of every attempt of every call, without a network."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
import requests

from airflow_provider_celonis.hooks.errors import (
    CelonisApiError,
    CelonisAuthError,
    CelonisConflictError,
    CelonisNotFoundError,
    CelonisRateLimitError,
)
from airflow_provider_celonis.hooks.http_policy import (
    ENDPOINTS,
    Action,
    Attempt,
    Decision,
    RetryPolicy,
    decide,
)

POLICY = RetryPolicy(max_attempts=4, max_elapsed=100, base_delay=0.5, max_delay=4, max_inline_wait=10)
NOW = datetime(2026, 1, 1, 12, 20, tzinfo=timezone.utc)
JSON = {"Content-Type": "application/json"}


def run(name: str, attempt: Attempt, policy: RetryPolicy = POLICY) -> Decision:
    return decide(ENDPOINTS[name], f"{name} (X /p)", attempt, policy, NOW)


def answer(status: int, body: bytes = b"", number: int = 1, elapsed: float = 0.0, **headers: str) -> Attempt:
    return Attempt(number, elapsed, status, {k.replace("_", "-"): v for k, v in headers.items()}, body)


def lost(exc: BaseException, number: int = 1) -> Attempt:
    return Attempt(number, 0.0, error=exc)


def test_json_answer_is_returned() -> None:
    decision = run("get_job", answer(200, b'{"id": "j", "status": "NEW"}', Content_Type="application/json"))
    assert decision == Decision(Action.ANSWER, {"id": "j", "status": "NEW"})


@pytest.mark.parametrize("body", [b"", b'{"id": "c1", "checksum": "x"}', b"OK", b"<html>stored</html>"])
@pytest.mark.parametrize("status", [200, 201])
def test_no_content_endpoints_ignore_the_answer(status: int, body: bytes) -> None:
    """Upload, execute, cancel and delete are documented as "No Content": nothing in the body matters."""
    for name in ("upload_chunk", "execute_job", "cancel_job", "delete_job"):
        assert run(name, answer(status, body)) == Decision(Action.ANSWER)


def test_broken_json_where_an_answer_is_read_fails() -> None:
    decision = run("list_jobs", answer(200, b"{not json", Content_Type="application/json"))
    assert decision.action is Action.FAIL
    assert "invalid JSON" in str(decision.error)


@pytest.mark.parametrize(
    ("status", "cls", "text"),
    [
        (401, CelonisAuthError, "HTTP 401): Unauthorized (check the key"),
        (403, CelonisAuthError, "HTTP 403): Forbidden (the key or OAuth client is not allowed"),
        (404, CelonisNotFoundError, "HTTP 404): Not Found"),
        (409, CelonisConflictError, "HTTP 409): Conflict"),
        (400, CelonisApiError, "HTTP 400): Bad Request"),
    ],
)
def test_empty_error_bodies_still_name_status_and_call(status: int, cls: type, text: str) -> None:
    decision = run("get_job", answer(status))
    assert decision.action is Action.FAIL
    assert type(decision.error) is cls
    assert text in str(decision.error)
    assert "get_job (X /p)" in str(decision.error)


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"pool locked by another job", "text/plain", "Bad Request: pool locked by another job"),
        (b'{"message": "Pool is archived"}', "application/json", "Pool is archived"),
        (b'{"errors": [{"attribute": "keys", "error": "unknown"}]}', "application/json", "keys: unknown"),
        (b"<html><title>Bad gateway</title></html>", "text/html", "HTML page instead of a JSON answer"),
    ],
)
def test_error_bodies_of_any_shape_give_celonis_message(body: bytes, content_type: str, message: str) -> None:
    decision = run("create_job", answer(400, body, Content_Type=content_type))
    assert decision.action is Action.FAIL
    assert message in str(decision.error)


def test_401_on_oauth_refreshes_the_token_once() -> None:
    first = run("list_jobs", Attempt(1, 0.0, 401, {}, b"", can_refresh=True))
    assert first.action is Action.RETRY
    assert first.refresh_token
    assert first.delay == 0
    second = run("list_jobs", Attempt(2, 0.0, 401, {}, b"", can_refresh=False))
    assert second.action is Action.FAIL
    assert isinstance(second.error, CelonisAuthError)


def test_503_retries_with_backoff_until_attempts_are_spent() -> None:
    for number in range(1, POLICY.max_attempts):
        decision = run("get_job", answer(503, number=number))
        assert decision.action is Action.RETRY
        assert 0 < decision.delay <= POLICY.max_delay
    assert run("get_job", answer(503, number=POLICY.max_attempts)).action is Action.FAIL


def test_max_elapsed_stops_retrying() -> None:
    assert run("get_job", answer(503, elapsed=99.9, number=1)).action is Action.FAIL


def test_retry_after_is_honoured() -> None:
    decision = run("execute_job", answer(429, Retry_After="3"))
    assert decision.action is Action.RETRY
    assert 3 <= decision.delay <= 3.5


def test_429_without_retry_after_backs_off_with_jitter() -> None:
    """Celonis documents 429 as "No Content": no Retry-After is promised."""
    delays = {run("execute_job", answer(429, number=2)).delay for _ in range(20)}
    assert all(POLICY.base_delay / 2 <= d <= 1.0 for d in delays)
    assert len(delays) > 1


def test_429_beyond_inline_wait_resumes_at_the_full_hour_when_unsaid() -> None:
    """The hourly execute budget: the operator waits until the window reopens, at the full UTC hour."""
    decision = run("execute_job", answer(429, elapsed=9.9, number=3))
    assert decision.action is Action.FAIL
    assert isinstance(decision.error, CelonisRateLimitError)
    assert decision.error.resume_at == datetime(2026, 1, 1, 13, 0, tzinfo=timezone.utc)
    assert decision.error.retry_after == 40 * 60


def test_429_with_a_long_retry_after_goes_to_the_operator_at_once() -> None:
    decision = run("execute_job", answer(429, Retry_After="1800"))
    assert decision.action is Action.FAIL
    assert isinstance(decision.error, CelonisRateLimitError)
    assert decision.error.retry_after == 1800


def test_429_when_attempts_are_spent_is_a_rate_limit_error() -> None:
    decision = run("execute_job", answer(429, number=POLICY.max_attempts))
    assert decision.action is Action.FAIL
    assert isinstance(decision.error, CelonisRateLimitError)


@pytest.mark.parametrize("status", [502, 504])
def test_ambiguous_status_follows_the_endpoint_table(status: int) -> None:
    for name, endpoint in ENDPOINTS.items():
        decision = run(name, answer(status))
        if endpoint.on_ambiguous == "reconcile":
            assert decision.action is Action.RECONCILE
            assert decision.then is not None
            assert decision.then.action is Action.RETRY
        else:
            assert decision.action is Action.RETRY


def test_the_table_marks_every_call_that_changes_state_without_idempotence() -> None:
    rules = {name: e.on_ambiguous for name, e in ENDPOINTS.items()}
    assert {n for n, r in rules.items() if r == "reconcile"} == {
        "create_job",
        "execute_job",
        "upload_chunk",
        "delete_job",  # same end state twice, but a resend of one that took effect is answered 404
        "execute_data_job",
        "reload_data_model",
        "partial_load_data_model",
    }


def test_reconcile_on_the_last_attempt_then_fails() -> None:
    decision = run("upload_chunk", answer(502, number=POLICY.max_attempts))
    assert decision.action is Action.RECONCILE
    assert decision.then is not None
    assert decision.then.action is Action.FAIL


@pytest.mark.parametrize(
    "exc",
    [
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectionError("Connection aborted.', RemoteDisconnected"),
        asyncio.TimeoutError(),
    ],
)
def test_answer_lost_after_sending_is_ambiguous(exc: BaseException) -> None:
    assert run("upload_chunk", lost(exc)).action is Action.RECONCILE
    assert run("get_job", lost(exc)).action is Action.RETRY


def test_not_sent_is_retried_even_where_reconcile_is_the_rule() -> None:
    decision = run("upload_chunk", lost(requests.exceptions.ConnectTimeout("connect timed out")))
    assert decision.action is Action.RETRY
    assert "no answer" in str(decision.error)


def test_a_bug_is_not_retried() -> None:
    bug = KeyError("x")
    assert run("get_job", lost(bug)) == Decision(Action.FAIL, error=bug)
