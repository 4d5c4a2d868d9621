"""CSV pass-through without a server: the bytes sent are a valid CSV, the header is read as the server would."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from airflow_provider_celonis.datapath.csv_split import csv_header, split_csv
from airflow_provider_celonis.hooks.errors import CelonisConfigError

BOM = b"\xef\xbb\xbf"


def sent(path: Path, max_bytes: int, **kwargs: object) -> list[bytes]:
    out = []
    for chunk in split_csv(path, max_bytes, **kwargs):  # type: ignore[arg-type]
        with chunk.open() as reader:
            out.append(reader.read())
    return out


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_bom_is_not_sent_and_every_chunk_has_the_header(tmp_path: Path, ending: bytes) -> None:
    path = tmp_path / "bom.csv"
    body = [b"1,a", b'2,"x' + ending + b'y"', b"3,c", b"4,d"]
    path.write_bytes(BOM + b"id,name" + ending + ending.join(body) + ending)
    chunks = list(split_csv(path, 24))
    data = sent(path, 24)
    assert len(data) > 1
    for chunk, text in zip(chunks, data, strict=True):
        assert text.startswith(b"id,name" + ending)
        assert BOM not in text
        records = list(csv.reader(io.StringIO(text.decode(), newline="")))[1:]
        assert chunk.records == len(records)
    assert sum(c.records for c in chunks) == 4
    assert csv_header(str(path), {}, "source") == (["id", "name"], True)


def test_header_replaced_keeps_the_line_ending(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_bytes(BOM + b"id,order id\r\n1,2\r\n")
    assert sent(path, 1 << 20, header=b"id,order_id") == [b"id,order_id\r\n1,2\r\n"]


def test_records_counted_outside_quotes_with_escapes(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes(b'id,t\n1,"a\\"\nb"\n2,"\n\n"\n3,x\\\ny\n')
    (chunk,) = split_csv(path, 1 << 20, escape=b"\\")
    assert chunk.records == 3


def test_carriage_returns_alone_are_refused_before_any_job(tmp_path: Path) -> None:
    """The split looks for line feeds: such a file was one header line, and a REPLACE emptied the table."""
    path = tmp_path / "mac.csv"
    path.write_bytes(b"id,v\r3,c\r4,d\r")
    with pytest.raises(CelonisConfigError, match=r"mac\.csv ends its lines with a carriage return alone"):
        csv_header(str(path), {}, "source")
    quoted = tmp_path / "quoted.csv"
    quoted.write_bytes(b'id,v\r\n3,"c\rd"\r\n')  # a carriage return inside a value of a CRLF file
    assert csv_header(str(quoted), {}, "source") == (["id", "v"], True)


def test_header_of_a_foreign_encoding_is_named(tmp_path: Path) -> None:
    path = tmp_path / "u16.csv"
    path.write_bytes("id,name\n1,x\n".encode("utf-16"))
    with pytest.raises(CelonisConfigError, match=r"u16\.csv starts with a UTF-16/32 byte-order mark"):
        csv_header(str(path), {}, "source")
    latin = tmp_path / "l1.csv"
    latin.write_bytes("id,näme\n1,x\n".encode("latin-1"))
    with pytest.raises(CelonisConfigError, match=r"l1.csv is not valid UTF-8: byte 0xe4 at offset 4"):
        csv_header(str(latin), {}, "source")
    assert csv_header(str(latin), {"charSet": "ISO-8859-1"}, "source") == (["id", "näme"], True)


def test_files_whose_headers_differ_are_refused(tmp_path: Path) -> None:
    """Celonis would take each chunk by its own header: a misspelled column would land as two half-NULL ones."""
    from airflow_provider_celonis.datapath.csv_split import check_csv_headers

    (tmp_path / "a.csv").write_text("id,amount\n1,2\n")
    (tmp_path / "b.csv").write_text("ID,Amount\n2,3\n")  # names are case-insensitive: the same header
    (tmp_path / "c.csv").write_text("id,amout\n3,4\n")
    paths = [str(tmp_path / n) for n in ("a.csv", "b.csv")]
    assert check_csv_headers(paths, {}, ["id"], "source").columns == ["ID", "Amount"]
    with pytest.raises(CelonisConfigError, match=r"c\.csv has columns \['id', 'amout'\], but .*a\.csv has"):
        check_csv_headers([*paths, str(tmp_path / "c.csv")], {}, ["id"], "source")
