"""PushSpec's chunk compression: the codecs we write, refused before any job with a clear message."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_celonis.datapath.chunks import ParquetChunker
from airflow_provider_celonis.datapath.pipeline import PushSpec
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
def test_chunks_are_written_with_the_codec(tmp_path, codec: str, stored: str) -> None:
    batch = pa.record_batch({"a": pa.array(range(1000)), "s": pa.array([f"v{i}" for i in range(1000)])})
    chunker = ParquetChunker(
        tmp_path, batch.schema, 1 << 20, compression=PushSpec("t", compression=codec).compression
    )
    [chunk] = chunker.write(batch) + chunker.close()
    meta = pq.ParquetFile(chunk.path).metadata
    assert {meta.row_group(0).column(i).compression for i in range(2)} == {stored}
