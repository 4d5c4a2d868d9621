"""Fault injection: answers, dropped connections, delays and job errors."""

from __future__ import annotations

import time

import pytest
import requests

from tests.emulator.api_client import Api, parquet_bytes


def add_fault(api: Api, **fault: object) -> requests.Response:
    r = api.session.post(f"{api.emu.url}/emulator/api/faults", json=fault)
    assert r.status_code == 200, r.text
    return r


@pytest.fixture(autouse=True)
def _clear_faults(api: Api) -> None:
    api.session.delete(f"{api.emu.url}/emulator/api/faults")


def test_status_fault_answers_without_processing(api: Api) -> None:
    add_fault(
        api, method="POST", path=rf"/{api.pool}/jobs/?$", count=2, status=503, headers={"Retry-After": "2"}
    )
    assert len(api.session.get(f"{api.emu.url}/emulator/api/faults").json()) == 1
    for _ in range(2):
        r = api.session.post(api.base, json={"targetName": "t", "type": "DELTA"})
        assert r.status_code == 503
        assert r.headers["Retry-After"] == "2"
    assert api.session.get(api.base).json() == []
    assert api.create()["status"] == "NEW"
    assert api.session.get(f"{api.emu.url}/emulator/api/faults").json() == []


def test_close_drops_connection_before_processing(api: Api) -> None:
    add_fault(api, method="POST", path=rf"/{api.pool}/jobs/?$", action="close")
    with pytest.raises(requests.ConnectionError):
        api.session.post(api.base, json={"targetName": "t", "type": "DELTA"})
    assert api.session.get(api.base).json() == []


def test_close_after_processes_then_drops(api: Api) -> None:
    job = api.create()
    add_fault(api, path="/chunks/upserted$", action="close_after")
    with pytest.raises(requests.ConnectionError):
        api.upload(job["id"], parquet_bytes({"id": [1]}))
    assert len(api.session.get(f"{api.base}{job['id']}/chunks").json()) == 1


def test_delay_then_normal_answer(api: Api) -> None:
    add_fault(api, method="GET", path=rf"/{api.pool}/jobs/?$", action="delay", delay_seconds=0.3)
    start = time.monotonic()
    assert api.session.get(api.base).status_code == 200
    assert time.monotonic() - start >= 0.3


def test_next_job_error(api: Api) -> None:
    r = api.session.post(
        f"{api.emu.url}/emulator/api/faults/next-job-error", json={"message": "disk on fire"}
    )
    assert r.status_code == 200
    job = api.push("t", "DELTA", [parquet_bytes({"id": [1]})])
    assert job["status"] == "ERROR"
    assert job["logs"] == ["disk on fire"]
    assert api.push("t", "DELTA", [parquet_bytes({"id": [1]})])["status"] == "DONE"


@pytest.mark.parametrize(
    "fault", [{"path": "x", "action": "explode"}, {"action": "status"}, {"path": "(", "action": "status"}]
)
def test_invalid_faults_are_400(api: Api, fault: dict[str, str]) -> None:
    assert api.session.post(f"{api.emu.url}/emulator/api/faults", json=fault).status_code == 400


def test_fault_api_needs_credentials(api: Api) -> None:
    assert requests.get(f"{api.emu.url}/emulator/api/faults").status_code == 401


def test_close_during_chunk_upload_stores_nothing(api: Api) -> None:
    job = api.create()
    add_fault(api, path="/chunks/upserted$", action="close")
    with pytest.raises(requests.ConnectionError):
        api.upload(job["id"], b"x" * (4 * 1024 * 1024))
    assert api.session.get(f"{api.base}{job['id']}/chunks").json() == []
    assert api.upload(job["id"], parquet_bytes({"id": [1]})).status_code == 200
