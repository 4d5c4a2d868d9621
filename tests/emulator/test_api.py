"""Every Data Push endpoint and the status codes and bodies Celonis gives."""

from __future__ import annotations

import hashlib
import time
from email.utils import parsedate_to_datetime

import pytest
import requests

from airflow_provider_celonis.emulator.server import EmulatorServer
from airflow_provider_celonis.emulator.testing import running_emulator
from tests.emulator.api_client import Api, parquet_bytes

JOB_FIELDS = {
    "id", "targetName", "lastModified", "lastPing", "status", "type", "fileType", "targetSchema",
    "upsertStrategy", "fallbackVarcharLength", "dataPoolId", "connectionId", "postExecutionQuery",
    "allowDuplicate", "foreignKeys", "keys", "logs", "tableSchema", "csvParsingOptions",
    "mirrorTargetNames", "changeDate",
}  # fmt: skip


@pytest.mark.parametrize("base", ["/integration/api/v1/data-push", "/data-ingestion/api/v1/data-push"])
@pytest.mark.parametrize("slash", ["/", ""])
def test_job_lifecycle_on_both_base_paths(shared_emulator: EmulatorServer, base: str, slash: str) -> None:
    api = Api(shared_emulator)
    root = f"{shared_emulator.url}{base}/{api.pool}/jobs"
    r = api.session.post(root + slash, json={"targetName": "t", "type": "REPLACE", "fileType": "PARQUET"})
    assert r.status_code == 200, r.text
    job = r.json()
    assert set(job) == JOB_FIELDS
    assert job["status"] == "NEW"
    assert job["dataPoolId"] == api.pool
    data = parquet_bytes({"id": [1]})
    r = api.session.post(f"{root}/{job['id']}/chunks/upserted", files={"file": ("c.parquet", data)})
    assert r.status_code == 200
    assert r.content == b""
    [chunk] = api.session.get(f"{root}/{job['id']}/chunks").json()
    assert set(chunk) == {"id", "creationDate", "type", "pushJobId", "checksum"}
    assert chunk["type"] == "UPSERT"
    assert chunk["pushJobId"] == job["id"]
    assert chunk["checksum"] != hashlib.md5(data).hexdigest()  # opaque: not a digest of the bytes
    assert [j["id"] for j in api.session.get(root + slash).json()] == [job["id"]]
    assert api.session.post(f"{root}/{job['id']}{slash}").status_code == 200
    assert api.wait(job["id"])["status"] == "DONE"
    assert api.session.delete(f"{root}/{job['id']}").status_code == 200
    assert api.session.get(f"{root}/{job['id']}").status_code == 404


def test_chunk_field_named_chunk_and_deleted_type(api: Api) -> None:
    job = api.create(keys=["id"])
    r = api.upload(job["id"], parquet_bytes({"id": [1]}), "deleted", field="chunk")
    assert r.status_code == 200
    assert [c["type"] for c in api.session.get(f"{api.base}{job['id']}/chunks").json()] == ["DELETE"]


def test_chunk_without_file_part_is_400(api: Api) -> None:
    job = api.create()
    r = api.session.post(f"{api.base}{job['id']}/chunks/upserted", files={"other": ("x", b"1")})
    assert r.status_code == 400
    r = api.session.post(f"{api.base}{job['id']}/chunks/upserted", data=b"raw")
    assert r.status_code == 400


def test_execute_twice_is_409_and_chunks_after_execute_are_locked(api: Api) -> None:
    job = api.create()
    assert api.execute(job["id"]).status_code == 200
    r = api.execute(job["id"])
    assert r.status_code == 409
    assert set(r.json()) == {"reference", "message", "shortMessage"}
    r = api.upload(job["id"], parquet_bytes({"id": [1]}))
    assert r.status_code == 400
    assert r.json()["message"] == "Job already locked"
    assert api.wait(job["id"])["logs"] == ["no chunks to apply"]


def test_unknown_job_is_404_everywhere(api: Api) -> None:
    missing = f"{api.base}00000000-0000-0000-0000-000000000000"
    assert api.session.get(missing).status_code == 404
    assert api.session.post(missing).status_code == 404
    assert api.session.delete(missing).status_code == 404
    assert api.session.post(f"{missing}/cancel").status_code == 404
    assert api.session.get(f"{missing}/chunks").status_code == 404
    r = api.session.post(f"{missing}/chunks/upserted", files={"file": ("c", b"x")})
    assert r.status_code == 404
    assert set(r.json()) == {"reference", "message", "shortMessage"}


def test_jobs_are_scoped_to_their_pool(api: Api, shared_emulator: EmulatorServer) -> None:
    job = api.create()
    other = Api(shared_emulator)
    assert other.session.get(f"{other.base}{job['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "attribute"),
    [
        (b"{not json", None),
        (b'{"targetName": "t", "type": "SOMETIMES"}', "type"),
        (b'{"targetName": "t", "type": "DELTA", "fileType": "XLSX"}', "fileType"),
        (b'{"targetName": "t", "type": "DELTA", "upsertStrategy": "MAYBE"}', "upsertStrategy"),
        (b'{"targetName": "../etc", "type": "DELTA"}', "targetName"),
        (b'{"type": "DELTA"}', "targetName"),
        (b'{"targetName": "t"}', "type"),
        (
            b'{"targetName": "t", "type": "DELTA", "tableSchema": {"columns": [{"columnName": "a", "columnType": "X"}]}}',
            "tableSchema.columns[0].columnType",
        ),
    ],
)
def test_invalid_job_bodies_are_400_with_errors(api: Api, body: bytes, attribute: str | None) -> None:
    r = api.session.post(api.base, data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    (error,) = r.json()["errors"]
    assert set(error) == {"attribute", "error", "errorCode", "additionalInfo"}
    assert error["attribute"] == attribute


def test_cancel(shared_emulator: EmulatorServer) -> None:
    api = Api(shared_emulator)
    job = api.create()
    assert api.session.post(f"{api.base}{job['id']}/cancel").status_code == 200
    assert api.job(job["id"])["status"] == "CANCELED"
    assert api.session.post(f"{api.base}{job['id']}/cancel").status_code == 409
    assert api.execute(job["id"]).status_code == 409


def test_running_is_observable_and_cancel_stops_it() -> None:
    with running_emulator(job_duration=30) as emu:
        api = Api(emu)
        job = api.create()
        api.upload(job["id"], parquet_bytes({"id": [1]}))
        api.execute(job["id"])
        assert api.wait(job["id"], {"RUNNING"})["lastPing"] is not None
        assert api.session.post(f"{api.base}{job['id']}/cancel").status_code == 200
        assert api.wait(job["id"])["status"] == "CANCELED"
        assert api.tables() == {}


@pytest.mark.parametrize("header", [None, "AppKey wrong", "Bearer wrong", "Basic abc", "AppKey"])
def test_bad_credentials_are_401(api: Api, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    r = requests.get(api.base, headers=headers)
    assert r.status_code == 401
    assert set(r.json()) == {"reference", "message", "shortMessage"}


def test_api_keys_and_pool_restrictions() -> None:
    with running_emulator(app_keys=("app=p1",), api_keys=("user", "narrow=p2,p3")) as emu:
        assert emu.app_key == "app"
        assert emu.api_key == "user"
        assert Api(emu, "p1", "AppKey app").session.get(Api(emu, "p1").base).status_code == 200
        assert requests.get(Api(emu, "p2").base, headers={"Authorization": "AppKey app"}).status_code == 403
        assert requests.get(Api(emu, "p9").base, headers={"Authorization": "Bearer user"}).status_code == 200
        assert (
            requests.get(Api(emu, "p3").base, headers={"Authorization": "Bearer narrow"}).status_code == 200
        )
        assert (
            requests.get(Api(emu, "p1").base, headers={"Authorization": "Bearer narrow"}).status_code == 403
        )


def test_known_pools_only_when_pools_are_given() -> None:
    with running_emulator(pools=("known",)) as emu:
        assert emu.app_key == "k1"
        headers = {"Authorization": "AppKey k1"}
        assert requests.get(Api(emu, "known").base, headers=headers).status_code == 200
        assert requests.get(Api(emu, "unknown").base, headers=headers).status_code == 404
        assert (
            requests.get(f"{emu.url}/emulator/api/pools/unknown/tables", headers=headers).status_code == 404
        )


def test_unknown_route_is_404_json(api: Api) -> None:
    r = api.session.get(f"{api.emu.url}/integration/api/v1/nothing")
    assert r.status_code == 404
    assert "message" in r.json()


def test_every_answer_is_dated_when_it_is_made(shared_emulator: EmulatorServer) -> None:
    """``Date`` is the second the answer was made, never an older one (clients bound run starts with it)."""
    session = requests.Session()
    deadline = time.time() + 1.5  # at least one second boundary
    while time.time() < deadline:
        before = time.time()
        answer = session.get(f"{shared_emulator.url}/emulator/health")
        after = time.time()
        dated = parsedate_to_datetime(answer.headers["Date"]).timestamp()
        assert int(before) <= dated <= after, (before, answer.headers["Date"], after)
        assert len(answer.raw.headers.getlist("Date")) == 1
