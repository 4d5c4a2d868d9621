"""PushSpec's chunk compression: the codecs we write, refused before any job with a clear message."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_celonis.datapath.chunks import ParquetChunker
from airflow_provider_celonis.datapath.pipeline import PushSpec
from airflow_provider_celonis.datapath.sources import open_source
from airflow_provider_celonis.hooks.errors import CelonisConfigError


def test_compression_defaults_to_snappy_and_is_case_insensitive() -> None:
    assert PushSpec("t").compression == "snappy"
    assert PushSpec("t", compression="ZSTD").compression == "zstd"


def test_unknown_compression_is_refused_naming_the_choices() -> None:
    with pytest.raises(
        CelonisConfigError, match=r"compression must be one of snappy, zstd, none, got 'gzip'"
    ):
        PushSpec("t", compression="gzip")


@pytest.mark.parametrize(
    ("codec", "stored"), [("snappy", "SNAPPY"), ("zstd", "ZSTD"), ("none", "UNCOMPRESSED")]
)
def test_chunks_are_written_with_the_codec(tmp_path: Path, codec: str, stored: str) -> None:
    batch = pa.record_batch({"a": pa.array(range(1000)), "s": pa.array([f"v{i}" for i in range(1000)])})
    chunker = ParquetChunker(
        tmp_path, batch.schema, 1 << 20, compression=PushSpec("t", compression=codec).compression
    )
    [chunk] = [*chunker.write_iter(batch), *chunker.close()]
    meta = pq.ParquetFile(chunk.path).metadata
    assert {meta.row_group(0).column(i).compression for i in range(2)} == {stored}


def test_declared_lengths_leave_room_and_never_cut() -> None:
    from airflow_provider_celonis.datapath.pipeline import declared_lengths
    from airflow_provider_celonis.datapath.schema import MAX_VARCHAR

    got = declared_lengths({"a": 7, "b": 300, "c": 40_000, "d": MAX_VARCHAR}, ["a", "b", "c", "d", "e"])
    assert got == {"a": 64, "b": 600, "c": MAX_VARCHAR, "d": MAX_VARCHAR, "e": 64}


def test_outgrown_names_only_columns_longer_than_declared() -> None:
    from airflow_provider_celonis.datapath.pipeline import outgrown

    assert outgrown({"a": 64, "b": 65, "c": 1}, {"a": 64, "b": 64}) == ["b", "c"]
    assert outgrown({"a": 10}, {"a": 64}) == []


def test_job_spec_declares_the_given_lengths_for_measured_columns_only() -> None:
    from airflow_provider_celonis.datapath.pipeline import job_spec, prepare

    table = pa.table({"id": [1], "s": ["abc"], "t": ["x"]})
    spec = PushSpec("t", table_schema=[{"columnName": "t", "columnType": "STRING", "fieldLength": 9}])
    parts = prepare(spec, "pool", open_source(table), None, logging.getLogger("t"))
    columns = {c["columnName"]: c for c in job_spec(spec, parts, {"s": 64})["table_schema"]}
    assert columns["s"]["fieldLength"] == 64
    assert columns["t"]["fieldLength"] == 9


@pytest.mark.parametrize(("idle", "many"), [(True, True), (False, False)])
def test_an_idle_link_gets_a_chunk_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, idle: bool, many: bool
) -> None:
    from airflow_provider_celonis.datapath import pipeline

    monkeypatch.setattr(pipeline, "EARLY_CHUNK_MIN", 64 << 10)
    monkeypatch.setattr(pipeline, "EARLY_CHUNK_MAX", 64 << 10)
    monkeypatch.setattr(pipeline, "FIRST_CHUNK_BYTES", 64 << 20)  # no growth: only the idle link finishes one
    rows = 40_000
    table = pa.table({"id": range(rows), "s": [f"value {n}" for n in range(rows)]})
    spec = PushSpec("t", job_type="REPLACE", chunk_size_bytes=64 << 20)
    log = logging.getLogger("t")
    [part] = pipeline.prepare(
        spec, "pool", open_source(pa.Table.from_batches(table.to_batches(4_000))), None, log
    )
    chunks = list(pipeline.parquet_chunks(part, tmp_path, spec, log, idle=lambda: idle))
    assert sum(c.rows for c in chunks) == rows
    assert (len(chunks) > 1) is many
    assert all(c.size >= 64 << 10 for c in chunks[:-1])


def test_early_chunks_grow_with_the_square_root_of_the_push() -> None:
    """Small pushes finish chunks early at 4 MiB (a short wait at the end), big ones at up to 16 MiB (fewer
    requests): the geometric mean of what was written and 1 MiB, clamped."""
    from airflow_provider_celonis.datapath.pipeline import early_chunk_bytes

    mib = 1 << 20
    assert [early_chunk_bytes(n * mib) for n in (0, 1, 16, 36, 64, 144, 256, 4096)] == [
        4 * mib,
        4 * mib,
        4 * mib,
        6 * mib,
        8 * mib,
        12 * mib,
        16 * mib,
        16 * mib,
    ]
