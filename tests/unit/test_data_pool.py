"""The data path's Arrow memory pool (``datapath.memory.data_pool``): which one, and that reads and writes use it.

A buffer's pool is where it will be freed to, so what is checked is the pool's own byte count while the
data is held: it grows only if the reader or writer allocated from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_celonis.datapath import memory
from airflow_provider_celonis.datapath.chunks import ParquetChunker
from airflow_provider_celonis.datapath.sources import open_source

CSV = 'id,name,amount\n1,alpha,1.5\n2,,2.5\n3,"",\n' + "".join(f"{i},n{i},{i}.25\n" for i in range(4, 5000))


@pytest.fixture
def fresh_pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    memory.data_pool.cache_clear()
    yield
    memory.data_pool.cache_clear()


def _has_jemalloc() -> bool:
    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:
        return False
    return True


@pytest.mark.usefixtures("fresh_pool")
def test_jemalloc_where_pyarrow_has_it() -> None:
    expected = "jemalloc" if _has_jemalloc() else pa.default_memory_pool().backend_name
    assert memory.data_pool().backend_name == expected


@pytest.mark.usefixtures("fresh_pool")
def test_a_deployment_that_chose_an_allocator_keeps_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
    assert memory.data_pool().backend_name == pa.default_memory_pool().backend_name


@pytest.mark.skipif(
    not _has_jemalloc(), reason="pyarrow built without jemalloc: the data pool is the default"
)
def test_csv_batches_and_parquet_chunks_are_allocated_from_the_data_pool(tmp_path: Path) -> None:
    pool = memory.data_pool()
    path = tmp_path / "d.csv"
    path.write_text(CSV)
    before = pool.bytes_allocated()
    batches = list(open_source(str(path)).batches())
    assert pool.bytes_allocated() > before  # the reader's blocks and the decoded columns
    del batches
    table = pa.table({"id": pa.array(range(200_000)), "name": pa.array([f"n{i}" for i in range(200_000)])})
    (tmp_path / "out").mkdir()
    chunker = ParquetChunker(tmp_path / "out", table.schema, max_bytes=64 << 20)
    before = pool.bytes_allocated()
    written = [done for batch in table.to_batches() for done in chunker.write_iter(batch)]
    assert pool.bytes_allocated() > before  # the open writer's encoded pages
    written += chunker.close()
    assert sum(pq.read_metadata(done.path).num_rows for done in written) == 200_000
