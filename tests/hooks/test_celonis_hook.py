"""CelonisHook against the emulator over real HTTP: every endpoint, auth kinds, retries, OAuth refresh."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_celonis.hooks.auth import TOKEN_CACHE
from airflow_provider_celonis.hooks.celonis import CelonisHook
from airflow_provider_celonis.hooks.errors import (
    CelonisApiError,
    CelonisAuthError,
    CelonisConflictError,
    CelonisJobFailedError,
    CelonisNotFoundError,
    CelonisRateLimitError,
)
from airflow_provider_celonis.hooks.http_policy import RetryPolicy
from tests.helpers import LIST_CHUNKS, POOL, EmulatorClient

FAST = RetryPolicy(max_attempts=4, base_delay=0.05, max_delay=0.2, max_inline_wait=5)


def parquet_file(tmp_path: Path, rows: list[dict[str, Any]], name: str = "chunk.parquet") -> Path:
    path = tmp_path / name
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.fixture
def hook(celonis_conn: Callable[..., str]) -> CelonisHook:
    return CelonisHook(celonis_conn(), retry_policy=FAST)


def push(
    hook: CelonisHook, tmp_path: Path, rows: list[dict[str, Any]], table: str = "orders"
) -> dict[str, Any]:
    job = hook.create_job(table, "DELTA", keys=["id"])
    hook.upload_chunk(job["id"], parquet_file(tmp_path, rows))
    hook.execute_job(job["id"])
    return hook.wait_for_job(job["id"], poll_interval=0.2, timeout=60)


def test_every_endpoint(hook: CelonisHook, tmp_path: Path, landed: EmulatorClient) -> None:
    job = hook.create_job(
        "orders",
        "DELTA",
        keys=["id"],
        table_schema=[{"columnName": "name", "columnType": "STRING", "fieldLength": 20}],
    )
    assert job["status"] == "NEW"
    assert job["targetName"] == "orders"
    assert job["dataPoolId"] == POOL
    assert [j["id"] for j in hook.list_jobs()] == [job["id"]]
    chunk = hook.upload_chunk(
        job["id"], parquet_file(tmp_path, [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}])
    )
    hook.upload_chunk(job["id"], parquet_file(tmp_path, [{"id": 2}], "del.parquet"), kind="deleted")
    chunks = hook.list_chunks(job["id"])
    assert [c["type"] for c in chunks] == ["UPSERT", "DELETE"]
    assert chunk == {"kind": "upserted", "name": "chunk.parquet"}  # nothing is read from the answer
    hook.execute_job(job["id"])
    done = hook.wait_for_job(job["id"], poll_interval=0.1, timeout=60)
    assert done["status"] == "DONE"
    assert landed.rows("orders") == [{"id": 1, "name": "a"}]
    with pytest.raises(CelonisConflictError, match="409"):
        hook.execute_job(job["id"])
    hook.cancel_job(job["id"])  # already DONE: a no-op, not an error
    hook.delete_job(job["id"])
    with pytest.raises(CelonisNotFoundError, match="404"):
        hook.get_job(job["id"])


def test_cancel_and_failed_job_logs(hook: CelonisHook, tmp_path: Path) -> None:
    job = hook.create_job("t", "DELTA")
    hook.cancel_job(job["id"])
    assert hook.get_job(job["id"])["status"] == "CANCELED"
    bad = hook.create_job("t", "DELTA", keys=["missing"])
    hook.upload_chunk(bad["id"], parquet_file(tmp_path, [{"id": 1}]))
    hook.execute_job(bad["id"])
    with pytest.raises(CelonisJobFailedError, match=r"ERROR: .*missing"):
        hook.wait_for_job(bad["id"], poll_interval=0.1, timeout=60)


@pytest.mark.parametrize(
    "auth",
    [
        {"auth_type": "app_key"},
        {"auth_type": "api_key", "password": "api-key-0123456789"},
        {"auth_type": "oauth", "login": "client-1", "password": "client-secret-0123456789"},
        {
            "auth_type": "oauth",
            "login": "client-1",
            "password": "client-secret-0123456789",
            "oauth_client_auth": "post",
        },
    ],
)
def test_auth_kinds(celonis_conn: Any, auth: dict[str, Any], tmp_path: Path) -> None:
    celonis_conn("c", **auth)
    hook = CelonisHook("c", retry_policy=FAST)
    assert push(hook, tmp_path, [{"id": 1}])["status"] == "DONE"
    assert hook.test_connection()[0] is True


def test_wrong_key_names_status_not_key(celonis_conn: Any) -> None:
    celonis_conn("c", password="wrong-secret-key-42")
    hook = CelonisHook("c", retry_policy=FAST)
    with pytest.raises(CelonisAuthError) as err:
        hook.list_jobs()
    assert "401" in str(err.value)
    assert "list_jobs" in str(err.value)
    assert "wrong-secret-key-42" not in str(err.value)
    ok, message = hook.test_connection()
    assert ok is False
    assert "401" in message


def test_pool_not_allowed_is_403(celonis_emulator_factory: Any, airflow_conn: Callable[..., str]) -> None:
    emu = celonis_emulator_factory(app_keys=("limited=pool-a",))
    airflow_conn("limited", host=emu.url, password="limited")
    hook = CelonisHook("limited", retry_policy=FAST)
    assert hook.list_jobs("pool-a") == []
    with pytest.raises(CelonisAuthError, match="403"):
        hook.list_jobs("pool-b")


def test_5xx_burst_is_retried(hook: CelonisHook, landed: EmulatorClient, tmp_path: Path) -> None:
    landed.fault(method="GET", path="/jobs/$", action="status", status=503, count=2)
    landed.fault(method="POST", path="/chunks/upserted$", action="status", status=502, count=2)
    assert push(hook, tmp_path, [{"id": 1}])["status"] == "DONE"
    assert landed.rows("orders") == [{"id": 1}]


def test_lost_answers_do_not_duplicate(hook: CelonisHook, landed: EmulatorClient, tmp_path: Path) -> None:
    # The server creates the job / stores the chunk / executes, then drops the connection.
    landed.fault(method="POST", path="/jobs/?$", action="close_after", count=1)
    job = hook.create_job("orders", "DELTA", keys=["id"])
    assert len(landed.jobs()) == 1
    landed.fault(method="POST", path="/chunks/upserted$", action="close_after", count=1)
    hook.upload_chunk(job["id"], parquet_file(tmp_path, [{"id": 1}, {"id": 2}]))
    assert len(hook.list_chunks(job["id"])) == 1
    landed.fault(method="POST", path=f"/jobs/{job['id']}/?$", action="close_after", count=1)
    hook.execute_job(job["id"])
    assert hook.wait_for_job(job["id"], poll_interval=0.1, timeout=60)["status"] == "DONE"
    assert sorted(r["id"] for r in landed.rows("orders")) == [1, 2]


def test_a_delete_whose_answer_is_lost_is_settled_by_looking(
    hook: CelonisHook, landed: EmulatorClient
) -> None:
    """The server deletes, then drops the connection: the resend would get 404, the job is gone: deleted."""
    job = hook.create_job("orders", "DELTA", keys=["id"])
    landed.fault(method="DELETE", path=f"/jobs/{job['id']}/?$", action="close_after", count=1)
    hook.delete_job(job["id"])
    assert landed.jobs() == []
    with pytest.raises(CelonisNotFoundError):  # a job that never was (or a wrong id) still fails
        hook.delete_job(job["id"])


def test_connection_reset_before_answer(hook: CelonisHook, landed: EmulatorClient) -> None:
    landed.fault(method="GET", path="/jobs/$", action="close", count=2)
    assert hook.list_jobs() == []


def test_per_second_limit_backs_off(
    celonis_emulator_factory: Any, airflow_conn: Callable[..., str], tmp_path: Path
) -> None:
    emu = celonis_emulator_factory(app_keys=("k",), execute_per_second=1)
    airflow_conn("rl", host=emu.url, password="k", data_pool_id="p")
    hook = CelonisHook(
        "rl", retry_policy=RetryPolicy(max_attempts=8, base_delay=0.2, max_delay=1.0, max_inline_wait=5)
    )
    jobs = [hook.create_job("t", "DELTA") for _ in range(3)]
    for job in jobs:
        hook.upload_chunk(job["id"], parquet_file(tmp_path, [{"id": 1}]))
    for job in jobs:
        hook.execute_job(job["id"])  # the 2nd and 3rd get 429 + Retry-After and are retried
    assert all(hook.get_job(j["id"])["status"] != "NEW" for j in jobs)


def test_hourly_quota_raises_with_resume_time(
    celonis_emulator_factory: Any, airflow_conn: Callable[..., str]
) -> None:
    emu = celonis_emulator_factory(app_keys=("k",), execute_per_hour=1)
    airflow_conn("rl", host=emu.url, password="k", data_pool_id="p")
    hook = CelonisHook("rl", retry_policy=FAST)
    first, second = hook.create_job("t", "DELTA"), hook.create_job("t", "DELTA")
    hook.execute_job(first["id"])
    with pytest.raises(CelonisRateLimitError) as err:
        hook.execute_job(second["id"])
    assert err.value.status == 429
    assert err.value.retry_after > 5
    assert err.value.resume_at.minute == 0
    assert err.value.resume_at.second == 0


def _oauth_hook(emu: Any, airflow_conn: Callable[..., str]) -> CelonisHook:
    airflow_conn("oa", host=emu.url, login="cid", password="csecret", auth_type="oauth", data_pool_id="p")
    return CelonisHook("oa", retry_policy=FAST)


def _token_requests(emu: Any) -> int:
    return int(EmulatorClient(emu).stats()["requests"].get("POST /oauth2/token", 0))


def test_oauth_token_refreshed_before_expiry(
    celonis_emulator_factory: Any, airflow_conn: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cached token is replaced before it expires: the cache's clock is moved past the token's life."""
    emu = celonis_emulator_factory(app_keys=("k",), oauth_clients=("cid:csecret",), token_ttl=30)
    hook = _oauth_hook(emu, airflow_conn)
    hook.list_jobs()
    hook.list_jobs()
    before = _token_requests(emu)
    monkeypatch.setattr(TOKEN_CACHE, "clock", lambda: time.monotonic() + 31)
    hook.list_jobs()
    assert _token_requests(emu) == before + 1


def test_oauth_token_refreshed_on_401(
    celonis_emulator_factory: Any, airflow_conn: Callable[..., str]
) -> None:
    """A token the server no longer accepts (401, empty body) is dropped and fetched anew, once."""
    emu = celonis_emulator_factory(app_keys=("k",), oauth_clients=("cid:csecret",))
    hook = _oauth_hook(emu, airflow_conn)
    hook.list_jobs()
    before = _token_requests(emu)
    EmulatorClient(emu).fault(method="GET", path="/jobs/$", action="status", status=401, body="")
    assert hook.list_jobs() == []
    assert _token_requests(emu) == before + 1
    EmulatorClient(emu).fault(method="GET", path="/jobs/$", action="status", status=401, body="", count=2)
    with pytest.raises(CelonisAuthError, match=r"HTTP 401\): Unauthorized"):
        hook.list_jobs()  # a second 401 after the fresh token is final


def test_oauth_wrong_secret(celonis_emulator_factory: Any, airflow_conn: Callable[..., str]) -> None:
    emu = celonis_emulator_factory(app_keys=("k",), oauth_clients=("cid:csecret",))
    airflow_conn("oa", host=emu.url, login="cid", password="nope-secret", auth_type="oauth", data_pool_id="p")
    with pytest.raises(CelonisApiError, match="401") as err:
        CelonisHook("oa", retry_policy=FAST).list_jobs()
    assert "nope-secret" not in str(err.value)


def test_unreachable_host_fails_after_retries(airflow_conn: Callable[..., str]) -> None:
    airflow_conn("down", host="http://127.0.0.1:9", password="k", data_pool_id="p")
    with pytest.raises(CelonisApiError, match="no answer"):
        CelonisHook("down", retry_policy=FAST).list_jobs()


def test_html_and_invalid_json_answers(hook: CelonisHook, landed: EmulatorClient) -> None:
    landed.fault(
        method="GET",
        path="/jobs/$",
        action="status",
        status=500,
        body="<html><title>Gateway exploded</title></html>",
        headers={"Content-Type": "text/html"},
    )
    with pytest.raises(CelonisApiError, match=r"HTML page.*Gateway exploded"):
        hook.list_jobs()
    landed.fault(
        method="GET",
        path="/jobs/$",
        action="status",
        status=200,
        body="{not json",
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(CelonisApiError, match="invalid JSON"):
        hook.list_jobs()


def test_async_get_and_cancel(hook: CelonisHook) -> None:
    job = hook.create_job("t", "DELTA")

    async def go() -> str:
        ahook = await CelonisHook.for_trigger("celonis_default")
        assert (await ahook.aget_job(job["id"], POOL))["status"] == "NEW"
        await ahook.acancel_job(job["id"], POOL)
        await ahook.acancel_job(job["id"], POOL)  # idempotent
        return str((await ahook.aget_job(job["id"], POOL))["status"])

    assert asyncio.run(go()) == "CANCELED"


def test_upload_streams_from_file_object(hook: CelonisHook, landed: EmulatorClient) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"id": [7]}), buffer)

    class Chunk:
        name = "mem.parquet"

        def open(self) -> Any:
            return io.BytesIO(buffer.getvalue())

    job = hook.create_job("mem", "REPLACE")
    hook.upload_chunk(job["id"], Chunk())
    hook.execute_job(job["id"])
    hook.wait_for_job(job["id"], poll_interval=0.1, timeout=60)
    assert landed.rows("mem") == [{"id": 7}]


def test_upload_dropped_before_processing_is_sent_again_once(
    hook: CelonisHook, landed: EmulatorClient, tmp_path: Path
) -> None:
    """The connection drops with the chunk unstored: the chunk list is unchanged, so the chunk goes again."""
    job = hook.create_job("orders", "DELTA", keys=["id"])
    hook.upload_chunk(job["id"], parquet_file(tmp_path, [{"id": 1}], "first.parquet"))
    landed.fault(method="POST", path="/chunks/upserted$", action="close", count=1)
    hook.upload_chunk(job["id"], parquet_file(tmp_path, [{"id": 2}], "second.parquet"))
    assert len(hook.list_chunks(job["id"])) == 2
    hook.execute_job(job["id"])
    hook.wait_for_job(job["id"], poll_interval=0.1, timeout=60)
    assert sorted(r["id"] for r in landed.rows("orders")) == [1, 2]


def test_later_chunk_lost_answer_is_not_taken_for_an_earlier_one(
    hook: CelonisHook, landed: EmulatorClient, tmp_path: Path
) -> None:
    """Identical chunk bytes, the second answer lost after storing: stored once, not re-sent, not skipped."""
    job = hook.create_job("orders", "DELTA")
    path = parquet_file(tmp_path, [{"id": 1}])
    hook.upload_chunk(job["id"], path)
    landed.fault(method="POST", path="/chunks/upserted$", action="close_after", count=1)
    hook.upload_chunk(job["id"], path)
    assert len(hook.list_chunks(job["id"])) == 2


def test_429_without_retry_after_is_retried(hook: CelonisHook, landed: EmulatorClient) -> None:
    job = hook.create_job("t", "DELTA")
    landed.fault(method="POST", path=f"/jobs/{job['id']}$", action="status", status=429, body="", count=2)
    hook.execute_job(job["id"])
    assert hook.get_job(job["id"])["status"] != "NEW"


@pytest.mark.parametrize(
    ("status", "body", "content_type", "expected"),
    [
        (404, "", "application/json", r"get_job \(GET /.*\) failed \(HTTP 404\): Not Found$"),
        (403, "", "text/plain", r"HTTP 403\): Forbidden \(the key or OAuth client is not allowed"),
        (400, "job is locked", "text/plain", r"HTTP 400\): Bad Request: job is locked$"),
    ],
)
def test_error_answers_without_json(
    hook: CelonisHook, landed: EmulatorClient, status: int, body: str, content_type: str, expected: str
) -> None:
    landed.fault(
        method="GET",
        path="/jobs/j-1$",
        action="status",
        status=status,
        body=body,
        headers={"Content-Type": content_type},
    )
    with pytest.raises(CelonisApiError, match=expected):
        hook.get_job("j-1")


def test_connection_without_pool_checks_the_key(celonis_conn: Any) -> None:
    celonis_conn("nopool", data_pool_id="")
    ok, message = CelonisHook("nopool", retry_policy=FAST).test_connection()
    assert ok
    assert "pool access NOT tested" in message
    celonis_conn("nopool_wrong", password="wrong-secret-key-42", data_pool_id="")
    ok, message = CelonisHook("nopool_wrong", retry_policy=FAST).test_connection()
    assert not ok
    assert "401" in message
    assert "wrong-secret-key-42" not in message


def test_wait_logs_the_status(hook: CelonisHook, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = hook.create_job("t", "DELTA")
    hook.upload_chunk(job["id"], parquet_file(tmp_path, [{"id": 1}]))
    hook.execute_job(job["id"])
    hook.wait_for_job(job["id"], poll_interval=0.05, timeout=60)
    assert f"Celonis job {job['id']} is DONE" in capsys.readouterr().out


def test_create_answer_without_a_job_is_a_clear_error(hook: CelonisHook, landed: EmulatorClient) -> None:
    """ "201 Created No Content" (as the reference lists it) and no new job in the list: say so, no crash."""
    landed.fault(method="POST", path="/jobs/?$", action="status", status=201, body="")
    with pytest.raises(CelonisApiError, match="holds no job id"):
        hook.create_job("orders", "DELTA")


@pytest.mark.parametrize(
    ("profile", "checksum"),
    [("documented", "none"), ("documented", "opaque"), ("documented", "sha256"), ("lenient", "md5")],
)
def test_lost_upload_answers_land_every_row_once(
    celonis_emulator_factory: Any,
    airflow_conn: Callable[..., str],
    tmp_path: Path,
    profile: str,
    checksum: str,
) -> None:
    """Empty (documented) or JSON (lenient) upload answers, any listing checksum: each chunk stored once."""
    emu = celonis_emulator_factory(app_keys=("k=p",), profile=profile, chunk_checksum=checksum)
    airflow_conn("ck", host=emu.url, password="k", data_pool_id="p")
    hook, client = CelonisHook("ck", retry_policy=FAST), EmulatorClient(emu, key="k")
    job = hook.create_job("orders", "DELTA")
    same = parquet_file(tmp_path, [{"id": 1}, {"id": 2}])  # identical bytes each time
    for lose in ("close_after", None, "close", "close_after"):
        if lose:
            client.fault(method="POST", path="/chunks/upserted$", action=lose, count=1)
        hook.upload_chunk(job["id"], same)
    assert len(hook.list_chunks(job["id"])) == 4
    # A push counts its own uploads instead of listing the job first (``chunks_before``): the same faults,
    # the same result, and no listing unless an answer was lost.
    for lose in ("close_after", None, "close", "status_after"):
        if lose:
            client.fault(method="POST", path="/chunks/upserted$", action=lose, count=1, status=504)
        held = len(hook.list_chunks(job["id"]))
        listed = client.stats()["requests"][LIST_CHUNKS]
        hook.upload_chunk(job["id"], same, chunks_before=held)
        # Listed again only to decide a lost answer ("close": never sent, so listed and sent again).
        assert client.stats()["requests"][LIST_CHUNKS] == listed + (lose is not None)
    assert len(hook.list_chunks(job["id"])) == 8
    hook.execute_job(job["id"])
    hook.wait_for_job(job["id"], poll_interval=0.1, timeout=60)
    assert sorted(r["id"] for r in client.rows("orders", pool="p")) == [1] * 8 + [2] * 8


class _RecordingChunk:
    """A chunk file whose reads are recorded: how large a piece each send takes from it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reads: list[int] = []

    @property
    def name(self) -> str:
        return self.path.name

    def open(self) -> Any:
        handle = self.path.open("rb")
        read = handle.read

        def recorded(size: int | None = -1) -> bytes:
            data = read(size)
            self.reads.append(len(data))
            return data

        handle.read = recorded  # type: ignore[method-assign]
        return handle


def test_uploads_stream_in_large_blocks(hook: CelonisHook, tmp_path: Path, landed: EmulatorClient) -> None:
    """A chunk goes out in 1 MiB pieces, not urllib3's 16 KiB: a 128 MiB chunk is 128 sends, not 8,192."""
    from airflow_provider_celonis.hooks.transport import UPLOAD_BLOCK

    rows = [{"id": i, "text": f"{i:08d}" * 64} for i in range(8_000)]
    path = tmp_path / "big.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, compression="none", use_dictionary=False)
    assert path.stat().st_size > 3 * UPLOAD_BLOCK
    chunk = _RecordingChunk(path)
    job = hook.create_job("blocks", "REPLACE")
    hook.upload_chunk(job["id"], chunk)
    hook.execute_job(job["id"])
    assert hook.wait_for_job(job["id"], poll_interval=0.2, timeout=60)["status"] == "DONE"
    assert sum(chunk.reads) == path.stat().st_size
    assert max(chunk.reads) >= UPLOAD_BLOCK // 2
    assert len([n for n in chunk.reads if n]) <= path.stat().st_size // (UPLOAD_BLOCK // 2) + 2
    assert sorted(r["id"] for r in landed.rows("blocks")) == list(range(8_000))
