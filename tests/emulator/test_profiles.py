"""The two profiles over HTTP: what the documented one withholds, what the lenient one adds, and the rules
both share (chunk checksum modes, declared connections, name rules, CSV NULLs, lost answers)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from airflow_provider_celonis.emulator.__main__ import parse_args
from airflow_provider_celonis.emulator.server import EmulatorServer
from airflow_provider_celonis.emulator.settings import ConnectionSpec
from airflow_provider_celonis.emulator.testing import running_emulator
from tests.emulator.api_client import Api, parquet_bytes


@pytest.fixture(scope="module")
def lenient_emulator() -> Iterator[EmulatorServer]:
    with running_emulator(app_keys=("test-key",), profile="lenient", execute_per_second=100_000) as emu:
        yield emu


@pytest.fixture
def lenient(lenient_emulator: EmulatorServer) -> Api:
    return Api(lenient_emulator)


def listing(api: Api, job_id: str) -> list[dict[str, object]]:
    r = api.session.get(f"{api.base}{job_id}/chunks")
    assert r.status_code == 200, r.text
    return list(r.json())


def test_documented_upload_answers_200_without_content(api: Api) -> None:
    job = api.create()
    for kind in ("upserted", "deleted"):
        r = api.upload(job["id"], parquet_bytes({"id": [1]}), kind)
        assert r.status_code == 200
        assert r.content == b""
    assert [c["type"] for c in listing(api, job["id"])] == ["UPSERT", "DELETE"]


def test_lenient_upload_answers_the_chunk_with_its_md5(lenient: Api) -> None:
    job = lenient.create()
    data = parquet_bytes({"id": [1]})
    chunk = lenient.upload(job["id"], data).json()
    assert chunk["checksum"] == hashlib.md5(data).hexdigest()
    assert chunk["pushJobId"] == job["id"]
    assert listing(lenient, job["id"]) == [chunk]


@pytest.mark.parametrize("profile", ["documented", "lenient"])
@pytest.mark.parametrize("mode", ["none", "md5", "sha256", "opaque"])
def test_chunk_checksum_modes(api: Api, lenient: Api, profile: str, mode: str) -> None:
    client = api if profile == "documented" else lenient
    client.emu.settings.chunk_checksum = mode
    try:
        job = client.create()
        data = parquet_bytes({"id": [1, 2]})
        assert client.upload(job["id"], data).status_code == 200
        [chunk] = listing(client, job["id"])
    finally:
        client.emu.settings.chunk_checksum = None
    expected = {"md5": hashlib.md5(data).hexdigest(), "sha256": hashlib.sha256(data).hexdigest()}
    if mode == "none":
        assert "checksum" not in chunk
    elif mode == "opaque":
        assert isinstance(chunk["checksum"], str)
        assert chunk["checksum"] not in expected.values()
    else:
        assert chunk["checksum"] == expected[mode]


def test_default_checksum_per_profile() -> None:
    assert parse_args([]).checksum_mode == "opaque"
    assert parse_args(["--profile", "lenient"]).checksum_mode == "md5"
    assert parse_args(["--profile", "lenient", "--chunk-checksum", "none"]).checksum_mode == "none"


def test_cli_profile_region_connections_and_ingestion_config(tmp_path: Path) -> None:
    config = tmp_path / "tables.json"
    config.write_text(
        json.dumps(
            {
                "tables": [
                    {
                        "connection": "c1",
                        "table": "orders",
                        "primaryKeys": ["order_id"],
                        "ageColumn": "v",
                        "children": {"line_items": {"primaryKeys": ["line_id"]}},
                    }
                ]
            }
        )
    )
    s = parse_args(
        [
            "--region",
            "eu-central-1",
            "--connection",
            "c1=p1",
            "--connection",
            "c2",
            "--ingestion-config",
            str(config),
        ]
    )
    assert s.profile == "documented"
    assert s.region == "eu-central-1"
    assert [(c.connection_id, c.pool_id) for c in s.connections] == [("c1", "p1"), ("c2", None)]
    assert [(t.table, t.primary_keys, t.age_column) for t in s.ingestion_tables] == [
        ("orders", ("order_id",), "v"),
        ("orders_line_items", ("line_id",), None),
    ]
    with pytest.raises(SystemExit):
        parse_args(["--profile", "generous"])


def test_declared_connections_are_checked(shared_emulator: EmulatorServer) -> None:
    api = Api(shared_emulator, pool="pool-c")
    shared_emulator.settings.connections = (ConnectionSpec("conn-a", "pool-c"), ConnectionSpec("conn-b"))
    try:
        body = {"targetName": "t", "type": "DELTA"}
        for conn, status in (("conn-a", 200), ("conn-b", 200), ("conn-x", 404), (None, 200)):
            r = api.session.post(api.base, json={**body, "connectionId": conn})
            assert r.status_code == status, (conn, r.text)
        other = Api(shared_emulator, pool="pool-d")
        r = other.session.post(other.base, json={**body, "connectionId": "conn-a"})
        assert r.status_code == 404
        assert "conn-a" in r.json()["message"]
    finally:
        shared_emulator.settings.connections = ()


@pytest.mark.parametrize("file_type", ["PARQUET", "CSV"])
def test_documented_names_rule_is_the_same_for_parquet_and_csv(
    api: Api, lenient: Api, file_type: str
) -> None:
    data = b"id,a b\n1,x\n" if file_type == "CSV" else parquet_bytes({"id": [1], "a b": ["x"]})
    job = api.push("t", "REPLACE", [data], fileType=file_type)
    assert job["status"] == "ERROR"
    assert "'a b'" in job["logs"][0]
    assert "letters, digits, '_' and '-'" in job["logs"][0]
    assert lenient.push("t", "REPLACE", [data], fileType=file_type)["status"] == "DONE"


def test_invalid_names_in_the_job_name_the_name_and_the_rule(api: Api) -> None:
    r = api.session.post(api.base, json={"targetName": "my table", "type": "DELTA"})
    error = r.json()["errors"][0]
    assert r.status_code == 400
    assert error["attribute"] == "targetName"
    assert "'my table'" in error["error"]
    assert "letters, digits" in error["error"]
    schema = {"columns": [{"columnName": "ok"}, {"columnName": "bad.name"}]}
    r = api.session.post(api.base, json={"targetName": "t", "type": "DELTA", "tableSchema": schema})
    error = r.json()["errors"][0]
    assert error["attribute"] == "tableSchema.columns[1].columnName"
    assert "'bad.name'" in error["error"]


def test_csv_unquoted_empty_is_null_and_quoted_empty_is_empty_string(api: Api) -> None:
    data = '\ufeffid,name,note,n\r\n1,"",,5\r\n2,,"",\r\n3,"x","y",7\r\n'.encode()
    job = api.push("c", "REPLACE", [data], fileType="CSV")
    assert job["status"] == "DONE", job["logs"]
    assert api.rows("c", "id") == [
        {"id": 1, "name": "", "note": None, "n": 5},
        {"id": 2, "name": None, "note": "", "n": None},
        {"id": 3, "name": "x", "note": "y", "n": 7},
    ]


def test_csv_quoted_empty_in_a_declared_integer_column_is_an_error(api: Api) -> None:
    schema = {
        "columns": [
            {"columnName": "id", "columnType": "INTEGER"},
            {"columnName": "n", "columnType": "INTEGER"},
        ]
    }
    job = api.push("c", "REPLACE", [b'id,n\n1,""\n'], fileType="CSV", tableSchema=schema)
    assert job["status"] == "ERROR"
    assert "'n'" in job["logs"][0]


def add_fault(api: Api, **fault: object) -> None:
    r = api.session.post(f"{api.emu.url}/emulator/api/faults", json=fault)
    assert r.status_code == 200, r.text


@pytest.fixture
def faults(api: Api) -> Iterator[Api]:
    yield api
    api.session.delete(f"{api.emu.url}/emulator/api/faults")


def test_lose_the_answer_to_the_second_chunk_upload(faults: Api) -> None:
    api = faults
    job = api.create()
    add_fault(api, method="POST", path=rf"/{job['id']}/chunks/upserted$", action="close_after", skip=1)
    assert api.upload(job["id"], parquet_bytes({"id": [1]})).status_code == 200
    with pytest.raises(requests.ConnectionError):
        api.upload(job["id"], parquet_bytes({"id": [2]}))
    assert api.upload(job["id"], parquet_bytes({"id": [3]})).status_code == 200
    assert len(listing(api, job["id"])) == 3  # the lost answer's chunk was stored


def test_lose_the_answers_to_create_and_execute_behind_a_gateway_error(faults: Api) -> None:
    api = faults
    add_fault(api, method="POST", path=rf"/{api.pool}/jobs/?$", action="status_after", status=504)
    r = api.session.post(api.base, json={"targetName": "t", "type": "DELTA"})
    assert r.status_code == 504
    [job] = api.session.get(api.base).json()  # created although the answer was lost
    add_fault(api, method="POST", path=rf"/jobs/{job['id']}$", action="status_after", status=502)
    assert api.execute(job["id"]).status_code == 502
    assert api.wait(job["id"])["status"] == "DONE"  # executed although the answer was lost


@pytest.mark.parametrize("headers", [{}, {"Retry-After": "3"}])
def test_injected_429_with_and_without_retry_after(faults: Api, headers: dict[str, str]) -> None:
    api = faults
    job = api.create()
    add_fault(api, method="POST", path=rf"/jobs/{job['id']}$", status=429, body="", headers=headers)
    r = api.execute(job["id"])
    assert r.status_code == 429
    assert r.headers.get("Retry-After") == headers.get("Retry-After")
    assert api.job(job["id"])["status"] == "NEW"  # answered without processing
    assert api.execute(job["id"]).status_code == 200
