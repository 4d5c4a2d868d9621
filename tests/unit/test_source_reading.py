"""How sources are read: the NULL rule, byte-order marks and line endings, encodings, type drift.

Pure reading (``open_source``), no emulator: what the batches hold is what the parquet chunks get.
"""

from __future__ import annotations

import datetime as dt
import gzip
import re
from decimal import Decimal as dec
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from airflow_provider_celonis.datapath import text_read
from airflow_provider_celonis.datapath.drift import SchemaDrift, with_widening
from airflow_provider_celonis.datapath.schema import conform, plan_schema
from airflow_provider_celonis.datapath.sources import BatchSource, open_source
from airflow_provider_celonis.hooks.errors import CelonisConfigError


def rows(source: BatchSource) -> list[dict[str, Any]]:
    return [row for batch in source.batches() for row in batch.to_pylist()]


def widened_rows(source: BatchSource) -> tuple[BatchSource, list[dict[str, Any]], list[SchemaDrift]]:
    """Every row, restarting on each drift as the push does; the final source and the drifts met."""
    current = {"source": source}
    drifts: list[SchemaDrift] = []

    def on_drift(drift: SchemaDrift) -> None:
        drifts.append(drift)
        assert drift.widened is not None
        current["source"] = drift.widened

    got = with_widening(lambda: rows(current["source"]), on_drift)
    return current["source"], got, drifts


def test_unquoted_empty_is_null_quoted_empty_is_empty_string_in_every_type(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text(
        'id,s,n,f,d,b\n1,,,,,\n2,"",,,,\n3,x,5,1.5,2024-01-02,true\n4,"NULL",NULL,,,\n5,"","",,"",""\n'
    )
    source = open_source(str(path))
    got = rows(source)
    assert [r["s"] for r in got] == [None, "", "x", "NULL", ""]
    # A quoted "" in a numeric column is an empty string, not a number: the column becomes STRING.
    assert source.schema.field("n").type == pa.string()
    assert [r["n"] for r in got] == [None, None, "5", "NULL", ""]
    assert source.schema.field("f").type == pa.float64()
    assert [r["f"] for r in got][:3] == [None, None, 1.5]
    assert [r["d"] for r in got] == [None, None, "2024-01-02", None, ""]
    assert [r["b"] for r in got] == [None, None, "true", None, ""]


def test_null_values_option(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text('id,s\n1,NULL\n2,"NULL"\n3,\n4,""\n')
    got = rows(open_source(str(path), null_values=["", "NULL"]))
    assert [r["s"] for r in got] == [None, "NULL", None, ""]  # a quoted value is never NULL
    got = rows(open_source(str(path), null_values=[]))
    assert [r["s"] for r in got] == ["NULL", "NULL", "", ""]


def test_bom_and_crlf_need_no_option(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes('\ufeffid,name\r\n1,"a\r\nb"\r\n2,é\r\n'.encode())
    source = open_source(str(path))
    assert source.schema.names == ["id", "name"]
    assert rows(source) == [{"id": 1, "name": "a\r\nb"}, {"id": 2, "name": "é"}]


def test_utf16_is_named_or_converted(tmp_path: Path) -> None:
    path = tmp_path / "u16.csv"
    path.write_bytes("id,name\n1,日本\n".encode("utf-16"))
    with pytest.raises(CelonisConfigError, match=r"u16.csv is UTF-16 .*pass encoding='utf-16'"):
        open_source(str(path))
    assert rows(open_source(str(path), encoding="utf-16")) == [{"id": 1, "name": "日本"}]


def test_latin1_is_named_or_converted(tmp_path: Path) -> None:
    path = tmp_path / "l1.csv"
    path.write_bytes("id,name\n1,a\n2,Müller\n".encode("latin-1"))
    with pytest.raises(CelonisConfigError) as raised:
        open_source(str(path))
    assert "l1.csv is not valid UTF-8: byte 0xfc at offset 15 (line 3)" in str(raised.value)
    assert "encoding=" in str(raised.value)
    assert rows(open_source(str(path), encoding="latin-1"))[1] == {"id": 2, "name": "Müller"}
    with pytest.raises(CelonisConfigError, match="unknown encoding 'klingon'"):
        open_source(str(path), encoding="klingon")


def test_sanitize_names_renames_batches(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("id,order id\n1,2\n")
    source = open_source(str(path), sanitize_names=True)
    assert source.schema.names == ["id", "order_id"]
    assert rows(source) == [{"id": 1, "order_id": 2}]


def drifting_csv(path: Path, late: str, n: int = 3000) -> Path:
    path.write_text("id,amount\n" + "".join(f"{i},{i}\n" for i in range(n)) + f"{n},{late}\n")
    return path


def test_the_data_read_is_told_every_type_and_reads_what_an_inferring_read_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The push's reader is given the type of every column the first look found (it decodes faster so): over
    many blocks, with every type pyarrow infers, NULLs, quoted line breaks and a column empty in the first
    block, its values are the ones a reader inferring the types itself gives."""
    monkeypatch.setattr(text_read, "CSV_BLOCK_BYTES", 2048)
    lines = ["i,f,b,d,t,ts,s,late"]
    for n in range(2000):
        empty = n % 7 == 0
        lines.append(
            ",".join(
                [
                    str(n),
                    "" if empty else f"{n / 8}",
                    "" if empty else ("true" if n % 2 else "false"),
                    "" if empty else f"2024-01-{n % 28 + 1:02d}",
                    "" if empty else f"10:{n % 60:02d}:00",
                    "" if empty else f"2024-01-02 03:04:{n % 60:02d}.5",
                    '""' if empty else f'"line {n}\nnext, ""q"""',
                    "" if n < 1000 else "x",  # NULL in the first block: it reads as null, then drifts
                ]
            )
        )
    path = tmp_path / "types.csv"
    path.write_text("\n".join(lines[:900]) + "\n")  # the "late" column never gets a value here
    settings = text_read.csv_first_look(path, "source", text_read.ReadSettings()).settings
    with text_read.open_csv(path, settings) as reader:  # inferring every column but the timestamps
        inferred = pa.Table.from_batches(list(reader))
    assert len(dict(settings.column_types)) < len(inferred.schema)
    source = open_source(str(path))
    assert pa.Table.from_batches(list(source.batches())).equals(inferred)
    assert inferred.num_rows == 899
    assert inferred.schema.field("late").type == pa.null()
    # a value in the column the first block held only NULLs in: the same drift as without the types
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SchemaDrift) as raised:
        rows(open_source(str(path)))
    assert raised.value.column == "late"
    assert "in row 1001" in str(raised.value)
    assert raised.value.widened is not None
    assert rows(raised.value.widened)[1500]["late"] == "x"


@pytest.mark.parametrize("sanitize", [False, True])
def test_string_lengths_are_measured_over_the_first_looks_block_before_the_first_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sanitize: bool
) -> None:
    """The job is created with the first chunk, which holds one small typed block: its STRING lengths come
    from the look's whole first block as well (``first_rows``), so a longer value a few blocks in does not
    start the job over. A column the look read as another type is left to the push."""
    import logging

    from airflow_provider_celonis.datapath.pipeline import PushSpec, prepare

    monkeypatch.setattr(text_read, "READ_BLOCK_BYTES", 2048)
    monkeypatch.setattr(text_read, "CSV_BLOCK_BYTES", 64 << 10)
    lines = [f"id,{'my text' if sanitize else 'my_text'},code"]  # sanitized: renamed to my_text
    for n in range(2000):
        lines.append(f'{n},"{"é" * 300 if n == 1000 else f"row {n}"}",{n}')
    path = tmp_path / "lengths.csv"
    path.write_text("\n".join(lines) + "\n")
    source = open_source(str(path), sanitize_names=sanitize)
    assert source.first_rows is not None
    assert source.first_rows.num_rows == 2000
    [part] = prepare(PushSpec("t"), "pool", source, None, logging.getLogger("t"))
    assert part.plan.lengths == {"my_text": 300}  # characters, not bytes; "code" is an integer
    assert source.first_rows is None  # not kept for the whole push
    batches = list(part.batches)
    assert batches[0].num_rows < 1000  # the first batch alone would not have seen it
    assert sum(b.num_rows for b in batches) == 2000


@pytest.mark.parametrize("long_at", [0, 1500, 2999])
def test_a_record_longer_than_a_typed_read_block_is_read_on_in_larger_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, long_at: int
) -> None:
    """The push's typed read takes small blocks; pyarrow fails on a record longer than one after handing out
    the rows before it. The file is read on from the next row in look-sized blocks: every row once, in order,
    the long one whole (its quoted line breaks included)."""
    monkeypatch.setattr(text_read, "READ_BLOCK_BYTES", 2048)
    monkeypatch.setattr(text_read, "CSV_BLOCK_BYTES", 64 << 10)
    long_value = "long\nvalue, " + "z" * 10_000
    lines = ["id,text,amount"]
    for n in range(3000):
        text = long_value if n == long_at else f"row {n}"
        lines.append(f'{n},"{text}",{n / 4}')
    path = tmp_path / "long.csv"
    path.write_text("\n".join(lines) + "\n")
    with caplog.at_level("INFO"):
        got = rows(open_source(str(path)))
    assert "reading on in larger blocks" in caplog.text
    assert [r["id"] for r in got] == list(range(3000))
    assert got[long_at]["text"] == long_value
    assert [r["text"] for r in got if r["id"] != long_at] == [f"row {n}" for n in range(3000) if n != long_at]
    assert [r["amount"] for r in got] == [n / 4 for n in range(3000)]


@pytest.mark.parametrize(
    ("late", "widened", "last"),
    [("2.5", pa.float64(), 2.5), ("A12", pa.string(), "A12")],
)
def test_drift_in_a_later_block_widens_and_rereads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, late: str, widened: pa.DataType, last: Any
) -> None:
    monkeypatch.setattr(text_read, "CSV_BLOCK_BYTES", 1024)
    source = open_source(str(drifting_csv(tmp_path / "d.csv", late)))
    assert source.schema.field("amount").type == pa.int64()
    with pytest.raises(SchemaDrift) as raised:
        rows(source)
    drift = raised.value
    assert drift.column == "amount"
    assert drift.new == widened
    assert drift.widened is not None
    assert "column 'amount' holds" in str(drift)
    assert "in row 3001" in str(drift)
    got = rows(drift.widened)
    assert drift.widened.schema.field("amount").type == widened
    assert len(got) == 3001
    assert got[-1]["amount"] == last
    assert got[7]["amount"] == ("7" if widened == pa.string() else 7.0)


def test_with_widening_restarts_until_it_fits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two drifts in one file (int -> float, then float -> string): two restarts, all rows."""
    monkeypatch.setattr(text_read, "CSV_BLOCK_BYTES", 1024)
    path = tmp_path / "dd.csv"
    path.write_text(
        "id,amount\n"
        + "".join(f"{i},{i}\n" for i in range(3000))
        + "3000,2.5\n"
        + "".join(f"{i},{i}\n" for i in range(3001, 6000))
        + "6000,n/a\n"
    )
    _, got, drifts = widened_rows(open_source(str(path)))
    assert [f"{d.old}->{d.new}" for d in drifts] == ["int64->double", "double->string"]
    assert len(got) == 6001
    assert got[3000]["amount"] == "2.5"
    assert got[-1]["amount"] == "n/a"


@pytest.mark.parametrize(
    ("first", "later"),
    [("2024-01-01T00:00:00", "2024-01-01T00:00:00+02:00"), ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00")],
)
def test_a_zone_offset_appearing_or_missing_in_a_later_block_widens_to_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: str, later: str
) -> None:
    """pyarrow says "expected no zone offset" (or "a zone offset"), not "invalid value": the column is
    still named, with its row, and widened to STRING as the date -> timestamp -> string ladder says."""
    monkeypatch.setattr(text_read, "CSV_BLOCK_BYTES", 1024)
    path = tmp_path / "tz.csv"
    path.write_text("id,at\n" + "".join(f"{i},{first}\n" for i in range(300)) + f"300,{later}\n")
    _, got, drifts = widened_rows(open_source(str(path)))
    assert [(d.column, str(d.new)) for d in drifts] == [("at", "string")]
    assert f"holds {later!r} in row 301" in str(drifts[0])
    assert [r["at"] for r in got] == [first] * 300 + [later]


def test_drift_in_a_stream_read_once_is_the_clear_error() -> None:
    def batches() -> Any:
        yield pa.table({"id": [1, 2]})
        yield pa.table({"id": ["x"]})

    source = open_source(batches())
    with pytest.raises(CelonisConfigError, match="a later batch has a different schema than the first"):
        rows(source)


@pytest.mark.parametrize(
    ("first", "later"),
    [
        ([1], ["0042"]),  # would land as 42
        ([True], ["1"]),  # would land as true
        ([1.5], ["nan"]),  # would land as NaN, not the text
        ([1], [True]),
        ([1], [2.5]),  # would be cut to 2: pyarrow's safe cast refuses
    ],
)
def test_a_stream_never_reads_a_later_batchs_values_again_into_the_first_batchs_type(
    first: list[Any], later: list[Any]
) -> None:
    source = open_source(iter([pa.table({"code": first}), pa.table({"code": later})]))
    with pytest.raises(CelonisConfigError, match=r"column 'code' is .*, the first batch's is"):
        rows(source)


def test_a_stream_casts_a_later_batch_where_every_value_stays_as_it_is() -> None:
    batches = [
        pa.table({"n": [1.5], "s": ["x"], "i": [1]}),
        pa.table({"n": pa.array([3], pa.int32()), "s": [7], "i": pa.array([None], pa.null())}),
    ]
    assert rows(open_source(iter(batches))) == [
        {"n": 1.5, "s": "x", "i": 1},
        {"n": 3.0, "s": "7", "i": None},
    ]


def test_files_with_different_types_read_as_the_wider_type(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,code,when\n1,7,2024-01-01\n")
    (tmp_path / "b.csv").write_text("id,code,when\n2,007x,2024-01-02 10:00:00\n")
    source = open_source(str(tmp_path / "*.csv"))
    assert source.schema.field("code").type == pa.string()
    assert rows(source) == [
        {"id": 1, "code": "7", "when": dt.datetime(2024, 1, 1)},
        {"id": 2, "code": "007x", "when": dt.datetime(2024, 1, 2, 10)},
    ]


def test_timestamps_read_as_microseconds_whatever_the_first_block_suggests(tmp_path: Path) -> None:
    path = tmp_path / "ts.csv"
    path.write_text(
        "a,b,z\n2024-01-02 03:04:05.123,2024-01-02 03:04:05.5,2024-01-02T03:04:05.5+02:00\n"
        "9999-12-31 00:00:00,,2024-01-02T03:04:05Z\n"
    )
    source = open_source(str(path))
    assert [f.type for f in source.schema] == [
        pa.timestamp("us"),
        pa.timestamp("us"),
        pa.timestamp("us", "UTC"),
    ]
    got = rows(source)
    assert got[0]["a"] == dt.datetime(2024, 1, 2, 3, 4, 5, 123000)
    assert got[1]["a"] == dt.datetime(9999, 12, 31)
    assert got[0]["z"] == dt.datetime(2024, 1, 2, 1, 4, 5, 500000, tzinfo=dt.timezone.utc)


def test_push_widening_replans_with_the_widened_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lifecycle's entry point: clean up, re-plan with the widened source, push again."""
    from dataclasses import dataclass

    from airflow_provider_celonis.datapath.drift import push_widening

    monkeypatch.setattr(text_read, "CSV_BLOCK_BYTES", 1024)

    @dataclass
    class Part:
        kind: str
        source: BatchSource

    def replan(up: BatchSource | None, deleted: BatchSource | None) -> list[Part]:
        return [Part(k, s) for k, s in (("upserted", up), ("deleted", deleted)) if s is not None]

    cleaned: list[int] = []
    parts = replan(
        open_source(str(drifting_csv(tmp_path / "d.csv", "A12"))), open_source(pa.table({"id": [1]}))
    )
    got = push_widening(lambda ps: [rows(p.source) for p in ps], parts, replan, lambda: cleaned.append(1))
    assert cleaned == [1]
    assert len(got[0]) == 3001
    assert got[0][-1]["amount"] == "A12"
    assert got[1] == [{"id": 1}]

    once = replan(
        open_source(str(drifting_csv(tmp_path / "e.csv", "A12"))), open_source(iter([pa.table({"id": [1]})]))
    )
    with pytest.raises(SchemaDrift, match="column 'amount' holds 'A12'"):
        push_widening(lambda ps: [rows(p.source) for p in ps], once, replan, lambda: None)


def test_what_pyarrow_does_with_empty_fields() -> None:
    """Why ``ReadSettings`` sets three options: pyarrow's defaults cannot keep NULL and '' apart."""
    import io

    import pyarrow.csv as pacsv

    data = b'id,s\n1,\n2,""\n3,x\n'

    def read(**convert: Any) -> list[Any]:
        table = pacsv.read_csv(io.BytesIO(data), convert_options=pacsv.ConvertOptions(**convert))
        return list(table.column("s").to_pylist())

    assert read() == ["", "", "x"]  # the default: a string is never NULL
    assert read(strings_can_be_null=True) == [None, None, "x"]  # quoted or not
    ours = {"strings_can_be_null": True, "quoted_strings_can_be_null": False, "null_values": [""]}
    assert read(**ours) == [None, "", "x"]


@pytest.mark.parametrize(
    "text",
    [
        "id,at,zoned,s\n1,2024-01-02 03:04:05,2024-01-02T03:04:05Z,x\n2,,2024-01-02T03:04:05.5+00:00,\n",
        "id,at\n1,2024-01-02 03:04:05.123456\n2,9999-12-31 23:59:59\n",
        "id,mixed\n1,2024-01-02\n2,2024-01-02 03:04:05+01:00\n",  # stays a string
        'id,n,b\n1,"",true\n2,5,false\n',
        "id,empty\n",
    ],
)
def test_the_first_look_gives_the_schema_a_read_with_its_settings_gives(tmp_path: Path, text: str) -> None:
    """One read of the first block serves the timestamp check and the schema: the schema must be what a
    reader opened with the resulting settings sees (the data read opens it so)."""
    path = tmp_path / "t.csv"
    path.write_text(text)
    settings, looked, _ = text_read.csv_first_look(path, "source", text_read.ReadSettings())
    with text_read.open_csv(path, settings, threads=False) as reader:
        expected = reader.schema
    if looked is None:  # no rows: the schema read itself answers
        assert text.count("\n") == 1
    else:
        assert looked.equals(expected, check_metadata=True), (looked, expected)
    assert open_source(str(path)).schema.equals(expected)


def _big_csv(path: Path, first_value: str) -> Path:
    """A CSV larger than the first look's head, whose first record holds ``first_value``."""
    rows = "".join(
        f'{n},"line one\nline ""two"", {n}",2024-01-{n % 28 + 1:02d} 10:00:00\n' for n in range(1, 1001)
    )
    repeats = text_read.LOOK_BYTES // len(rows) + 2
    path.write_text(f'id,text,at\n0,"{first_value}",2024-01-01 00:00:00.5\n' + rows * repeats)
    assert path.stat().st_size > text_read.LOOK_BYTES
    return path


def _whole_file_first_batch(path: Path, settings: text_read.ReadSettings) -> pa.RecordBatch | None:
    try:
        with text_read.open_csv(str(path), settings, threads=False) as reader:
            return reader.read_next_batch()
    except pa.ArrowInvalid:
        return None


@pytest.mark.parametrize("first_value", ["short", "x" * (text_read.CSV_BLOCK_BYTES + 1024)])
def test_the_first_look_at_a_big_file_reads_its_head_and_sees_what_the_whole_file_shows(
    tmp_path: Path, first_value: str
) -> None:
    """The look reads the first ``LOOK_BYTES`` (pyarrow would read 32 blocks ahead) and finds what a look at
    the whole file finds: records with line breaks across block ends included. A record longer than a block
    fails pyarrow's reader on the whole file too ("straddles two block boundaries"): the look then gives up
    alike, and the schema read names the error."""
    path = _big_csv(tmp_path / "big.csv", first_value)
    head = text_read._head(path)
    assert head is not None
    assert head.size() == text_read.LOOK_BYTES
    settings, looked, _ = text_read.csv_first_look(path, "source", text_read.ReadSettings())
    whole_first = _whole_file_first_batch(path, settings)
    if whole_first is None:
        assert len(first_value) > text_read.CSV_BLOCK_BYTES
        assert (settings, looked) == (text_read.ReadSettings(), None)
        return
    assert dict(settings.column_types) == {"at": pa.timestamp("us")}
    assert looked is not None
    assert looked.equals(whole_first.schema, check_metadata=True)
    assert open_source(str(path)).schema.equals(whole_first.schema)
    assert whole_first.column("text")[0].as_py() == first_value
    # a second file's schema is read from its head as well
    second = tmp_path / "big2.csv"
    second.write_bytes(path.read_bytes())
    both = open_source([str(path), str(second)])
    assert both.schema.equals(whole_first.schema)


def test_a_small_file_is_looked_at_whole(tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    path.write_text("id\n1\n")
    assert text_read._head(path) is None


def test_a_dataframes_named_index_levels_are_pushed_as_columns_an_unnamed_index_is_not() -> None:
    import pandas as pd

    frame = pd.DataFrame({"g": ["a", "a", "b"], "n": [1, 2, 1], "v": [1.0, 2.0, 3.0]})
    assert rows(open_source(frame.groupby("g")["v"].sum().to_frame())) == [
        {"g": "a", "v": 3.0},
        {"g": "b", "v": 3.0},
    ]
    assert rows(open_source(frame.set_index(["g", "n"]))) == frame.to_dict("records")
    assert rows(open_source(frame[frame.v > 1])) == frame[frame.v > 1].to_dict("records")  # positions
    assert rows(open_source(iter([frame.set_index("g")]))) == frame.to_dict("records")
    with pytest.raises(CelonisConfigError, match=r"index level\(s\) \['g'\] are pushed as columns"):
        open_source(frame.set_index(pd.Index(["x", "y", "z"], name="g")))


def test_an_unnamed_index_that_carries_data_is_refused_not_dropped() -> None:
    """stack()'s inner level and an index of dates or labels have no name, but they are data: dropped, rows
    of one id could no longer be told apart (q1 from q2)."""
    import pandas as pd

    wide = pd.DataFrame({"id": [1, 2], "q1": [1.0, 2.0], "q2": [3.0, 4.0]}).set_index("id")
    with pytest.raises(
        CelonisConfigError, match=r"index level 1 \((str|object) values\) has no name.*reset_index\(level=1"
    ):
        open_source(wide.stack().to_frame("amount"))
    days = pd.DataFrame({"a": [1, 2]}, index=pd.date_range("2024-01-01", periods=2))
    with pytest.raises(CelonisConfigError, match=r"index level 0 \(datetime64.*rename_axis\('name'\)"):
        open_source(days)
    assert rows(open_source(days.rename_axis("day"))) == [
        {"day": dt.datetime(2024, 1, 1), "a": 1},
        {"day": dt.datetime(2024, 1, 2), "a": 2},
    ]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["9223372036854775807", "9223372036854775808"], pa.string()),  # pyarrow: double, both rounded
        (["9007199254740993", "2.5"], pa.string()),  # 2**53 + 1 beside a fraction: would land ...992
        (["9007199254740992", "2.5"], pa.float64()),  # exactly a double
        (["1e20", "2.5"], pa.float64()),  # a float literal, not an integer
        (["3", "2.5"], pa.float64()),
    ],
)
def test_a_first_block_integer_a_double_cannot_hold_makes_the_column_text(
    tmp_path: Path, values: list[str], expected: pa.DataType
) -> None:
    path = tmp_path / "big.csv"
    path.write_text("id,v\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    source = open_source(str(path))
    assert source.schema.field("v").type == expected
    got = [r["v"] for r in rows(source)]
    assert got == (values if expected == pa.string() else [float(v) for v in values])


def test_a_file_value_the_files_shared_type_cannot_hold_names_the_file_and_column(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": [1], "v": [2**53 + 1]}), tmp_path / "a.parquet")  # a double would round it
    pq.write_table(pa.table({"id": [2], "v": [2.5]}), tmp_path / "b.parquet")
    source = open_source(str(tmp_path / "*.parquet"))
    assert source.schema.field("v").type == pa.float64()
    with pytest.raises(CelonisConfigError, match=r"a\.parquet: column 'v' is int64 in this file and double"):
        rows(source)


def test_an_integer_a_double_cannot_hold_in_a_later_file_makes_the_column_text(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,v\n1,5\n")
    (tmp_path / "b.csv").write_text("id,v\n2,2.5\n3,9007199254740993\n")  # 2**53 + 1 beside a fraction
    source = open_source(str(tmp_path / "*.csv"))
    assert source.schema.field("v").type == pa.string()
    assert [r["v"] for r in rows(source)] == ["5", "2.5", "9007199254740993"]


@pytest.mark.parametrize("first_block", [True, False])
def test_timestamps_with_more_than_six_fractional_digits_are_cut_to_microseconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first_block: bool
) -> None:
    """SQL Server's datetime2 writes seven digits, Java and Snowflake nine: pyarrow cannot read them as
    microseconds, and the push failed (in the first block) or landed the column as text (later on)."""
    monkeypatch.setattr(text_read, "CSV_BLOCK_BYTES", 1024)
    fine = [
        "2024-01-02 03:04:05.1234567",
        "1969-12-31 23:59:59.9999999",  # cut digits are a floor before 1970 too
        "9999-12-31 23:59:59.9999999",  # beyond timestamp[ns]
        "2024-01-02 03:04:05.123000000",
    ]
    plain = ["2024-01-02 03:04:05.5"] * (1 if first_block else 300)
    path = tmp_path / "fine.csv"
    path.write_text("id,at\n" + "".join(f"{i},{v}\n" for i, v in enumerate(plain + fine + [""])))
    source, got, drifts = widened_rows(open_source(str(path)))
    assert source.schema.field("at").type == pa.timestamp("us")
    assert [(d.column, d.old, d.new) for d in drifts] == [("at", pa.timestamp("us"), pa.timestamp("us"))]
    assert f"holds {fine[0]!r} in row {len(plain) + 1}, a timestamp with more than six" in str(drifts[0])
    assert [r["at"] for r in got[len(plain) :]] == [
        dt.datetime(2024, 1, 2, 3, 4, 5, 123456),
        dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        dt.datetime(2024, 1, 2, 3, 4, 5, 123000),
        None,
    ]
    assert len(got) == len(plain) + len(fine) + 1


def test_fine_timestamps_meeting_text_later_widen_to_the_text_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(text_read, "CSV_BLOCK_BYTES", 1024)
    path = tmp_path / "fine.csv"
    zoned = "2024-01-02T03:04:05.1234567+02:00"
    path.write_text("id,at\n" + "".join(f"{i},{zoned}\n" for i in range(300)) + "300,soon\n")
    _, got, drifts = widened_rows(open_source(str(path)))
    assert [str(d.new) for d in drifts] == ["timestamp[us, tz=UTC]", "string"]
    assert "holds 'soon' in row 301" in str(drifts[1])
    assert [r["at"] for r in got] == [zoned] * 300 + ["soon"]  # not cut: the text as written


def test_json_integers_a_double_cannot_hold_make_the_column_text_as_written(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_text(
        '{"id": 1, "v": 9223372036854775808, "w": 9007199254740992, "t": "2024-01-02 03:04:05.1234567"}\n'
        '{"id": 2, "v": 1.50, "w": 1.5, "t": null}\n{"id": 3, "w": 2, "s": "a\u2028b"}\n'
    )
    source = open_source(str(path))
    assert source.schema.field("v").type == pa.string()
    assert source.schema.field("w").type == pa.float64()  # 2**53 is a double exactly
    assert source.schema.field("t").type == pa.timestamp("us")
    got = rows(source)
    assert [r["v"] for r in got] == ["9223372036854775808", "1.50", None]
    assert [r["w"] for r in got] == [2.0**53, 1.5, 2.0]
    assert got[0]["t"] == dt.datetime(2024, 1, 2, 3, 4, 5, 123456)


def test_columns_declared_string_are_read_as_written_in_every_file(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,Zip\n1,01067\n")
    (tmp_path / "b.csv").write_text("id,Zip\n2,+49\n3,\n")  # alone, pyarrow would read +49 as 49.0
    source = open_source(str(tmp_path / "*.csv"), text_columns=["zip"])
    assert source.schema.field("Zip").type == pa.string()
    assert source.schema.field("id").type == pa.int64()
    assert [r["Zip"] for r in rows(source)] == ["01067", "+49", None]


def test_tsv_files_and_csv_parsing_options_set_the_clients_separator(tmp_path: Path) -> None:
    """Before, the client read every file with commas: a .tsv or ;-separated file landed as one column."""
    (tmp_path / "t.tsv").write_text('id\tname\n1\tc,d\n2\t"x\ty"\n')
    assert rows(open_source(str(tmp_path / "t.tsv"))) == [{"id": 1, "name": "c,d"}, {"id": 2, "name": "x\ty"}]
    (tmp_path / "s.csv").write_text("id;name\n1;'a;b'\n2;'it\\'s'\n")
    options = {"separatorSequence": ";", "quoteSequence": "'", "escapeSequence": "\\"}
    assert rows(open_source(str(tmp_path / "s.csv"), csv_parsing_options=options)) == [
        {"id": 1, "name": "a;b"},
        {"id": 2, "name": "it's"},
    ]
    with pytest.raises(CelonisConfigError, match="decimalSeparator only apply where Celonis parses"):
        open_source(str(tmp_path / "s.csv"), csv_parsing_options={"decimalSeparator": ","})
    with pytest.raises(CelonisConfigError, match="separatorSequence='::': the client reads one character"):
        open_source(str(tmp_path / "s.csv"), csv_parsing_options={"separatorSequence": "::"})
    (tmp_path / "both").mkdir()
    (tmp_path / "both" / "a.csv").write_text("id\n1\n")
    (tmp_path / "both" / "b.tsv").write_text("id\n2\n")
    with pytest.raises(CelonisConfigError, match=r"mixes \.tsv \(tab-separated\) and other CSV files"):
        open_source(str(tmp_path / "both" / "*"))


def test_json_objects_across_lines_or_in_an_array(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text(
        '{\n "id": 1,\n "x": 9007199254740993\n}\n{"id": 2, "x": 1.5} {"id": 3}\n'
    )
    assert rows(open_source(str(tmp_path / "p.json"))) == [
        {"id": 1, "x": "9007199254740993"},
        {"id": 2, "x": "1.5"},
        {"id": 3, "x": None},
    ]
    (tmp_path / "a.json").write_text('[{"id": 1}, {"id": 2}]')
    with pytest.raises(CelonisConfigError, match="it holds a JSON array; JSON lines are read"):
        open_source(str(tmp_path / "a.json"))


def test_a_folder_widens_each_column_to_what_holds_every_files_values(tmp_path: Path) -> None:
    """Found by a hunt: b.csv's fraction made a.csv's 2**53 + 1 a rounded double, and a.csv's timestamps
    were forced onto b.csv's text (the push failed)."""
    (tmp_path / "a.csv").write_text("id,big,at,n\n1,9007199254740993,2024-01-01 10:00:00,5\n")
    (tmp_path / "b.csv").write_text("id,big,at,n\n2,1.5,unknown,2.5\n")
    source, got, drifts = widened_rows(open_source(str(tmp_path / "*.csv")))
    assert [(d.column, str(d.new)) for d in drifts] == [("big", "string")]
    assert [source.schema.field(c).type for c in ("big", "at", "n")] == [
        pa.string(),
        pa.string(),
        pa.float64(),
    ]
    assert got == [
        {"id": 1, "big": "9007199254740993", "at": "2024-01-01 10:00:00", "n": 5.0},
        {"id": 2, "big": "1.5", "at": "unknown", "n": 2.5},
    ]


def test_an_object_column_of_dates_and_datetimes_keeps_the_times() -> None:
    """pyarrow typed it date from the first value and dropped 10:30 from the datetime after it."""
    import pandas as pd

    values = [dt.date(2024, 1, 1), dt.datetime(2024, 1, 1, 10, 30), None]
    for source in (pd.DataFrame({"x": pd.Series(values, dtype=object)}), iter([pd.DataFrame({"x": values})])):
        got = [r["x"] for r in rows(open_source(source))]
        assert got == [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, 10, 30), None]
    assert rows(open_source(pd.DataFrame({"x": [dt.date(2024, 1, 1)]}))) == [{"x": dt.date(2024, 1, 1)}]


def test_an_encoding_and_a_charset_spelling_one_codec_agree(tmp_path: Path) -> None:
    (tmp_path / "u.csv").write_text("id,name\n1,é\n", encoding="utf-8")
    source = open_source(str(tmp_path / "u.csv"), encoding="utf8", csv_parsing_options={"charSet": "UTF-8"})
    assert rows(source) == [{"id": 1, "name": "é"}]
    with pytest.raises(CelonisConfigError, match="encoding='utf8' and csv_parsing_options charSet='latin-1'"):
        open_source(str(tmp_path / "u.csv"), encoding="utf8", csv_parsing_options={"charSet": "latin-1"})


def test_empty_files_among_several_are_skipped_and_alone_make_an_empty_source(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,v\n1,x\n")
    (tmp_path / "b.csv").write_text("")
    (tmp_path / "c.csv").write_text("id,v\n")
    source = open_source(str(tmp_path / "*.csv"))
    assert source.paths == [str(tmp_path / "a.csv"), str(tmp_path / "c.csv")]
    assert rows(source) == [{"id": 1, "v": "x"}]
    gz = tmp_path / "d.csv.gz"
    gz.write_bytes(gzip.compress(b""))
    for empty in ([str(tmp_path / "b.csv"), str(gz)], str(tmp_path / "b.csv")):
        source = open_source(empty)
        assert source.schema.names == []
        assert rows(source) == []


def test_times_of_day_with_fractions_are_times_not_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyarrow infers ``10:15:30`` as a time but leaves ``10:15:30.123`` (or both in one column) as text, so
    such a column landed as STRING; it is read as a time of day (Celonis keeps milliseconds)."""
    path = tmp_path / "shifts.csv"
    path.write_text("id,starts,ends\n1,10:15:30.123,08:00:00\n2,,23:59:59.9999999\n3,07:05:00,12:00:00.5\n")
    source = open_source(str(path))
    assert [str(source.schema.field(c).type) for c in ("starts", "ends")] == ["time64[ns]", "time64[ns]"]
    plan = plan_schema(source.schema)
    assert [c["columnType"] for c in plan.columns] == ["INTEGER", "TIME", "TIME"]
    got = [row for batch in source.batches() for row in conform(batch, plan, "t").to_pylist()]
    assert got == [
        {"id": 1, "starts": dt.time(10, 15, 30, 123000), "ends": dt.time(8, 0)},
        {"id": 2, "starts": None, "ends": dt.time(23, 59, 59, 999000)},  # cut to the millisecond
        {"id": 3, "starts": dt.time(7, 5), "ends": dt.time(12, 0, 0, 500000)},
    ]
    # A whole-second time column (time32[s]) that meets a fraction in a later block widens to a finer time,
    # and one NULL in the whole first block takes a time from its first value; neither becomes text.
    monkeypatch.setattr(text_read, "CSV_BLOCK_BYTES", 1024)
    later = tmp_path / "later.csv"
    later.write_text(
        "at,first\n" + "".join(f"10:00:{i % 60:02d},\n" for i in range(300)) + "10:00:00.25,06:30:00\n"
    )
    _, got, drifts = widened_rows(open_source(str(later)))
    assert {(d.column, str(d.new)) for d in drifts} == {("at", "time64[ns]"), ("first", "time64[ns]")}
    assert got[-1] == {"at": dt.time(10, 0, 0, 250000), "first": dt.time(6, 30)}
    assert got[0] == {"at": dt.time(10, 0), "first": None}


def test_files_with_the_same_columns_in_another_order_are_matched_by_name(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    csvs = tmp_path / "csv"
    csvs.mkdir()
    (csvs / "a.csv").write_text("id,name,amount\n1,a,1.5\n")
    (csvs / "b.csv").write_text("amount,id,name\n2,2,b\n")
    (csvs / "c.csv").write_text("name,amount,id\nc,,x3\n")  # and id widens to text, by name
    jsons = tmp_path / "json"
    jsons.mkdir()
    (jsons / "a.jsonl").write_text('{"id": 1, "name": "a"}\n')
    (jsons / "b.jsonl").write_text('{"name": "b", "id": 2}\n')
    parquets = tmp_path / "parquet"
    parquets.mkdir()
    pq.write_table(pa.table({"id": [1], "name": ["a"]}), parquets / "a.parquet")
    pq.write_table(pa.table({"name": ["b"], "id": [2]}), parquets / "b.parquet")
    source = open_source(str(csvs))
    assert source.schema.names == ["id", "name", "amount"]
    assert sorted(rows(source), key=lambda r: r["name"]) == [
        {"id": "1", "name": "a", "amount": 1.5},
        {"id": "2", "name": "b", "amount": 2.0},
        {"id": "x3", "name": "c", "amount": None},
    ]
    for folder in (jsons, parquets):
        assert rows(open_source(str(folder))) == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    # Other names, or a name twice, still differ.
    (csvs / "d.csv").write_text("id,label,amount\n4,d,1\n")
    with pytest.raises(CelonisConfigError, match=r"d\.csv has columns \['id', 'label', 'amount'\]"):
        open_source(str(csvs))


def test_json_lines_are_read_in_blocks_with_the_rules_of_one_whole_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JSON lines file is read a block at a time (memory follows the block): a key first seen in a later
    block, integers then fractions, timestamps then text, all settle as one whole read would."""
    from airflow_provider_celonis.datapath import json_lines

    monkeypatch.setattr(json_lines, "JSON_BLOCK_BYTES", 256)
    lines = [f'{{"id": {i}, "n": {i}, "big": {i}, "at": "2024-01-0{i % 9 + 1}T10:00:00"}}' for i in range(40)]
    lines += [
        '{"id": 40, "n": 0.5, "big": 9007199254740993, "at": "2024-01-02 10:00:00.1234567", "late": "x"}'
    ]
    lines += ['{"id": 41, "at": "soon", "big": 1.5}', '{"id": 42, "late": null}']
    path = tmp_path / "blocks.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert len(list(json_lines.json_blocks(path))) > 5
    source = open_source(str(path))
    assert [(f.name, str(f.type)) for f in source.schema] == [  # the keys' order, the late one last
        ("id", "int64"),
        ("n", "double"),
        ("big", "string"),  # 2**53 + 1, and 1.5 in another block: a double would round it, so as written
        ("at", "string"),  # "soon" is no timestamp: every value as written
        ("late", "string"),
    ]
    got = rows(source)
    assert [r["id"] for r in got] == list(range(43))
    assert got[0] == {"id": 0, "n": 0.0, "big": "0", "at": "2024-01-01T10:00:00", "late": None}
    assert got[40] == {
        "id": 40,
        "n": 0.5,
        "big": "9007199254740993",
        "at": "2024-01-02 10:00:00.1234567",
        "late": "x",
    }
    assert (got[41]["at"], got[41]["big"], got[42]["late"]) == ("soon", "1.5", None)
    # Without the text, the timestamps of every block are timestamps (seconds and fractions alike), and
    # integers beyond 2**53 beside integers only stay integers.
    path.write_text("\n".join(lines[:41]) + "\n")
    source = open_source(str(path))
    assert source.schema.names == ["id", "n", "big", "at", "late"]
    assert str(source.schema.field("big").type) == "int64"
    got = rows(source)
    assert got[40]["big"] == 9007199254740993
    assert got[0]["at"] == dt.datetime(2024, 1, 1, 10, 0)
    assert got[40]["at"] == dt.datetime(2024, 1, 2, 10, 0, 0, 123456)


def test_json_lines_errors_name_the_row_in_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_celonis.datapath import json_lines

    lines = [f'{{"id": {i}, "amount": {i}}}' for i in range(60)]
    numbers = "\n".join(lines) + "\n"
    path = tmp_path / "mixed.jsonl"
    # One block of numbers, the next of text: the blocks' kinds disagree.
    path.write_text(numbers + "".join(f'{{"id": {i}, "amount": "n/a"}}\n' for i in range(60, 80)))
    monkeypatch.setattr(json_lines, "JSON_BLOCK_BYTES", len(numbers))
    assert len(list(json_lines.json_blocks(path))) == 2
    with pytest.raises(
        CelonisConfigError,
        match=r"column 'amount' holds number values \(from rows 1-60 on\) and string values in rows 61-80; "
        "JSON lines cannot hold both",
    ):
        open_source(str(path))
    # Within a block, one of several: pyarrow's own message, its row counted from the file's first row; and
    # a column known to hold text that meets a number in a later block.
    monkeypatch.setattr(json_lines, "JSON_BLOCK_BYTES", 256)
    path.write_text("\n".join([*lines[:50], '{"id": 50, "amount": "n/a"}', *lines[51:]]) + "\n")
    with pytest.raises(
        CelonisConfigError, match=r"Column\(/amount\) changed from number to string in row 51"
    ):
        open_source(str(path))
    texts = [f'{{"id": {i}, "code": "c{i}"}}' for i in range(50)]
    path.write_text("\n".join([*texts, '{"id": 50, "code": 7}']) + "\n")
    with pytest.raises(CelonisConfigError, match=r"Column\(/code\) changed from string to number in row 51"):
        open_source(str(path))


@pytest.mark.parametrize("bom", [b"\xef\xbb\xbf", b""])
def test_json_blocks_cut_only_where_a_line_starts_an_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bom: bytes
) -> None:
    """At every block size: the blocks join back to the file (its byte-order mark dropped), and each ends
    with a line break before a line that starts an object (a brace inside a string is no cut)."""
    from airflow_provider_celonis.datapath import json_lines

    text = (
        b"".join(b'{"id": %d, "s": "a\\n{b"}\n' % i for i in range(30))
        + b'{\n "p": 1\n}\n{"x": 2} {"y": 3}\n'
    )
    path = tmp_path / "b.jsonl"
    path.write_bytes(bom + text)
    for size in range(1, 80):
        monkeypatch.setattr(json_lines, "JSON_BLOCK_BYTES", size)
        blocks = list(json_lines.json_blocks(path))
        assert b"".join(blocks) == text, size
        assert all(b.endswith(b"\n") and b.startswith(b"{") for b in blocks[:-1]), size
    assert [r.get("id") for r in rows(open_source(str(path)))] == [*range(30), None, None, None]


@pytest.mark.parametrize("block", [32, 4 << 20])
def test_json_types_do_not_depend_on_where_blocks_are_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    """Found by a hunt: pyarrow's own timestamp inference per block (whole seconds with an offset read as
    naive, a date alone as a timestamp) made a column's type depend on the block size; 2**53 beside a
    fraction became text; pretty-printed files failed."""
    import json

    from airflow_provider_celonis.datapath import json_lines

    monkeypatch.setattr(json_lines, "JSON_BLOCK_BYTES", block)
    cases: list[tuple[str, str, list[Any]]] = [
        (
            '{"t":"2024-01-02T03:04:05+02:00"}\n{"t":"2024-01-02T03:04:05.5+02:00"}\n',
            "timestamp[us, tz=UTC]",
            [
                dt.datetime(2024, 1, 2, 1, 4, 5, tzinfo=dt.timezone.utc),
                dt.datetime(2024, 1, 2, 1, 4, 5, 500000, tzinfo=dt.timezone.utc),
            ],
        ),
        (
            '{"t":"2024-01-03"}\n{"t":"2024-01-02 03:04:05.123"}\n',
            "timestamp[us]",
            [dt.datetime(2024, 1, 3), dt.datetime(2024, 1, 2, 3, 4, 5, 123000)],
        ),
        (  # a zone and none, in one column: no instant is made up, every value as written
            '{"t":"2024-01-02T03:04:05+02:00"}\n{"t":"2024-01-02T03:04:05"}\n',
            "string",
            ["2024-01-02T03:04:05+02:00", "2024-01-02T03:04:05"],
        ),
        ('{"t":9007199254740992}\n{"t":1.5}\n', "double", [2.0**53, 1.5]),  # 2**53 is a double exactly
        (
            json.dumps({"a": 0, "arr": [{"k": 0}]}, indent=0) + "\n",
            "list<item: struct<k: int64>>",
            [[{"k": 0}]],
        ),
    ]
    for number, (text, kind, values) in enumerate(cases):
        path = tmp_path / f"{number}.jsonl"
        path.write_text(text)
        source = open_source(str(path))
        column = source.schema.names[-1]
        assert str(source.schema.field(column).type) == kind, text
        assert [r[column] for r in rows(source)] == values, text
    pretty = tmp_path / "pretty.json"  # over pyarrow's 1 MiB pieces
    pretty.write_text("".join(json.dumps({"a": i, "b": "x" * 20}, indent=2) + "\n" for i in range(40_000)))
    if block > 32:
        assert [r["a"] for r in rows(open_source(str(pretty)))] == list(range(40_000))


def test_json_with_nested_values_settles_timestamps_from_their_text_as_flat_files_do(tmp_path: Path) -> None:
    """A file with nested values is read whole by pyarrow, whose pieces infer timestamps on their own: an
    offset on whole seconds became a naive instant, and naive and zoned values mixed landed as one kind."""
    zoned = tmp_path / "zoned.jsonl"
    zoned.write_text(
        '{"id": 1, "at": "2024-01-01T10:00:00+02:00", "tags": [1]}\n'
        '{"id": 2, "at": "2024-01-01T11:00:00+02:00", "tags": [2, 3]}\n'
    )
    source = open_source(str(zoned))
    assert str(source.schema.field("at").type) == "timestamp[us, tz=UTC]"
    assert [r["at"] for r in rows(source)] == [
        dt.datetime(2024, 1, 1, 8, 0, tzinfo=dt.timezone.utc),
        dt.datetime(2024, 1, 1, 9, 0, tzinfo=dt.timezone.utc),
    ]
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(
        '{"id": 1, "at": "2024-01-01T10:00:00", "tags": [1]}\n'
        '{"id": 2, "at": "2024-01-01T10:00:00+01:00", "tags": [2]}\n'
        '{"id": 3, "at": "2024-02-30T10:00:00", "tags": [2]}\n'
    )
    source = open_source(str(mixed))
    assert str(source.schema.field("at").type) == "string"  # as in a flat file: every value as written
    assert [r["at"] for r in rows(source)] == [
        "2024-01-01T10:00:00",
        "2024-01-01T10:00:00+01:00",
        "2024-02-30T10:00:00",
    ]


def test_a_json_error_found_while_sending_names_the_source(tmp_path: Path) -> None:
    """The second read of a JSON file (the rows, after the first look settled the columns) fails on a file
    rewritten in between: its error names the source, as the first look's does."""
    path = tmp_path / "moving.jsonl"
    path.write_text('{"id": 1}\n{"id": 2}\n')
    source = open_source(str(path), what="source")
    path.write_text('{"id": 1}\n{"id": \n')
    with pytest.raises(CelonisConfigError, match=r"^source: cannot read json file .*moving\.jsonl"):
        rows(source)


def test_int96_timestamps_keep_every_year_celonis_keeps(tmp_path: Path) -> None:
    """Spark, Hive, Impala and pycelonis write INT96 timestamps; read as nanoseconds (pyarrow's default) the
    open end date 9999-12-31 wrapped round to 1816-03-29, and 1500-01-01 became 2084-07-20, silently."""
    import pyarrow.parquet as pq

    given = [
        dt.datetime(9999, 12, 31),
        dt.datetime(1500, 1, 1),
        dt.datetime(2024, 1, 2, 3, 4, 5, 123000),
        None,
    ]
    path = tmp_path / "spark.parquet"
    table = pa.table({"id": [1, 2, 3, 4], "valid_to": pa.array(given, pa.timestamp("ms"))})
    pq.write_table(table, path, use_deprecated_int96_timestamps=True)
    assert pq.ParquetFile(path).schema.column(1).physical_type == "INT96"
    source = open_source(str(path))
    assert [r["valid_to"] for r in rows(source)] == given


def write_files(folder: Path, *columns: pa.Array) -> Path:
    import pyarrow.parquet as pq

    for number, values in enumerate(columns):
        pq.write_table(pa.table({"v": values}), folder / f"{number}.parquet")
    return folder


@pytest.mark.parametrize(
    ("one", "other", "shared", "values"),
    [
        # decimals of two precisions (pandas infers one per file): one decimal holds both, as a file's does
        (
            pa.array([dec("1.10")], pa.decimal128(10, 2)),
            pa.array([dec("2.0001")], pa.decimal128(12, 4)),
            "decimal128(12, 4)",
            [dec("1.1000"), dec("2.0001")],
        ),
        (pa.array([dec("1.10")], pa.decimal128(10, 2)), pa.array([1e20]), "double", [1.1, 1e20]),
        # pandas' nanoseconds beside the open end date: microseconds hold both
        (
            pa.array([dt.datetime(9999, 12, 31)], pa.timestamp("ms")),
            pa.array([dt.datetime(2024, 1, 1, 12)], pa.timestamp("ns")),
            "timestamp[us]",
            [dt.datetime(9999, 12, 31), dt.datetime(2024, 1, 1, 12)],
        ),
        (
            pa.array([dt.date(9999, 12, 31)], pa.date32()),
            pa.array([dt.datetime(2024, 1, 1, 12)], pa.timestamp("ns")),
            "timestamp[us]",
            [dt.datetime(9999, 12, 31), dt.datetime(2024, 1, 1, 12)],
        ),
        # two zones: the same instant twice, in UTC
        (
            pa.array([dt.datetime(2024, 1, 2, 3, 4, 5)], pa.timestamp("us", "+02:00")),
            pa.array([dt.datetime(2024, 1, 2, 3, 4, 5)], pa.timestamp("ms", "Europe/Berlin")),
            "timestamp[us, tz=UTC]",
            [dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)] * 2,
        ),
        (
            pa.array([3723], pa.time32("s")),
            pa.array([3723456000], pa.time64("us")),
            "time64[us]",
            [dt.time(1, 2, 3), dt.time(1, 2, 3, 456000)],
        ),
    ],
)
def test_a_folder_of_parquet_files_whose_types_differ_lands_what_each_file_holds(
    tmp_path: Path, one: pa.Array, other: pa.Array, shared: str, values: list[Any]
) -> None:
    """Each file alone lands as FLOAT, DATETIME or TIME; together they landed as STRING, or were refused."""
    source = open_source(str(write_files(tmp_path, one, other)))
    assert str(source.schema.field("v").type) == shared
    assert [r["v"] for r in rows(source)] == values


def test_a_folder_with_an_integer_a_double_cannot_hold_beside_doubles_widens_once(tmp_path: Path) -> None:
    """The drift to STRING was found again on every reading (64 of them), then refused: the parquet files
    were read in their own types whatever the widened reading asked."""
    source = open_source(str(write_files(tmp_path, pa.array([2**53 + 1]), pa.array([0.5]))))
    with pytest.raises(SchemaDrift) as drift:
        rows(source)
    widened = drift.value.widened
    assert widened is not None
    assert [r["v"] for r in rows(widened)] == ["9007199254740993", "0.5"]


@pytest.mark.parametrize(
    ("values", "declared", "refusal"),
    [
        (
            pa.array([dt.datetime(2024, 1, 2, 10, 30, 15)]),
            "DATE",
            "has a time of day, which a DATE column would drop",
        ),
        (pa.array([dt.datetime(2024, 1, 2, 3, 4, 5)]), "TIME", "would lose their dates in a TIME column"),
        (pa.array([0, 1, 2, -7]), "BOOLEAN", "2 is neither 0 nor 1"),
        (pa.array(["1.5", "1e400"]), "FLOAT", "'1e400' is beyond a double's range"),
    ],
)
def test_a_declared_type_that_would_drop_part_of_a_value_is_refused(
    values: pa.Array, declared: str, refusal: str
) -> None:
    """pyarrow calls these casts safe: a declared table_schema type landed 10:30 as midnight, a timestamp as
    its time of day, -7 as true, '1e400' as infinity."""
    batch = pa.record_batch({"v": values})
    plan = plan_schema(batch.schema, table_schema=[{"columnName": "v", "columnType": declared}])
    with pytest.raises(CelonisConfigError, match=rf"column 'v' cannot be converted .*{re.escape(refusal)}"):
        conform(batch, plan, "source")


def test_a_declared_type_that_keeps_every_value_converts() -> None:
    batch = pa.record_batch(
        {
            "day": pa.array([dt.datetime(2024, 1, 2), None]),
            "flag": pa.array([0, 1]),
            "amount": pa.array(["1.5", "-inf"]),
        }
    )
    declared = [
        {"columnName": "day", "columnType": "DATE"},
        {"columnName": "flag", "columnType": "BOOLEAN"},
        {"columnName": "amount", "columnType": "FLOAT"},
    ]
    out = conform(batch, plan_schema(batch.schema, table_schema=declared), "source")
    assert out.to_pylist() == [
        {"day": dt.date(2024, 1, 2), "flag": False, "amount": 1.5},
        {"day": None, "flag": True, "amount": float("-inf")},
    ]


def test_an_object_column_of_numbers_and_booleans_is_refused_not_landed_as_numbers() -> None:
    import pandas as pd

    for values in ([1.5, True, False, None], [1, 2.5, True]):
        frame = pd.DataFrame({"v": pd.Series(values, dtype=object)})
        with pytest.raises(CelonisConfigError, match=r"column 'v' holds numbers and booleans"):
            open_source(frame)
    assert rows(open_source(pd.DataFrame({"v": pd.Series([1.5, None, 2], dtype=object)}))) == [
        {"v": 1.5},
        {"v": None},
        {"v": 2.0},
    ]


def test_a_dataframe_that_cannot_be_converted_names_its_column() -> None:
    """These failed with the library's bare message (a UnicodeEncodeError, "'str' object cannot be
    interpreted as an integer", pandas' "Mixed timezones detected"), naming no column."""
    import decimal

    import numpy as np
    import pandas as pd

    berlin = dt.timezone(dt.timedelta(hours=5))
    cases = {
        "note": pd.Series(["ok", "bad\ud800"], dtype=object),
        "z": pd.Series(np.array([1 + 2j, 3j])),
        "amount": pd.Series([decimal.Decimal("1.5"), decimal.Decimal("Infinity")]),
        "at": pd.Series([dt.date(2024, 1, 1), dt.datetime(2024, 1, 1, 12, tzinfo=berlin)]),
    }
    for name, column in cases.items():
        with pytest.raises(CelonisConfigError, match=rf"^source: .*column '{name}'"):
            open_source(pd.DataFrame({"id": [1, 2], name: column}))


def test_review_regressions_integer_column_names_an_empty_index_and_a_zoned_folder(tmp_path: Path) -> None:
    """Found by a second reading of this stop's changes: pyarrow names a column 0 "0" (the new checks looked
    it up by that name: KeyError); an empty DataFrame's index is object dtype and holds nothing; a zoned
    column floored in local time refused an ambiguous (fall-back) hour."""
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    assert rows(open_source(pd.DataFrame(np.arange(4).reshape(2, 2)))) == [{"0": 0, "1": 1}, {"0": 2, "1": 3}]
    assert rows(open_source(pd.DataFrame(index=[], columns=["a"]))) == []
    zone = "America/New_York"
    early, fall_back = (
        dt.datetime(1960, 1, 1, tzinfo=dt.timezone.utc),
        dt.datetime(2023, 11, 5, 5, 30, tzinfo=dt.timezone.utc),
    )
    pq.write_table(
        pa.table({"v": pa.array([early, fall_back], pa.timestamp("ns", zone))}), tmp_path / "a.parquet"
    )
    pq.write_table(pa.table({"v": pa.array([fall_back], pa.timestamp("us", zone))}), tmp_path / "b.parquet")
    got = [r["v"] for r in rows(open_source(str(tmp_path)))]
    assert [v.astimezone(dt.timezone.utc) for v in got] == [early, fall_back, fall_back]
