"""Sources given as ``ObjectStoragePath`` (here ``file://``, the same fsspec code path as ``s3://``) read as
the local files do: parquet seekable, CSV decompressed by suffix, errors named by their line."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_celonis.datapath.sources import open_source
from airflow_provider_celonis.hooks.errors import CelonisConfigError

ROWS = [{"id": i, "name": None if i % 7 == 0 else f"n{i}"} for i in range(1, 3001)]
CSV = "id,name\n" + "".join(f"{r['id']},{r['name'] or ''}\n" for r in ROWS)


def _rows(source: object) -> list[dict[str, object]]:
    return [row for batch in open_source(source).batches() for row in batch.to_pylist()]


def _storage(path: Path) -> ObjectStoragePath:
    return ObjectStoragePath(f"file://{path}")


def test_a_parquet_file_in_object_storage_reads_every_row(tmp_path: Path) -> None:
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "d.parquet", row_group_size=1000)
    assert _rows(_storage(tmp_path / "d.parquet")) == ROWS


@pytest.mark.parametrize("name", ["d.csv", "d.csv.gz"])
def test_a_csv_file_in_object_storage_reads_as_the_local_one(tmp_path: Path, name: str) -> None:
    data = CSV.encode()
    (tmp_path / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    got = _rows(_storage(tmp_path / name))
    assert got == _rows(str(tmp_path / name))
    assert len(got) == 3000
    assert got[6] == {"id": 7, "name": None}


def test_a_folder_in_object_storage_reads_its_files_in_order(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("id,name\n1,a\n")
    (tmp_path / "in" / "b.csv").write_text("id,name\n2,b\n")
    assert _rows(_storage(tmp_path / "in")) == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]


def test_a_bad_record_in_object_storage_is_named_by_its_line(tmp_path: Path) -> None:
    (tmp_path / "bad.csv.gz").write_bytes(gzip.compress((CSV + "3001,x,extra\n").encode()))
    with pytest.raises(
        CelonisConfigError, match=r"bad\.csv\.gz: line 3002 has 3 fields, but the header has 2"
    ):
        _rows(_storage(tmp_path / "bad.csv.gz"))
