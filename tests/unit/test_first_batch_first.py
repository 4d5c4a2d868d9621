"""The push's first batch comes first: a CSV file's read-ahead waits until the second batch is asked for, and
the read-ahead thread asks for it only when its caller comes back (``files.HeldBack``, ``text_read.CsvReader``,
``sources._read_ahead``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_provider_celonis.datapath import text_read
from airflow_provider_celonis.datapath.sources import _read_ahead, open_source
from airflow_provider_celonis.datapath.text_read import LOOK_BYTES, ReadSettings, open_csv


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~20 MiB: more than the hold (``LOOK_BYTES``), with NULLs, empty strings and quoted line breaks."""
    path = tmp_path_factory.mktemp("held") / "big.csv"
    row = '{i},name {i},"quoted\nbreak",{n},\n'
    rows = 20 * (1 << 20) // len(row.format(i=100000, n=1.5))
    with path.open("w") as out:
        out.write("id,name,note,amount,empty\n")
        for i in range(rows):
            out.write(row.format(i=i, n="" if i % 11 == 0 else i / 4))
    assert path.stat().st_size > LOOK_BYTES
    return path


def test_a_held_back_reader_reads_every_row_and_its_first_batch_never_waits(
    big_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(text_read, "HOLD_TIMEOUT_SECONDS", 60.0)
    started = time.monotonic()
    with open_csv(big_csv, ReadSettings()) as reader:
        assert reader.held is not None
        table = pa.Table.from_batches(list(reader))
    assert not reader.held.timed_out
    assert time.monotonic() - started < 30  # a first batch waiting on the hold would take the full minute
    plain = pa.Table.from_batches(list(open_csv(big_csv, ReadSettings(), threads=False)))
    assert table.equals(plain)
    assert table.column("amount").null_count == (table.num_rows + 10) // 11
    assert table.column("note")[0].as_py() == "quoted\nbreak"


def test_the_file_is_read_no_further_than_the_hold_until_the_second_batch_is_asked_for(big_csv: Path) -> None:
    with open_csv(big_csv, ReadSettings()) as reader:
        assert reader.held is not None
        reader.read_next_batch()
        time.sleep(0.3)  # time for Arrow's read-ahead to run, were it let
        assert reader.held.position <= LOOK_BYTES
        reader.read_next_batch()
        deadline = time.monotonic() + 10
        while reader.held.position <= LOOK_BYTES and time.monotonic() < deadline:
            time.sleep(0.01)
        assert reader.held.position > LOOK_BYTES


def test_a_compressed_file_is_held_back_too_and_reads_every_row(tmp_path: Path, big_csv: Path) -> None:
    packed = tmp_path / "big.csv.gz"
    with pa.CompressedOutputStream(str(packed), "gzip") as out:
        out.write(big_csv.read_bytes())
    with open_csv(packed, ReadSettings()) as reader:
        assert reader.held is not None
        reader.read_next_batch()
        time.sleep(0.3)
        assert reader.held.position <= LOOK_BYTES  # decompressed bytes: the read-ahead waits here as well
        rest = sum(batch.num_rows for batch in reader)
    assert not reader.held.timed_out
    plain = open_csv(big_csv, ReadSettings(), threads=False)
    assert rest > 0
    assert text_read._head(packed) is not None  # the look reads 12 MiB of it, not the reader's 128 MiB ahead
    assert sum(batch.num_rows for batch in plain) == rest + _first_rows(packed)


def _first_rows(path: Path) -> int:
    with open_csv(path, ReadSettings()) as reader:
        return int(reader.read_next_batch().num_rows)


def test_transcoded_and_unthreaded_readers_are_not_held(tmp_path: Path, big_csv: Path) -> None:
    with open_csv(big_csv, ReadSettings(), threads=False) as reader:
        assert reader.held is None
    wide = tmp_path / "utf16.csv"  # twice the raw bytes per character: its first batch may need more
    wide.write_text("id,name\n1,é\n", encoding="utf-16")
    with open_csv(wide, ReadSettings(encoding="utf-16")) as reader:
        assert reader.held is None
        assert reader.read_next_batch().to_pylist() == [{"id": 1, "name": "é"}]
    with open_csv(big_csv, ReadSettings(encoding="UTF8")) as reader:
        assert reader.held is not None


def test_the_read_ahead_thread_asks_for_the_second_batch_only_when_its_caller_comes_back() -> None:
    asked: list[int] = []

    def batches() -> Iterator[pa.RecordBatch]:
        for i in range(4):
            asked.append(i)
            yield pa.record_batch({"i": [i]})

    ahead = _read_ahead(batches(), depth=2)
    assert next(ahead).column(0)[0].as_py() == 0
    time.sleep(0.3)
    assert asked == [0]
    assert [b.column(0)[0].as_py() for b in ahead] == [1, 2, 3]
    assert asked == [0, 1, 2, 3]


def test_a_push_source_over_a_held_back_file_reads_every_row(big_csv: Path) -> None:
    ids = [i for batch in open_source(str(big_csv)).batches() for i in batch.column("id").to_pylist()]
    assert ids == list(range(len(ids)))
    assert len(ids) == (sum(1 for _ in big_csv.open()) - 1) // 2  # a record is two lines (the quoted break)
