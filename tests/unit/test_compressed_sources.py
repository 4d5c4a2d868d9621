"""Compressed sources (``.gz``, ``.bz2``, ``.zst``): read decompressed, checked by their decompressed bytes,
refused where their bytes would be sent as they are."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from airflow_provider_celonis.datapath.csv_header import csv_header
from airflow_provider_celonis.datapath.sources import open_source
from airflow_provider_celonis.hooks.errors import CelonisConfigError

CSV = 'id,name,amount\n1,alpha,1.5\n2,,2.5\n3,"",\n' + "".join(f"{i},n{i},{i}.25\n" for i in range(4, 5000))


def _compressed(path: Path, data: bytes) -> Path:
    codec = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}[path.suffix]
    with pa.CompressedOutputStream(str(path), codec) as out:
        out.write(data)
    return path


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.bz2", ".csv.zst"])
def test_a_compressed_csv_reads_as_the_plain_one(tmp_path: Path, suffix: str) -> None:
    plain = tmp_path / "d.csv"
    plain.write_text(CSV)
    packed = _compressed(tmp_path / f"d{suffix}", CSV.encode())
    want = [row for batch in open_source(str(plain)).batches() for row in batch.to_pylist()]
    got = [row for batch in open_source(str(packed)).batches() for row in batch.to_pylist()]
    assert got == want
    assert len(got) == 4999
    assert got[1]["name"] is None  # the NULL rule holds through the codec
    assert got[2]["name"] == ""


def test_a_compressed_csv_in_the_wrong_encoding_is_named_by_its_decompressed_bytes(tmp_path: Path) -> None:
    packed = _compressed(tmp_path / "latin.csv.gz", "id,name\n1,café\n".encode("latin-1"))
    with pytest.raises(CelonisConfigError, match=r"latin\.csv\.gz is not valid UTF-8: byte 0xe9 .*line 2"):
        open_source(str(packed))
    got = [
        row for batch in open_source(str(packed), encoding="latin-1").batches() for row in batch.to_pylist()
    ]
    assert got == [{"id": 1, "name": "café"}]


def test_a_compressed_json_file_reads(tmp_path: Path) -> None:
    packed = _compressed(tmp_path / "d.jsonl.gz", b'{"id": 1, "name": null}\n{"id": 2, "name": "b"}\n')
    got = [row for batch in open_source(str(packed)).batches() for row in batch.to_pylist()]
    assert got == [{"id": 1, "name": None}, {"id": 2, "name": "b"}]


def test_the_csv_pass_through_refuses_a_compressed_file_before_any_job(tmp_path: Path) -> None:
    packed = _compressed(tmp_path / "d.csv.gz", CSV.encode())
    with pytest.raises(CelonisConfigError, match=r"d\.csv\.gz is compressed; file_type='CSV'"):
        csv_header(packed, {}, "source")


def test_a_bad_record_in_a_compressed_csv_is_named_by_its_line(tmp_path: Path) -> None:
    body = "id,name\n" + "".join(f"{i},n{i}\n" for i in range(1, 2000)) + "2000,x,extra\n"
    packed = _compressed(tmp_path / "bad.csv.gz", body.encode())
    with pytest.raises(
        CelonisConfigError, match=r"bad\.csv\.gz: line 2001 has 3 fields, but the header has 2"
    ):
        list(open_source(str(packed)).batches())
