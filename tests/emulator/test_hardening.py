"""Emulator hardening (issue 6.7): every route authenticates, and hostile names never reach DuckDB or disk."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from airflow_provider_celonis.emulator.app import create_app
from airflow_provider_celonis.emulator.server import EmulatorServer
from airflow_provider_celonis.emulator.state import EmulatorState
from airflow_provider_celonis.emulator.testing import build_settings, running_emulator
from tests.emulator.api_client import parquet_bytes

KEY = "hardening-key-0123456789"
#: Routes open without credentials: liveness, the OAuth token endpoint (it authenticates the client
#: itself) and the HTML overview (no keys on it; documented as open).
OPEN_ROUTES = {("GET", "/emulator/health"), ("POST", "/oauth2/token"), ("GET", "/")}
SAMPLE = {
    "pool_id": "pool-1",
    "job_id": "00000000-0000-0000-0000-000000000000",
    "model_id": "dm-1",
    "name": "t.json",
    "bucket": "continuous",
    "key:path": "connection/conn-1/t/f.parquet",
}
HOSTILE_NAMES = [
    "../x",
    "..",
    "../../etc/passwd",
    'a"; DROP TABLE x; --',
    "x'); DROP SCHEMA main; --",
    "x\x00",
    "x" * 300,
    "pööl",
    "t\u202e",
    "a b",
]
#: Pools are DuckDB schemas: DuckDB's own schema names are no pool ids either.
HOSTILE_POOLS = [*HOSTILE_NAMES, "main", "information_schema", "pg_catalog", "TEMP", "system"]
BASE = "/data-ingestion/api/v1/data-push"


def all_routes() -> list[tuple[str, str]]:
    """(method, path template) of every route the emulator app serves."""
    settings = build_settings()
    app: Any = create_app(EmulatorState(settings, Path("/nonexistent")))
    while not hasattr(app, "routes"):  # through the stats and fault middlewares
        app = app.app
    return sorted((m, r.path) for r in app.routes for m in getattr(r, "methods", None) or ())


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorServer]:
    with running_emulator(app_keys=(KEY,), ingestion_keys=("AKHARD:hard-secret:conn-1:pool-1",)) as server:
        yield server


@pytest.fixture
def session(emu: EmulatorServer) -> requests.Session:  # noqa: ARG001 - the server must be up
    s = requests.Session()
    s.headers["Authorization"] = f"AppKey {KEY}"
    return s


def _url(emu: EmulatorServer, template: str) -> str:
    return emu.url + re.sub(r"\{([^}]+)\}", lambda m: SAMPLE[m.group(1)], template)


@pytest.mark.parametrize(("method", "template"), [r for r in all_routes() if r not in OPEN_ROUTES])
@pytest.mark.parametrize("authorization", [None, "AppKey wrong-key", "Bearer wrong-token", "Basic a2V5Og=="])
def test_every_route_needs_credentials(
    emu: EmulatorServer, method: str, template: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    r = requests.request(method, _url(emu, template), headers=headers, timeout=10)
    what = (method, template, r.status_code, r.text[:200])
    if not template.startswith("/api/data-ingestion"):
        assert r.status_code == 401, what
        return
    # The SigV4-signed ingestion API answers like S3: 403 AccessDenied or 400 for a non-SigV4 header.
    assert r.status_code in (400, 403), what
    assert method == "HEAD" or re.search(
        r"<Code>(AccessDenied|AuthorizationHeaderMalformed)</Code>", r.text
    ), what


def test_open_routes_are_only_the_expected_ones() -> None:
    assert set(all_routes()) >= OPEN_ROUTES
    assert {r for r in all_routes() if r[1] == "/emulator/health"} == {("GET", "/emulator/health")}


@pytest.mark.parametrize("name", HOSTILE_POOLS)
def test_hostile_pool_ids_are_refused_everywhere(
    emu: EmulatorServer, session: requests.Session, name: str
) -> None:
    pool = quote(name, safe="")
    calls = [
        ("GET", f"{BASE}/{pool}/jobs/"),
        ("POST", f"{BASE}/{pool}/jobs/"),
        ("GET", f"{BASE}/{pool}/jobs/some-job"),
        ("GET", f"/emulator/api/pools/{pool}/tables"),
        ("GET", f"/emulator/api/pools/{pool}/tables/t.json"),
    ]
    for method, path in calls:
        body = {"targetName": "t", "type": "DELTA"} if method == "POST" else None
        r = session.request(method, emu.url + path, json=body, timeout=10)
        assert r.status_code == 404, (method, path, r.status_code, r.text[:200])
    _assert_no_stray_state(emu)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_table_and_column_names_are_refused(
    emu: EmulatorServer, session: requests.Session, name: str
) -> None:
    jobs = f"{emu.url}{BASE}/pool-1/jobs/"
    for body in (
        {"targetName": name, "type": "DELTA"},
        {"targetName": "t", "type": "DELTA", "keys": [name]},
        {"targetName": "t", "type": "DELTA", "tableSchema": {"columns": [{"columnName": name}]}},
    ):
        r = session.post(jobs, json=body, timeout=10)
        assert r.status_code == 400, (body, r.status_code, r.text[:200])
    r = session.get(f"{emu.url}/emulator/api/pools/pool-1/tables/{quote(name, safe='')}.json", timeout=10)
    assert r.status_code == 404, r.text[:200]
    _assert_no_stray_state(emu)


def test_hostile_names_inside_a_chunk_and_on_execute_stay_data(
    emu: EmulatorServer, session: requests.Session
) -> None:
    """Column names come from the file and the dedup column from the query: quoted, never executed."""
    jobs = f"{emu.url}{BASE}/pool-1/jobs/"
    evil = 'x"; DROP TABLE "pool-1"."keep"; --'
    for target, columns, params in (
        ("keep", {"id": [1]}, {}),
        ("evil", {"id": [1], evil: ["boom"]}, {"duplicateRemovalColumn": evil}),
    ):
        job = session.post(jobs, json={"targetName": target, "type": "DELTA", "keys": ["id"]}).json()
        files = {"file": ("c.parquet", parquet_bytes(columns))}
        assert session.post(f"{jobs}{job['id']}/chunks/upserted", files=files).status_code == 200
        assert session.post(f"{jobs}{job['id']}", params=params).status_code == 200
        _wait(session, f"{jobs}{job['id']}")
    assert session.get(f"{emu.url}/emulator/api/pools/pool-1/tables/keep.json").json() == [{"id": 1}]
    _assert_no_stray_state(emu)


def test_fault_bodies_are_validated(emu: EmulatorServer, session: requests.Session) -> None:
    url = f"{emu.url}/emulator/api/faults"
    _all_refused(
        session,
        url,
        b'{"path": "x", "headers": [1]}',
        b'{"path": "x", "status": 99999}',
        b'{"path": "x", "action": "delay", "delay_seconds": NaN}',
        b'{"path": "x", "action": "delay", "delay_seconds": 1e9}',
        b'{"path": "x", "count": 1e400}',
        b'{"path": "x", "headers": {"bad name": "v"}}',
        b'{"path": "x", "headers": {"X-A": "line\\nbreak"}}',
        b'{"path": "("}',
        b"[" * 100_000,
        b"\xff\xfe",
    )
    assert session.get(url).json() == []


def test_strict_json_bodies(emu: EmulatorServer, session: requests.Session) -> None:
    """NaN, Infinity, 1e400 and deep nesting are 400s (they used to be 500s or dropped connections)."""
    _all_refused(
        session,
        f"{emu.url}{BASE}/pool-1/jobs/",
        b'{"targetName": "t", "type": "DELTA", "connectionId": NaN}',
        b'{"targetName": "t", "type": "DELTA", "fallbackVarcharLength": -Infinity}',
        b'{"targetName": "t", "type": "DELTA", "connectionId": 1e400}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"targetName": "t", "type": ["DELTA"]}',
        b'{"targetName": "t", "type": "DELTA", "fileType": {"a": 1}}',
    )
    big = session.get(f"{emu.url}/emulator/api/pools/pool-1/tables/keep.json?limit=99999999999999999999")
    assert big.status_code in (200, 404)


def _all_refused(session: requests.Session, url: str, *bodies: bytes) -> None:
    """Every body POSTed to ``url`` earns a 400 (never a 5xx or a dropped connection)."""
    for body in bodies:
        r = session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
        assert r.status_code == 400, (body[:60], r.status_code, r.text[:200])


def _wait(session: requests.Session, url: str) -> None:
    import time

    for _ in range(200):
        if session.get(url).json()["status"] in ("DONE", "ERROR", "CANCELED"):
            return
        time.sleep(0.02)
    raise AssertionError("job did not finish")


def _assert_no_stray_state(emu: EmulatorServer) -> None:
    """Only the pool schemas we used exist in DuckDB, and nothing was written outside the data dir."""
    assert emu.state is not None
    cur = emu.state.tables.cursor()
    try:
        schemas = {
            r[0] for r in cur.execute("SELECT schema_name FROM information_schema.schemata").fetchall()
        }
    finally:
        cur.close()
    assert schemas - {"main", "information_schema", "pg_catalog", "pool-1", "temp"} == set(), schemas
    assert not (emu.data_dir.parent / "x").exists()
    assert not Path("x").exists()
    r = requests.get(f"{emu.url}/emulator/health", timeout=10)
    assert r.status_code == 200
