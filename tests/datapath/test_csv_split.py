"""split_csv: chunks are exact byte ranges on record boundaries, header-prefixed, capped, streamable."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import tracemalloc
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from requests_toolbelt import MultipartEncoder

from airflow_provider_celonis.datapath import csv_split
from airflow_provider_celonis.datapath.csv_split import CsvChunk, split_csv

# Pieces that stress the quote tracking: separators, quotes, escapes, both line endings, multi-byte
# UTF-8. The empty list gives empty fields. No bare CR: Python's writer leaves it unquoted with "\n"
# endings, and its reader then takes it for a line end.
PIECES = st.sampled_from(["a", "Zz", "7", ",", '"', '""', "\\", "\n", "\r\n", " ", "é", "日本", "😀"])
FIELD = st.lists(PIECES, max_size=5).map("".join)
# Tiny blocks push every boundary case (CRLF, escapes, records across blocks) through the block logic.
BLOCK_SIZES = st.sampled_from([1, 2, 3, 5, 16, 64, csv_split.BLOCK_SIZE])


def encode_row(row: list[str], **dialect: Any) -> bytes:
    out = io.StringIO()
    csv.writer(out, **dialect).writerow(row)
    return out.getvalue().encode()


def parse(data: bytes, **dialect: Any) -> list[list[str]]:
    fmt = {k: v for k, v in dialect.items() if k in ("escapechar", "doublequote")}
    return list(csv.reader(io.StringIO(data.decode(), newline=""), **fmt))


def split_all(path: Path, max_bytes: int, block_size: int, **kwargs: Any) -> list[CsvChunk]:
    with mock.patch.object(csv_split, "BLOCK_SIZE", block_size):
        return list(split_csv(path, max_bytes, **kwargs))


def read_chunk(chunk: CsvChunk) -> bytes:
    with chunk.open() as reader:
        assert reader.len == chunk.size
        data = reader.read(3) + reader.read()  # crosses the header/records seam in most chunks
        assert reader.len == 0
        assert reader.read(10) == b""
    return data


@st.composite
def csv_files(draw: st.DrawFn, escape: bool) -> dict[str, Any]:
    ncols = draw(st.integers(1, 4))
    header = draw(st.lists(FIELD, min_size=ncols, max_size=ncols))
    rows = draw(st.lists(st.lists(FIELD, min_size=ncols, max_size=ncols), max_size=25))
    dialect: dict[str, Any] = {
        "lineterminator": draw(st.sampled_from(["\n", "\r\n"])),
        "quoting": draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
    }
    if escape:
        dialect.update(escapechar="\\", doublequote=False)
    head = encode_row(header, **dialect)
    records = [encode_row(r, **dialect) for r in rows]
    trailing_newline = draw(st.booleans())
    if records and not trailing_newline:
        records[-1] = records[-1][: -len(dialect["lineterminator"])]
    longest = max((len(r) for r in records), default=0)
    budget = draw(st.integers(max(1, longest - 3), 3 * longest + 20))
    return {
        "header": header,
        "rows": rows,
        "dialect": dialect,
        "head": head,
        "records": records,
        "max_bytes": len(head) + budget,
        "block_size": draw(BLOCK_SIZES),
        "detect": draw(st.booleans()),
    }


def check_split(tmp_path: Path, case: dict[str, Any]) -> None:
    head, records, max_bytes, dialect = case["head"], case["records"], case["max_bytes"], case["dialect"]
    body = b"".join(records)
    path = tmp_path / "orders.csv"
    path.write_bytes(head + body)
    kwargs: dict[str, Any] = {"escape": b"\\" if "escapechar" in dialect else None}
    if not case["detect"]:
        kwargs["line_ending"] = dialect["lineterminator"].encode()

    budget = max_bytes - len(head)
    too_big = [i for i, r in enumerate(records) if len(r) > budget]
    if too_big:
        offset = len(head) + sum(len(r) for r in records[: too_big[0]])
        line = (head + body)[:offset].count(b"\n") + 1
        expected = f"orders.csv: the record starting at byte offset {offset} (line {line}) does not fit"
        with pytest.raises(ValueError, match=re.escape(expected)):
            split_all(path, max_bytes, case["block_size"], **kwargs)
        return

    chunks = split_all(path, max_bytes, case["block_size"], **kwargs)
    assert bool(chunks) == bool(body)
    # Record boundaries, as offsets in the file: every chunk must start and end on one.
    boundaries = {len(head) + sum(len(r) for r in records[:i]) for i in range(len(records) + 1)}
    parsed: list[list[str]] = []
    pos = len(head)
    for number, chunk in enumerate(chunks, 1):
        assert chunk.name == f"orders.csv.part-{number:05d}.csv"
        assert chunk.start == pos
        assert chunk.end in boundaries
        assert chunk.end > chunk.start
        assert chunk.size == len(head) + chunk.end - chunk.start <= max_bytes
        data = read_chunk(chunk)
        assert data == head + (head + body)[chunk.start : chunk.end]
        rows = parse(data, **dialect)
        assert rows[0] == case["header"]
        assert chunk.records == len(rows) - 1  # counted outside quotes, escapes honoured
        parsed += rows[1:]
        pos = chunk.end
        if number < len(chunks):  # greedy: the next record would not have fitted
            next_record = next(
                r for i, r in enumerate(records) if len(head) + sum(map(len, records[:i])) == pos
            )
            assert chunk.size + len(next_record) > max_bytes
    assert pos == len(head) + len(body)
    assert parsed == case["rows"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=csv_files(escape=False))
def test_split_quote_doubling(tmp_path: Path, case: dict[str, Any]) -> None:
    check_split(tmp_path, case)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=csv_files(escape=True))
def test_split_with_escape_char(tmp_path: Path, case: dict[str, Any]) -> None:
    check_split(tmp_path, case)


def chunk_bytes(path: Path, max_bytes: int, **kwargs: Any) -> list[bytes]:
    return [read_chunk(c) for c in split_csv(path, max_bytes, **kwargs)]


def test_escaped_quote_and_newline_do_not_end_a_record(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    # Without the escape, the quote parity would flip at \" and a split would fall inside the field.
    path.write_bytes(b'h,i\n1,"x\\"\n2,y"\n3,a\\\nb\n4,z\n')
    assert chunk_bytes(path, 4 + 13, escape=b"\\") == [
        b'h,i\n1,"x\\"\n2,y"\n',
        b"h,i\n3,a\\\nb\n4,z\n",
    ]
    with pytest.raises(ValueError, match="line 2"):
        list(split_csv(path, 4 + 11, escape=b"\\"))
    # Escape equal to the quote is plain quote doubling.
    path.write_bytes(b'h\n"a""\nb"\nc\n')
    assert chunk_bytes(path, 2 + 9, escape=b'"') == [b'h\n"a""\nb"\n', b"h\nc\n"]


def test_crlf_splits_after_crlf_only(tmp_path: Path) -> None:
    path = tmp_path / "crlf.csv"
    path.write_bytes(b'h,i\r\n1,"a\r\nb"\r\n2,x\ny\r\n3,z\r\n')
    chunks = list(split_csv(path, 5 + 12))
    assert [read_chunk(c) for c in chunks] == [b'h,i\r\n1,"a\r\nb"\r\n', b"h,i\r\n2,x\ny\r\n3,z\r\n"]
    assert chunks[1].records == 2


def test_crlf_forced_and_lf_forced(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"h\r\n1\n2\r\n3\r\n")
    assert chunk_bytes(path, 3 + 5) == [b"h\r\n1\n2\r\n", b"h\r\n3\r\n"]
    assert chunk_bytes(path, 3 + 3, line_ending=b"\n") == [b"h\r\n1\n", b"h\r\n2\r\n", b"h\r\n3\r\n"]
    # A forced ending applies to the header too: here the header runs to the first CRLF.
    path.write_bytes(b"h\n1\n2\r\n")
    assert chunk_bytes(path, 100, line_ending=b"\r\n") == []


def test_no_trailing_newline_and_record_counts(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"h\n1\n22\n3")
    chunks = list(split_csv(path, 2 + 5))
    assert [read_chunk(c) for c in chunks] == [b"h\n1\n22\n", b"h\n3"]
    assert [c.records for c in chunks] == [2, 1]
    assert [(c.start, c.end) for c in chunks] == [(2, 7), (7, 8)]


def test_without_header(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_bytes(b'1,"a\r\nb"\r\n2,c\r\n3,d')
    chunks = list(split_csv(path, 10, has_header=False))
    assert [read_chunk(c) for c in chunks] == [b'1,"a\r\nb"\r\n', b"2,c\r\n3,d"]
    assert chunks[0].header == b""


@pytest.mark.parametrize("content", [b"", b"h1,h2\n", b"h1,h2", b'h1,"h\n2"\r\n'])
def test_header_only_yields_nothing(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "h.csv"
    path.write_bytes(content)
    assert list(split_csv(path, 1000)) == []


def test_record_too_big_names_file_offset_and_line(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(b'h\n"a\nb"\n' + b"x" * 50 + b"\nc\n")
    with pytest.raises(ValueError, match=r"big\.csv: the record starting at byte offset 8 \(line 4\)"):
        list(split_csv(path, 20))
    for max_bytes in (1, 2):
        with pytest.raises(ValueError, match="header line is 2 bytes"):
            list(split_csv(path, max_bytes))


def test_reader_refuses_closed_and_truncated_files(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"h\n1\n2\n")
    chunk = next(split_csv(path, 100))
    reader = chunk.open()
    reader.close()
    assert reader.closed
    with pytest.raises(ValueError, match="closed"):
        reader.read()
    path.write_bytes(b"h\n1")  # changed after splitting: fail instead of streaming a short body forever
    with chunk.open() as reader, pytest.raises(OSError, match="changed while uploading"):
        reader.read()


@pytest.mark.parametrize("max_bytes", [12, 1000])
def test_unterminated_quote(tmp_path: Path, max_bytes: int) -> None:
    path = tmp_path / "open.csv"
    path.write_bytes(b'a,b\n1,2\n3,"open\n4,5\n6,7\n')
    with pytest.raises(ValueError, match=r"open\.csv: unterminated quoted field starting near line 3"):
        list(split_csv(path, max_bytes))
    path.write_bytes(b'"a\nb,c\n')
    with pytest.raises(ValueError, match="unterminated quoted field starting near line 1"):
        list(split_csv(path, max_bytes))


def test_unterminated_quote_with_escape(tmp_path: Path) -> None:
    path = tmp_path / "open.csv"
    path.write_bytes(b'a\n"x\\"\n"y\\\\"\n')  # the first field's closing quote is escaped
    with pytest.raises(ValueError, match="near line 2"):
        list(split_csv(path, 100, escape=b"\\"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_bytes": 0}, "max_bytes must be a positive int"),
        ({"max_bytes": 10, "quote": b'""'}, "quote must be a single byte"),
        ({"max_bytes": 10, "escape": b"\n"}, "cannot be a line ending byte"),
        ({"max_bytes": 10, "line_ending": b"\r"}, "line_ending must be"),
    ],
)
def test_bad_arguments_fail_at_call(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_csv(tmp_path / "missing.csv", **kwargs)


def multipart(chunk_body: Any, name: str) -> MultipartEncoder:
    return MultipartEncoder(fields={"file": (name, chunk_body, "text/csv")}, boundary="b0undary")


def test_multipart_encoder_streams_exact_body(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes(b'id,name\n1,"a\nb"\n2,c\n3,d\n')
    chunk = list(split_csv(path, 20))[1]
    expected = b"id,name\n3,d\n"
    with chunk.open() as reader:
        encoder = multipart(reader, chunk.name)
        body = encoder.read()
    assert body == multipart(expected, chunk.name).read()
    assert encoder.len == len(body)
    assert b'filename="orders.csv.part-00002.csv"' in body
    assert b"\r\n\r\n" + expected + b"\r\n--b0undary--" in body


def test_multipart_encoder_memory_stays_flat(tmp_path: Path) -> None:
    path = tmp_path / "large.csv"
    block = b'12345,"some, text",2024-01-01,3.14\n' * 30_000
    with path.open("wb") as f:
        f.write(b"id,text,day,value\n")
        for _ in range(60):
            f.write(block)
    (chunk,) = split_csv(path, 100 << 20)
    assert chunk.size > 50 << 20
    closing = b"\r\n--b0undary--\r\n"
    expected = hashlib.sha256(multipart(b"", chunk.name).read()[: -len(closing)] + chunk.header)
    with path.open("rb") as f:
        f.seek(chunk.start)
        while data := f.read(1 << 20):
            expected.update(data)
    expected.update(closing)

    streamed = hashlib.sha256()
    tracemalloc.start()
    try:
        with chunk.open() as reader:
            encoder = multipart(reader, chunk.name)
            total, seen = encoder.len, 0
            while data := encoder.read(1 << 20):
                seen += len(data)
                streamed.update(data)
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == total
    assert streamed.hexdigest() == expected.hexdigest()
    assert peak < 8 << 20, f"peak {peak} bytes while streaming a {chunk.size}-byte chunk"
