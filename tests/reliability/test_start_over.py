"""Starting a job over when a chunk upload's fate cannot be decided: every row lands once, no job is left.

The hook raises ``ChunkUploadUndecided`` when a lost answer cannot be decided from the job's chunk list. Here
a hook really uploads the chunk and then reports it undecided (as after a lost answer whose chunk did land),
so the push must delete that job, create a new one and send every chunk again into it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from airflow_provider_celonis.datapath import upload
from airflow_provider_celonis.datapath.job import PushJob
from airflow_provider_celonis.datapath.pipeline import PushSpec, prepare, prepare_csv
from airflow_provider_celonis.datapath.sources import open_source
from airflow_provider_celonis.hooks.celonis import CelonisHook
from airflow_provider_celonis.hooks.errors import ChunkUploadUndecided
from tests.helpers import POOL, EmulatorClient

ROWS = [{"id": i, "name": f"n{i}-" + format(i * 2654435761 % 2**32, "08x") * 4} for i in range(1, 4001)]


class UndecidedHook(CelonisHook):
    """Stores the chunks numbered in ``undecided`` (1-based, over all uploads) and then reports them undecided."""

    def __init__(self, undecided: set[int]) -> None:
        super().__init__()
        self.undecided = undecided
        self.uploads = 0

    def upload_chunk(self, job_id: str, chunk: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        answer = super().upload_chunk(job_id, chunk, *args, **kwargs)
        self.uploads += 1
        if self.uploads in self.undecided:
            raise ChunkUploadUndecided(f"the answer to chunk upload {self.uploads} was lost")
        return answer


def _push(hook: CelonisHook, spec: PushSpec, parts: Any) -> Any:
    job = PushJob(hook, POOL, spec, logging.getLogger("start-over"))
    report = job.push(parts)
    job.execute()
    job.wait(0.2, 60)
    return report


@pytest.mark.usefixtures("celonis_conn")
@pytest.mark.parametrize("undecided", [{1}, {3}, {2, 4}], ids=["first chunk", "last chunk", "twice"])
def test_undecided_upload_starts_the_job_over(landed: EmulatorClient, undecided: set[int]) -> None:
    spec = PushSpec(target_table="orders", keys=["id"], chunk_size_bytes=64 * 1024)
    log = logging.getLogger("start-over")
    hook = UndecidedHook(undecided)
    report = _push(hook, spec, prepare(spec, POOL, open_source(pa.Table.from_pylist(ROWS)), None, log))
    assert report.chunks >= 3
    assert report.rows == len(ROWS)
    assert sorted(landed.rows("orders"), key=lambda r: r["id"]) == ROWS
    assert [j["status"] for j in landed.jobs()] == ["DONE"]  # the started-over jobs were deleted


@pytest.mark.usefixtures("celonis_conn")
def test_csv_pass_through_starts_over_from_the_file(landed: EmulatorClient, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("id,name\n" + "".join(f"{r['id']},{r['name']}\n" for r in ROWS))
    spec = PushSpec(target_table="orders", keys=["id"], file_type="CSV", chunk_size_bytes=64 * 1024)
    report = _push(UndecidedHook({2}), spec, prepare_csv(spec, POOL, str(path), None))
    assert report.rows == len(ROWS)
    assert sorted(landed.rows("orders"), key=lambda r: r["id"]) == ROWS
    assert [j["status"] for j in landed.jobs()] == ["DONE"]


@pytest.mark.usefixtures("celonis_conn")
def test_undecided_every_time_gives_up_and_leaves_no_job(
    landed: EmulatorClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upload, "MAX_RESTARTS", 2)
    spec = PushSpec(target_table="orders", keys=["id"], chunk_size_bytes=64 * 1024)
    log = logging.getLogger("start-over")
    job = PushJob(UndecidedHook(set(range(1, 100))), POOL, spec, log)
    try:
        job.push(prepare(spec, POOL, open_source(pa.Table.from_pylist(ROWS)), None, log))
    except ChunkUploadUndecided:
        job.abandon()  # as the operator does when a push fails
    else:
        pytest.fail("the push never gave up, although every upload stayed undecided")
    assert landed.jobs() == []
