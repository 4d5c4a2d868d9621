"""Chunk caps that start small and double up to ``chunk_size_bytes``: parquet chunks and CSV pass-through."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_celonis.datapath.chunks import (
    DICTIONARY_SAMPLE_ROWS,
    FOOTER_RESERVE,
    ChunkFile,
    ParquetChunker,
    grown_cap,
)
from airflow_provider_celonis.datapath.csv_split import split_csv


def test_grown_cap_doubles_from_the_first_up_to_the_cap() -> None:
    caps = [grown_cap(100 << 20, 1 << 20, i) for i in range(1, 10)]
    assert caps == [1 << 20, 2 << 20, 4 << 20, 8 << 20, 16 << 20, 32 << 20, 64 << 20, 100 << 20, 100 << 20]
    assert grown_cap(64 << 10, 1 << 20, 1) == 64 << 10  # a cap below the first size wins
    assert grown_cap(8 << 20, None, 1) == 8 << 20


def test_parquet_chunks_grow_and_keep_every_row_and_null(tmp_path: Path) -> None:
    n = 60_000
    table = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "s": pa.array([None if i % 9 == 0 else f"value {i * 7919 % 100_003}" for i in range(n)]),
        }
    )
    chunker = ParquetChunker(tmp_path, table.schema, 256 << 10, first_bytes=16 << 10)
    chunks: list[ChunkFile] = []
    for batch in table.to_batches(5_000):
        chunks += chunker.write_iter(batch)
    chunks += chunker.close()
    sizes = [c.size for c in chunks]
    assert sizes[0] <= 16 << 10
    for index, size in enumerate(sizes, 1):
        assert size <= max(grown_cap(256 << 10, 16 << 10, index), 2 * FOOTER_RESERVE)
    assert max(sizes) > 128 << 10
    back = pa.concat_tables([pq.read_table(c.path) for c in chunks])
    assert back.equals(table)


def test_a_finished_chunk_is_handed_over_before_the_rest_of_its_batch_is_encoded(tmp_path: Path) -> None:
    """The uploader may start on the first chunk while the batch's remaining rows are written."""
    n = 60_000
    table = pa.table({"id": pa.array(range(n), pa.int64()), "s": [f"row {i * 7919}" for i in range(n)]})
    [batch] = table.to_batches()
    chunker = ParquetChunker(tmp_path, table.schema, 256 << 10, first_bytes=16 << 10)
    pieces = chunker.write_iter(batch)
    first = next(pieces)
    assert first.rows < n
    assert first.path.stat().st_size == first.size
    assert chunker.pending == 0  # nothing of the rest written yet
    rest = [*pieces, *chunker.close()]
    assert first.rows + sum(c.rows for c in rest) == n
    back = pa.concat_tables([pq.read_table(c.path) for c in [first, *rest]])
    assert back.equals(table)


def test_csv_chunks_grow_and_a_long_record_gets_the_full_cap(tmp_path: Path) -> None:
    lines = [f"{i},{'x' * (40 if i != 5 else 3000)}\n" for i in range(20_000)]
    path = tmp_path / "a.csv"
    path.write_text("id,t\n" + "".join(lines))
    chunks = list(split_csv(path, 64 << 10, first_bytes=1 << 10))
    assert sum(c.records for c in chunks) == len(lines)
    assert chunks[0].size <= 1 << 10
    assert chunks[0].records == 5
    assert chunks[1].size > 3000  # record 5 does not fit 2 KiB: its chunk takes up to the full cap
    assert chunks[2].size <= 4 << 10
    assert max(c.size for c in chunks) <= 64 << 10
    body = b"".join(_read(c)[len(b"id,t\n") :] for c in chunks)
    assert body == "".join(lines).encode()


def test_csv_first_bytes_is_checked() -> None:
    with pytest.raises(ValueError, match="first_bytes must be a positive int or None, got 0"):
        split_csv("x.csv", 100, first_bytes=0)


def _read(chunk: object) -> bytes:
    with chunk.open() as reader:  # type: ignore[attr-defined]
        return bytes(reader.read())


def _dictionary_encoded(path: Path) -> set[str]:
    meta = pq.ParquetFile(path).metadata
    group = meta.row_group(0)
    return {
        group.column(i).path_in_schema
        for i in range(group.num_columns)
        if any("DICT" in encoding for encoding in group.column(i).encodings)
    }


def test_small_early_chunks_are_not_judged_for_dictionaries_the_ones_after_the_sample_are(
    tmp_path: Path,
) -> None:
    """Distinct counts are taken once ``DICTIONARY_SAMPLE_ROWS`` rows are in, not before the first byte, and
    over all of them: ``quantity`` repeats in 50,000 rows (40 % distinct) but not in one 10,000-row batch."""
    n = 120_000
    table = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "status": [("open", "shut")[i % 2] for i in range(n)],
            "quantity": pa.array([i % 20_000 for i in range(n)], pa.int64()),
        }
    )
    growing = ParquetChunker(tmp_path / "g", table.schema, 4 << 20, first_bytes=16 << 10)
    (tmp_path / "g").mkdir()
    chunks = [c for batch in table.to_batches(10_000) for c in growing.write_iter(batch)] + growing.close()
    encoded = [_dictionary_encoded(c.path) for c in chunks]
    judged = next(i for i, found in enumerate(encoded) if found)
    assert judged > 0
    assert all(found == set() for found in encoded[:judged])
    assert all(found == {"status", "quantity"} for found in encoded[judged:])
    assert sum(c.rows for c in chunks[:judged]) >= DICTIONARY_SAMPLE_ROWS - 10_000  # a batch is sampled whole
    flat = ParquetChunker(tmp_path / "f", table.schema, 256 << 10)  # no growth: the first batch is judged
    (tmp_path / "f").mkdir()
    first = [c for batch in table.to_batches(10_000) for c in flat.write_iter(batch)] + flat.close()
    assert _dictionary_encoded(first[0].path) == {"status"}
    back = pa.concat_tables([pq.read_table(c.path) for c in chunks])
    assert back.equals(table)
