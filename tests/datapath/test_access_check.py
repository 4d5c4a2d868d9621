"""The access check runs beside the source's first look (``PushJob.access_checked``): a wrong key still
fails before any job, and ahead of the source's own error."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pyarrow as pa
import pytest

from airflow_provider_celonis.datapath.job import PushJob
from airflow_provider_celonis.datapath.pipeline import PushSpec, prepare
from airflow_provider_celonis.datapath.sources import open_source
from airflow_provider_celonis.hooks.celonis import CelonisHook
from airflow_provider_celonis.hooks.errors import CelonisAuthError, CelonisConfigError
from airflow_provider_celonis.hooks.http_policy import RetryPolicy
from tests.helpers import LIST_JOBS, POOL, EmulatorClient

FAST = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.05)
SPEC = PushSpec(target_table="checked", job_type="REPLACE")


def job(conn_id: str) -> PushJob:
    return PushJob(CelonisHook(conn_id, retry_policy=FAST), POOL, SPEC, logging.getLogger("t"))


def test_the_check_runs_while_the_source_is_looked_at(celonis_conn: Any, landed: EmulatorClient) -> None:
    celonis_conn("checked")
    push = job("checked")
    seen: list[str] = []
    original = push.check_access

    def check() -> None:
        seen.append(threading.current_thread().name)
        original()

    push.check_access = check  # type: ignore[method-assign]
    with push.access_checked():
        parts = prepare(SPEC, POOL, open_source(pa.table({"id": [1]})), None, logging.getLogger("t"))
    assert len(seen) == 1
    assert seen[0].startswith("celonis-access")
    assert push.push(parts).rows == 1
    assert [j["status"] for j in landed.jobs()] == ["NEW"]


def test_a_wrong_key_fails_before_any_job_and_ahead_of_the_source(
    celonis_conn: Any, landed: EmulatorClient
) -> None:
    celonis_conn("wrong", password="wrong-key-0815")
    with pytest.raises(CelonisAuthError, match="HTTP 401") as raised, job("wrong").access_checked():
        open_source("/nonexistent/orders.csv")
    assert isinstance(raised.value.__context__, CelonisConfigError)  # the source's error is kept beside it
    assert "wrong-key-0815" not in str(raised.value)
    assert landed.jobs() == []


def test_the_source_error_is_raised_when_access_is_fine(celonis_conn: Any, landed: EmulatorClient) -> None:
    celonis_conn("fine")
    with pytest.raises(CelonisConfigError, match="does not exist"), job("fine").access_checked():
        open_source("/nonexistent/orders.csv")
    assert landed.jobs() == []


def parts_of(push: PushJob) -> list[Any]:
    with push.access_checked():
        return prepare(SPEC, POOL, open_source(pa.table({"id": [1, 2]})), None, logging.getLogger("t"))


def test_the_jobs_listed_by_the_check_serve_the_first_create(
    celonis_conn: Any, landed: EmulatorClient
) -> None:
    """Creating the job waits for no list of its own: the pool's jobs are listed once, by the access check."""
    celonis_conn("once")
    push = job("once")
    parts = parts_of(push)
    assert push.push(parts).rows == 2
    assert landed.stats()["requests"][LIST_JOBS] == 1
    push.create(parts)  # a later job (a start-over) lists anew: the check's list is used once
    assert landed.stats()["requests"][LIST_JOBS] == 2


def test_a_job_created_since_the_check_blocks_adopting_after_a_lost_answer(
    celonis_conn: Any, landed: EmulatorClient
) -> None:
    """The list is older than the create request: a job another writer created in between shows as a second
    new job for the table, so the lost answer's job is not adopted (it might be the other one)."""
    celonis_conn("older")
    push = job("older")
    parts = parts_of(push)
    other = CelonisHook("older", retry_policy=FAST).create_job("checked", "REPLACE")["id"]
    landed.fault(method="POST", path="/jobs/?$", action="close_after", count=1)
    listed = landed.stats()["requests"][LIST_JOBS]
    created = push.create(parts)
    assert landed.stats()["requests"][LIST_JOBS] == listed + 1  # only the list that found two new jobs
    jobs = {j["id"] for j in landed.jobs()}
    assert len(jobs) == 3  # the other writer's, the lost answer's, and the one this push created instead
    assert created != other
