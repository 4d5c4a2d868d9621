"""Chunks start small and grow to the cap, the job is created with the first one: rows, NULLs, widening,
start-over and lost answers stay right, in both emulator profiles.

``FIRST_CHUNK_BYTES`` is made small here so that a few hundred KB of data go through the whole growth.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from airflow_provider_celonis.datapath import pipeline
from airflow_provider_celonis.datapath.job import PushJob
from airflow_provider_celonis.datapath.pipeline import PushSpec, prepare, prepare_csv
from airflow_provider_celonis.datapath.sources import open_source
from airflow_provider_celonis.hooks.celonis import CelonisHook
from airflow_provider_celonis.hooks.errors import ChunkUploadUndecided
from tests.helpers import ADMIN_KEY, LIST_CHUNKS, POOL, EmulatorClient

FIRST = 16 << 10
CAP = 256 << 10
LONG = "L" * 3000
ROWS = 40_000


@pytest.fixture(params=["documented", "lenient"])
def emulator(request: pytest.FixtureRequest, celonis_emulator_factory: Any) -> Any:
    """The suite's emulator, in each profile."""
    return celonis_emulator_factory(
        app_keys=("app-key-0123456789=pool-1,pool-2,p", ADMIN_KEY), job_duration=0.1, profile=request.param
    )


@pytest.fixture(autouse=True)
def small_first_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "FIRST_CHUNK_BYTES", FIRST)


class RecordingHook(CelonisHook):
    """Records the calls in order (``create``, ``delete``, ``upload <size>``); reports uploads numbered
    in ``undecided`` (1-based) undecided after storing them, as after a lost answer."""

    def __init__(self, undecided: frozenset[int] = frozenset()) -> None:
        super().__init__()
        self.undecided = undecided
        self.calls: list[str] = []
        self.sizes: list[int] = []

    def create_job(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("create")
        return super().create_job(*args, **kwargs)

    def delete_job(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append("delete")
        return super().delete_job(*args, **kwargs)

    def upload_chunk(self, job_id: str, chunk: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        answer = super().upload_chunk(job_id, chunk, *args, **kwargs)
        self.calls.append("upload")
        self.sizes.append(int(chunk.size))
        if len(self.sizes) in self.undecided:
            raise ChunkUploadUndecided(f"the answer to chunk upload {len(self.sizes)} was lost")
        return answer


def rows(long_at: int | None) -> list[dict[str, Any]]:
    """Every 7th text and every 5th amount NULL; ``long_at``: that row's text far longer than the others."""
    out = []
    for n in range(ROWS):
        text = None if n % 7 == 3 else f"v{n:06d}-" + format(n * 2654435761 % 2**32, "08x")
        out.append({"id": n, "text": LONG if n == long_at else text, "amount": None if n % 5 == 1 else n / 4})
    return out


def batches(data: list[dict[str, Any]]) -> Iterator[pa.RecordBatch]:
    schema = pa.schema([("id", pa.int64()), ("text", pa.string()), ("amount", pa.float64())])
    for start in range(0, len(data), 2_000):
        yield pa.RecordBatch.from_pylist(data[start : start + 2_000], schema)


def _push(hook: CelonisHook, spec: PushSpec, parts: Any) -> Any:
    job = PushJob(hook, POOL, spec, logging.getLogger("growing"))
    report = job.push(parts)
    job.execute()
    job.wait(0.1, 60)
    return report


@pytest.mark.usefixtures("celonis_conn")
@pytest.mark.parametrize(
    ("long_at", "undecided"),
    [(None, frozenset()), (31_017, frozenset()), (31_017, frozenset({2})), (None, frozenset({1, 5}))],
    ids=["plain", "widened", "widened, lost answer", "lost answers"],
)
def test_chunks_grow_and_every_row_lands_once_unchanged(
    landed: EmulatorClient, long_at: int | None, undecided: frozenset[int]
) -> None:
    data = rows(long_at)
    spec = PushSpec(target_table="grown", job_type="REPLACE", chunk_size_bytes=CAP)
    log = logging.getLogger("growing")
    hook = RecordingHook(undecided)
    report = _push(hook, spec, prepare(spec, POOL, open_source(lambda: batches(data)), None, log))
    assert report.rows == ROWS
    assert sorted(landed.rows("grown"), key=lambda r: r["id"]) == data  # NULLs stay NULL, nothing cut
    assert [j["status"] for j in landed.jobs()] == ["DONE"]  # started-over jobs were deleted
    # The job is created before any upload, the first chunk small, the next ones growing to the cap.
    assert hook.calls[0] == "create"
    assert hook.sizes[0] <= FIRST
    assert max(hook.sizes) <= CAP
    assert max(hook.sizes) > 4 * FIRST
    widened = long_at is not None
    assert hook.calls.count("create") == 1 + widened + len(undecided)
    assert hook.calls.count("delete") == widened + len(undecided)
    [job] = landed.jobs()
    text = next(c for c in job["tableSchema"]["columns"] if c["columnName"] == "text")
    assert text["fieldLength"] >= (len(LONG) if widened else 16)


@pytest.mark.usefixtures("celonis_conn")
@pytest.mark.parametrize("undecided", [frozenset(), frozenset({3})], ids=["plain", "lost answer"])
def test_csv_pass_through_chunks_grow(
    landed: EmulatorClient, tmp_path: Path, undecided: frozenset[int]
) -> None:
    data = [{"id": n, "name": f"n{n}-" + format(n * 2654435761 % 2**32, "08x") * 3} for n in range(ROWS)]
    path = tmp_path / "orders.csv"
    path.write_text("id,name\n" + "".join(f"{r['id']},{r['name']}\n" for r in data))
    spec = PushSpec(target_table="orders", keys=["id"], file_type="CSV", chunk_size_bytes=CAP)
    hook = RecordingHook(undecided)
    report = _push(hook, spec, prepare_csv(spec, POOL, str(path), None))
    assert report.rows == ROWS
    assert sorted(landed.rows("orders"), key=lambda r: r["id"]) == data
    assert [j["status"] for j in landed.jobs()] == ["DONE"]
    assert hook.sizes[0] <= FIRST
    assert hook.sizes[1] <= 2 * FIRST
    assert max(hook.sizes) <= CAP
    assert max(hook.sizes) > CAP // 2


@pytest.mark.usefixtures("celonis_conn")
def test_real_lost_answers_are_decided_without_listing_each_upload(landed: EmulatorClient) -> None:
    """The push counts its confirmed uploads instead of listing the job before each one: answers lost after
    storing (a dropped connection, a gateway's 504) and before it (dropped) still land every row once, and the
    job's chunk list is read only to decide those three."""
    upload = {"method": "POST", "path": "/chunks/upserted$", "count": 1}
    landed.fault(**upload, action="close_after", skip=1)  # the 2nd upload: stored, its answer lost
    landed.fault(**upload, action="status_after", status=504)  # the 3rd: stored, then a gateway's 504
    landed.fault(**upload, action="close")  # the 4th: dropped before it was stored
    data = rows(None)
    spec = PushSpec(target_table="counted", job_type="REPLACE", chunk_size_bytes=CAP)
    hook = RecordingHook()
    report = _push(
        hook, spec, prepare(spec, POOL, open_source(lambda: batches(data)), None, logging.getLogger("t"))
    )
    assert report.rows == ROWS
    assert len(hook.sizes) >= 4
    assert sorted(landed.rows("counted"), key=lambda r: r["id"]) == data
    assert [j["status"] for j in landed.jobs()] == ["DONE"]
    assert landed.stats()["requests"].get(LIST_CHUNKS, 0) == 3
