"""DataPushJobTrigger in a real asyncio loop against the emulator."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_celonis.hooks.celonis import CelonisHook
from airflow_provider_celonis.triggers.data_push import DataPushJobTrigger
from tests.helpers import POOL, EmulatorClient


async def first_event(trigger: DataPushJobTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


def executed_job(tmp_path: Path, rows: list[dict[str, Any]], keys: list[str] | None = None) -> str:
    hook = CelonisHook()
    job = hook.create_job("t", "DELTA", keys=keys or [])
    path = tmp_path / "c.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    hook.upload_chunk(job["id"], path)
    hook.execute_job(job["id"])
    return str(job["id"])


@pytest.mark.usefixtures("celonis_conn")
def test_fires_success_on_done(tmp_path: Path) -> None:
    job_id = executed_job(tmp_path, [{"id": 1}])
    event = asyncio.run(first_event(DataPushJobTrigger(job_id, POOL, poll_interval=0.2, push={"rows": 1})))
    assert event["status"] == "success"
    assert event["job_status"] == "DONE"
    assert event["push"] == {"rows": 1}


@pytest.mark.usefixtures("celonis_conn")
def test_fires_error_with_logs(tmp_path: Path) -> None:
    job_id = executed_job(tmp_path, [{"id": 1}], keys=["absent"])
    event = asyncio.run(first_event(DataPushJobTrigger(job_id, POOL, poll_interval=0.2)))
    assert event["status"] == "error"
    assert event["job_status"] == "ERROR"
    assert any("absent" in line for line in event["logs"])


@pytest.mark.usefixtures("celonis_conn", "landed")
def test_deadline_inside_trigger_cancels_job() -> None:
    job = CelonisHook().create_job("t", "DELTA")  # stays NEW: never finishes on its own
    started = time.monotonic()
    trigger = DataPushJobTrigger(job["id"], POOL, poll_interval=5, end_time=time.time() + 1.0)
    event = asyncio.run(first_event(trigger))
    assert event["status"] == "timeout"
    assert time.monotonic() - started < 5  # the deadline cut the 5 s poll interval short
    assert CelonisHook().get_job(job["id"])["status"] == "CANCELED"


@pytest.mark.usefixtures("celonis_conn")
def test_on_kill_cancels_but_cleanup_does_not() -> None:
    hook = CelonisHook()
    first, second = hook.create_job("t", "DELTA"), hook.create_job("t", "DELTA")
    asyncio.run(DataPushJobTrigger(first["id"], POOL).cleanup())
    asyncio.run(DataPushJobTrigger(second["id"], POOL).on_kill())
    assert hook.get_job(first["id"])["status"] == "NEW"
    assert hook.get_job(second["id"])["status"] == "CANCELED"


@pytest.mark.usefixtures("celonis_conn")
def test_serialized_kwargs_are_json_and_secret_free(emulator: Any) -> None:
    classpath, kwargs = DataPushJobTrigger(
        "j1", POOL, poll_interval=3, end_time=123.0, push={"rows": 5}
    ).serialize()
    text = json.dumps(kwargs)
    assert classpath == "airflow_provider_celonis.triggers.data_push.DataPushJobTrigger"
    assert emulator.app_key not in text
    assert "AppKey" not in text
    assert DataPushJobTrigger(**json.loads(text)).serialize() == (classpath, kwargs)


@pytest.mark.usefixtures("celonis_conn")
def test_many_triggers_share_one_loop(tmp_path: Path) -> None:
    job_ids = [executed_job(tmp_path, [{"id": i}]) for i in range(5)]

    async def all_events() -> list[dict[str, Any]]:
        return list(
            await asyncio.gather(
                *(first_event(DataPushJobTrigger(j, POOL, poll_interval=0.2)) for j in job_ids)
            )
        )

    events = asyncio.run(all_events())
    assert [e["job_id"] for e in events] == job_ids
    assert {e["status"] for e in events} == {"success"}


@pytest.mark.usefixtures("celonis_conn")
def test_deadline_leaves_a_job_it_does_not_own() -> None:
    """A sensor's trigger (cancel_on_kill=False) times out without touching the job."""
    job = CelonisHook().create_job("t", "DELTA")
    trigger = DataPushJobTrigger(
        job["id"], POOL, poll_interval=5, end_time=time.time() + 1.0, cancel_on_kill=False
    )
    event = asyncio.run(first_event(trigger))
    assert event["status"] == "timeout"
    assert "left it as it is" in event["message"]
    assert CelonisHook().get_job(job["id"])["status"] == "NEW"


@pytest.mark.usefixtures("celonis_conn")
def test_cancel_at_deadline_is_bounded(landed: EmulatorClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cancel that hangs cannot hold the trigger past its budget (the defer timeout is later still)."""
    from airflow_provider_celonis.triggers import base as trigger_base
    from airflow_provider_celonis.triggers import data_push

    monkeypatch.setattr(trigger_base, "CANCEL_BUDGET", 0.5)
    job = CelonisHook().create_job("t", "DELTA")
    landed.fault(method="POST", path="/cancel$", action="delay", delay_seconds=3, count=1)
    event = asyncio.run(
        first_event(DataPushJobTrigger(job["id"], POOL, poll_interval=5, end_time=time.time() + 0.5))
    )
    assert event["status"] == "timeout"
    assert "could not confirm its cancel" in event["message"]
    assert data_push.DEFER_MARGIN > data_push.CANCEL_BUDGET


@pytest.mark.usefixtures("celonis_conn")
def test_serialized_trigger_without_the_new_flag_keeps_cancelling() -> None:
    """Triggers serialized before ``cancel_at_deadline`` existed behave as before."""
    _, kwargs = DataPushJobTrigger("j1", POOL, cancel_on_kill=False).serialize()
    kwargs.pop("cancel_at_deadline")
    assert DataPushJobTrigger(**kwargs).cancel_at_deadline is False
    assert DataPushJobTrigger("j1", POOL).cancel_at_deadline is True
