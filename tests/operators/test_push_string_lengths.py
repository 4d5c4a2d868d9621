"""Default mode (no table_schema): the job is created after the first chunk with STRING lengths to spare;
a later, longer value starts the job over, wider, and every value lands uncut."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from tests.helpers import EmulatorClient, xcom

LONG = "L" * 3000


def batches() -> Iterator[pa.RecordBatch]:
    for start in range(0, 40_000, 5_000):
        text = [f"v{n:06d}" for n in range(start, start + 5_000)]
        if start == 30_000:
            text[17] = LONG  # far longer than 2 x the first chunk's longest (7 characters)
        yield pa.record_batch({"id": pa.array(range(start, start + 5_000)), "text": pa.array(text)})


def _push(make_dag: Any, source: Any, table: str) -> Any:
    """REPLACE ``table`` with ``source`` in 64 KiB chunks, no table_schema (the default mode); the run."""
    return make_dag(
        source=source, target_table=table, job_type="REPLACE", chunk_size_bytes=64 * 1024, poll_interval=0.2
    ).test()


def _text_column(landed: EmulatorClient, table: str) -> dict[str, Any]:
    """The ``text`` column as declared by the one job left for ``table`` (several would fail the unpacking)."""
    [job] = [j for j in landed.jobs() if j.get("targetName") == table]
    return dict(next(c for c in job["tableSchema"]["columns"] if c["columnName"] == "text"))


@pytest.mark.usefixtures("celonis_conn")
def test_a_later_longer_string_starts_the_job_over_wider_and_lands_uncut(
    make_dag: Any, landed: EmulatorClient
) -> None:
    run = _push(make_dag, batches, "widened")
    assert run.state == "success"
    result = xcom(run, "push")
    assert result["rows"] == 40_000
    assert result["chunks"] > 2
    rows = landed.rows("widened")
    assert len(rows) == 40_000
    assert {r["id"]: r["text"] for r in rows} == {
        n: LONG if n == 30_017 else f"v{n:06d}" for n in range(40_000)
    }
    # The first job (text declared 64 wide) was deleted, a second created wider: no orphan job left.
    assert _text_column(landed, "widened")["fieldLength"] >= len(LONG)
    requests = landed.stats()["requests"]
    assert requests["POST /data-ingestion/api/v1/data-push/{pool_id}/jobs/"] == 2
    assert requests["DELETE /data-ingestion/api/v1/data-push/{pool_id}/jobs/{job_id}"] == 1


@pytest.mark.usefixtures("celonis_conn")
def test_lengths_declared_from_the_first_chunk_have_room_to_spare(
    make_dag: Any, landed: EmulatorClient
) -> None:
    """No later value is longer: one job, created once, its length between the longest and twice that."""
    run = _push(make_dag, lambda: (b for b in batches() if b.column(0)[0].as_py() < 30_000), "spare")
    assert run.state == "success"
    assert len(landed.rows("spare")) == 30_000
    assert 7 <= _text_column(landed, "spare")["fieldLength"] <= 64
    assert landed.stats()["requests"]["POST /data-ingestion/api/v1/data-push/{pool_id}/jobs/"] == 1
