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
from tests.helpers import POOL, EmulatorClient

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
