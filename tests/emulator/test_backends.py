"""The two services' backends without HTTP: their rules per profile, driven by plain calls."""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_celonis.emulator.errors import ApiError
from airflow_provider_celonis.emulator.faults import Fault, FaultRegistry
from airflow_provider_celonis.emulator.ingestion.sigv4 import S3Error
from airflow_provider_celonis.emulator.settings import (
    ConnectionSpec,
    IngestionKeySpec,
    load_ingestion_config,
)
from airflow_provider_celonis.emulator.state import EmulatorState
from airflow_provider_celonis.emulator.testing import build_settings

BOUNDARY = "b0undary"


def multipart(data: bytes) -> tuple[dict[str, str], AsyncIterator[bytes]]:
    body = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="c"\r\n\r\n'.encode()
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )

    async def stream() -> AsyncIterator[bytes]:
        yield body

    return {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}, stream()


def parquet(columns: dict[str, list[Any]] | pa.Table) -> bytes:
    buf = io.BytesIO()
    table = columns if isinstance(columns, pa.Table) else pa.table(columns)
    pq.write_table(table, buf, compression="NONE")
    return buf.getvalue()


@pytest.fixture
def make_state(tmp_path: Path) -> Iterator[Any]:
    started: list[EmulatorState] = []

    def make(**settings: Any) -> EmulatorState:
        state = EmulatorState(build_settings(**settings), tmp_path / f"s{len(started)}")
        state.start()
        started.append(state)
        return state

    yield make
    for state in started:
        state.stop()


def upload(state: EmulatorState, job_id: str, data: bytes, kind: str = "UPSERT") -> dict[str, Any]:
    headers, stream = multipart(data)
    return asyncio.run(state.data_push.upload("p", job_id, kind, headers, stream))


@pytest.mark.parametrize("profile", ["documented", "lenient"])
def test_data_push_lifecycle_and_locking(make_state: Any, profile: str) -> None:
    state = make_state(profile=profile)
    backend = state.data_push
    job = backend.create_job("p", {"targetName": "t", "type": "DELTA", "keys": ["id"]})
    data = parquet({"id": [1, 2]})
    chunk = upload(state, job["id"], data)
    assert backend.chunks("p", job["id"]) == [chunk]
    if profile == "lenient":
        assert chunk["checksum"] == hashlib.md5(data).hexdigest()
    else:
        assert chunk["checksum"] != hashlib.md5(data).hexdigest()
    backend.execute("p", job["id"], None)
    with pytest.raises(ApiError) as locked:
        upload(state, job["id"], data)
    assert locked.value.status == 400
    assert locked.value.message == "Job already locked"
    with pytest.raises(ApiError) as again:
        backend.execute("p", job["id"], None)
    assert again.value.status == 409
    deadline = time.monotonic() + 20
    while backend.job("p", job["id"])["status"] not in ("DONE", "ERROR"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert backend.job("p", job["id"])["status"] == "DONE"


@pytest.mark.parametrize("profile", ["documented", "lenient"])
def test_too_many_requests_per_profile(make_state: Any, profile: str) -> None:
    backend = make_state(profile=profile, execute_per_hour=0).data_push
    job = backend.create_job("p", {"targetName": "t", "type": "DELTA"})
    with pytest.raises(ApiError) as limited:
        backend.execute("p", job["id"], None)
    response = limited.value.response()
    assert response.status_code == 429
    if profile == "documented":
        assert response.body == b""
        assert "retry-after" not in response.headers
    else:
        assert int(response.headers["retry-after"]) >= 1
        assert b"shortMessage" in response.body
    assert backend.job("p", job["id"])["status"] == "NEW"


def test_declared_connection_ids(make_state: Any) -> None:
    backend = make_state(connections=(ConnectionSpec("c1", "p"),)).data_push
    assert backend.create_job("p", {"targetName": "t", "type": "DELTA", "connectionId": "c1"})
    with pytest.raises(ApiError) as unknown:
        backend.create_job("p", {"targetName": "t", "type": "DELTA", "connectionId": "c2"})
    assert unknown.value.status == 404
    assert backend.list_jobs("p")[0]["connectionId"] == "c1"
    assert len(backend.list_jobs("p")) == 1


KEY = IngestionKeySpec("AK", "secret", "conn-1", "pool-1")


def test_ingestion_keys_and_tables_per_profile(make_state: Any) -> None:
    documented = make_state(ingestion_tables=("conn-1:orders:id",)).ingestion
    documented.check_key(KEY, "connection/conn-1/orders/a.parquet", writing=True)
    with pytest.raises(S3Error) as refused:
        documented.check_key(KEY, "connection/conn-1/other/a.parquet", writing=True)
    assert refused.value.code == "NoSuchTable"
    assert "'other'" in refused.value.message
    with pytest.raises(S3Error) as foreign:
        documented.check_key(KEY, "connection/conn-2/orders/a.parquet", writing=False)
    assert foreign.value.status == 403
    make_state(profile="lenient").ingestion.check_key(KEY, "connection/conn-1/other/a.parquet", writing=True)


def wait_applied(state: EmulatorState, files: int) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        status = state.ingestion.worker.status()
        if status["pending"] == 0 and len(status["files"]) >= files:
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.02)


def rows(state: EmulatorState, table: str, order: str) -> list[tuple[Any, ...]]:
    cur = state.tables.cursor()
    try:
        return cur.execute(f'SELECT * FROM "pool-1"."{table}" ORDER BY "{order}"').fetchall()
    finally:
        cur.close()


def store(state: EmulatorState, table: str, name: str, data: bytes, metadata: dict[str, str]) -> None:
    path = state.ingestion.dir / name
    path.write_bytes(data)
    key = f"connection/conn-1/{table}/{name}"
    state.ingestion.store(key, path, len(data), '"etag"', metadata, KEY)


def test_ingestion_documented_keys_come_from_the_configuration(make_state: Any) -> None:
    state = make_state(ingestion_tables=("conn-1:t:id", "conn-1:t_items:item_id"))
    items = pa.array([[{"item_id": 1, "q": 1}], [{"item_id": 2, "q": 2}]])
    store(state, "t", "1.parquet", parquet(pa.table({"id": [1, 2], "items": items})), {"primary-keys": "x"})
    again = pa.array([[{"item_id": 1, "q": 9}]])
    store(state, "t", "2.parquet", parquet(pa.table({"id": [2], "items": again})), {})
    status = wait_applied(state, 2)
    assert [f["status"] for f in status["files"]] == ["DONE", "DONE"]
    assert [f["primaryKeys"] for f in status["files"]] == [["id"], ["id"]]
    # item 1 moved to order 2 by its own key; nothing of order 1 is left behind as a duplicate
    assert rows(state, "t_items", "item_id") == [(2, 1, 9), (2, 2, 2)]


def test_ingestion_lenient_keys_come_from_metadata(make_state: Any) -> None:
    state = make_state(profile="lenient")
    store(state, "t", "1.parquet", parquet({"id": [1, 1], "v": ["a", "b"]}), {"primary-keys": "id"})
    wait_applied(state, 1)
    assert rows(state, "t", "id") == [(1, "b")]


def test_fault_skip_lets_requests_pass_first() -> None:
    registry = FaultRegistry()
    registry.add(Fault.from_json({"path": "/chunks", "action": "close_after", "skip": 2, "count": 1}))
    assert [registry.take("POST", "/j/chunks") is not None for _ in range(4)] == [False, False, True, False]
    bad_faults = (
        ({"path": "x", "skip": -1}, "skip must be 0 or more"),
        ({"path": "x", "action": "status_after", "status": 99}, "status must be an HTTP status"),
    )
    for bad, message in bad_faults:
        with pytest.raises(ValueError, match=message):
            Fault.from_json(bad)


def test_ingestion_config_file_errors_name_the_entry(tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text('{"tables": [{"connection": "c", "table": "t"}]}')
    with pytest.raises(ValueError, match=r"tables\[0\] needs connection, table and primaryKeys"):
        load_ingestion_config(config)
    config.write_text(
        '{"tables": [{"connection": "c", "table": "t", "primaryKeys": ["id"], "children": {"x": {}}}]}'
    )
    with pytest.raises(ValueError, match="child 'x' needs primaryKeys"):
        load_ingestion_config(config)
