"""CSV chunks and every csvParsingOptions field."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulator.api_client import Api

SCHEMA = {
    "columns": [
        {"columnName": "id", "columnType": "INTEGER"},
        {"columnName": "amount", "columnType": "FLOAT"},
        {"columnName": "ts", "columnType": "DATETIME"},
        {"columnName": "name", "columnType": "STRING"},
    ]
}


def push_csv(api: Api, data: bytes, options: dict[str, Any], **fields: Any) -> dict[str, Any]:
    fields.setdefault("tableSchema", SCHEMA)
    job: dict[str, Any] = api.push(
        "c", "REPLACE", [data], fileType="CSV", csvParsingOptions=options, **fields
    )
    return job


def test_defaults_comma_separated_with_header(api: Api) -> None:
    job = push_csv(api, b'id,amount,ts,name\n1,2.5,2024-03-04 05:06:07,"a,b"\n', {})
    assert job["status"] == "DONE", job["logs"]
    assert api.rows("c") == [{"id": 1, "amount": 2.5, "ts": "2024-03-04T05:06:07", "name": "a,b"}]


def test_quotes_far_into_a_chunk_are_read_as_rfc_4180_not_as_a_sample_guessed(api: Api) -> None:
    """Without quote options DuckDB's sniffer guessed from the first rows: past ~20,000 plain ones, a quoted
    "" landed as the text "", a doubled quote stayed doubled and a quoted line break failed the job."""
    plain = "".join(f"{i},{i}.5,2024-01-01 00:00:00,n{i}\n" for i in range(30_000))
    late = '30000,1,2024-01-01 00:00:00,""\n30001,1,2024-01-01 00:00:00,"c""d"\n30002,1,2024-01-01 00:00:00,"a\nb"\n'
    job = push_csv(api, ("id,amount,ts,name\n" + plain + late).encode(), {})
    assert job["status"] == "DONE", job["logs"]
    rows = api.rows("c", "id")
    assert len(rows) == 30_003
    assert [r["name"] for r in rows[-3:]] == ["", 'c"d', "a\nb"]


def test_all_options_together(api: Api) -> None:
    text = "id;amount;ts;name\r\n1;1.234,5;04.03.2024 05:06;'it\\'s'\r\n2;7,25;31.12.1999 23:59;plain\r\n"
    options = {
        "separatorSequence": ";",
        "quoteSequence": "'",
        "escapeSequence": "\\",
        "charSet": "UTF-8",
        "decimalSeparator": ",",
        "thousandSeparator": ".",
        "dateFormat": "dd.MM.yyyy HH:mm",
        "lineEnding": "\r\n",
    }
    job = push_csv(api, text.encode(), options)
    assert job["status"] == "DONE", job["logs"]
    assert api.rows("c", "id") == [
        {"id": 1, "amount": 1234.5, "ts": "2024-03-04T05:06:00", "name": "it's"},
        {"id": 2, "amount": 7.25, "ts": "1999-12-31T23:59:00", "name": "plain"},
    ]


@pytest.mark.parametrize("charset", ["ISO-8859-1", "UTF-16", "windows-1252"])
def test_charsets_are_decoded(api: Api, charset: str) -> None:
    data = "id,amount,ts,name\n1,1,2024-01-01 00:00:00,Müller\n".encode(charset)
    job = push_csv(api, data, {"charSet": charset})
    assert job["status"] == "DONE", job["logs"]
    assert api.rows("c")[0]["name"] == "Müller"


def test_multi_character_separator_and_java_date_with_literal(api: Api) -> None:
    data = b"id||amount||ts||name\n1||3||2024-03-04T05:06:07||x\n"
    options = {"separatorSequence": "||", "dateFormat": "yyyy-MM-dd'T'HH:mm:ss", "lineEnding": "\\n"}
    job = push_csv(api, data, options)
    assert job["status"] == "DONE", job["logs"]
    assert api.rows("c") == [{"id": 1, "amount": 3.0, "ts": "2024-03-04T05:06:07", "name": "x"}]


def test_tab_separator_spelled_escaped(api: Api) -> None:
    job = push_csv(api, b"id\tamount\tts\tname\n1\t2\t2024-01-01 00:00:00\tt\n", {"separatorSequence": "\\t"})
    assert job["status"] == "DONE", job["logs"]
    assert api.rows("c")[0]["name"] == "t"


def test_additional_column_options(api: Api) -> None:
    data = b"id,d,n\n1,04/03/2024,1 234|5\n"
    options = {
        "additionalColumnOptions": [
            {"columnName": "d", "dateFormat": "dd/MM/yyyy"},
            {"columnName": "n", "thousandsSeparator": " ", "decimalSeparator": "|"},
        ]
    }
    job = push_csv(api, data, options, tableSchema=None)
    assert job["status"] == "DONE", job["logs"]
    assert api.rows("c") == [{"id": 1, "d": "2024-03-04T00:00:00", "n": 1234.5}]


def test_value_that_does_not_fit_names_the_column(api: Api) -> None:
    job = push_csv(api, b"id,amount,ts,name\n1,abc,2024-01-01 00:00:00,x\n", {})
    assert job["status"] == "ERROR"
    assert "Internal error while validating the CSV" in job["logs"][-1]
    assert "'amount'" in job["logs"][-1]


def test_missing_key_in_csv_chunk(api: Api) -> None:
    job = push_csv(api, b"amount\n1\n", {}, keys=["id"], tableSchema=None)
    assert job["status"] == "ERROR"
    assert job["logs"][-1] == "Internal error while validating the CSV: key column 'id' not found in chunk 1"


def test_unknown_charset_is_an_error(api: Api) -> None:
    job = push_csv(api, b"id\n1\n", {"charSet": "no-such-charset"}, tableSchema=None)
    assert job["status"] == "ERROR"
    assert "charSet" in job["logs"][-1]


def test_csv_upsert_and_delete(api: Api) -> None:
    fields: dict[str, Any] = {"fileType": "CSV", "keys": ["id"]}
    api.push("c", "DELTA", [b"id,v\n1,a\n2,b\n"], **fields)
    job = api.push("c", "DELTA", [b"id,v\n2,B\n3,C\n"], [b"id\n1\n"], **fields)
    assert job["status"] == "DONE", job["logs"]
    assert api.rows("c", "id") == [{"id": 2, "v": "B"}, {"id": 3, "v": "C"}]


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (
            b"id,v\n1,a,x\n2,b,extra\n3,c,y\n",
            "record 1 (ending on line 2) has 3 fields, but the header has 2",
        ),
        (b"id,v\n1,a\n2\n3,c\n", "record 2 (ending on line 3) has 1 fields, but the header has 2"),
        (
            b"id,v\n" + b"".join(b"%d,v%d\n" % (i, i) for i in range(50_000)) + b"50000,a,b\n",
            "record 50001 (ending on line 50002) has 3",
        ),
    ],
)
def test_records_without_the_headers_field_count_fail_the_job_naming_the_record(
    api: Api, data: bytes, where: str
) -> None:
    """Not DONE with the first data row taken for the header (the table's columns named '1', 'a', 'x')."""
    job = api.push("ragged", "REPLACE", [data], fileType="CSV", csvParsingOptions={})
    assert job["status"] == "ERROR", job
    assert where in job["logs"][-1], job["logs"]
    assert "ragged" not in api.tables()
