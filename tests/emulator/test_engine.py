"""How chunks change tables: REPLACE, DELTA upsert/append, deletes, types, lengths and failures."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from tests.emulator.api_client import Api, parquet_bytes


def test_replace_replaces_whole_table(api: Api) -> None:
    assert api.push("t", "REPLACE", [parquet_bytes({"id": [1, 2], "v": ["a", "b"]})])["status"] == "DONE"
    job = api.push(
        "t", "REPLACE", [parquet_bytes({"id": [3], "v": ["c"]}), parquet_bytes({"id": [4], "v": ["d"]})]
    )
    assert job["status"] == "DONE", job["logs"]
    assert api.rows("t", "id") == [{"id": 3, "v": "c"}, {"id": 4, "v": "d"}]


def test_delta_with_keys_upserts_in_upload_order(api: Api) -> None:
    api.push("t", "REPLACE", [parquet_bytes({"id": [1, 2], "v": ["a", "b"], "n": [10, 20]})])
    job = api.push(
        "t",
        "DELTA",
        [parquet_bytes({"id": [2, 3], "v": ["B", "C"]}), parquet_bytes({"id": [3], "v": ["C2"]})],
        keys=["id"],
    )
    assert job["status"] == "DONE", job["logs"]
    # UPSERT_WITH_UNCHANGED_METADATA (default): n, absent from the chunks, keeps its value.
    assert api.rows("t", "id") == [
        {"id": 1, "v": "a", "n": 10},
        {"id": 2, "v": "B", "n": 20},
        {"id": 3, "v": "C2", "n": None},
    ]


def test_upsert_with_nullification_clears_absent_columns(api: Api) -> None:
    api.push("t", "REPLACE", [parquet_bytes({"id": [1, 2], "v": ["a", "b"], "n": [10, 20]})])
    job = api.push(
        "t",
        "DELTA",
        [parquet_bytes({"id": [2], "v": ["B"]})],
        keys=["id"],
        upsertStrategy="UPSERT_WITH_NULLIFICATION",
    )
    assert job["status"] == "DONE", job["logs"]
    assert api.rows("t", "id") == [{"id": 1, "v": "a", "n": 10}, {"id": 2, "v": "B", "n": None}]


def test_delta_without_keys_appends_and_adds_new_columns(api: Api) -> None:
    api.push("t", "DELTA", [parquet_bytes({"id": [1], "v": ["a"]})])
    job = api.push("t", "DELTA", [parquet_bytes({"id": [1], "extra": [True]})])
    assert job["status"] == "DONE", job["logs"]
    assert api.rows("t") == [{"id": 1, "v": "a", "extra": None}, {"id": 1, "v": None, "extra": True}]


def test_deleted_chunks_remove_rows_by_key(api: Api) -> None:
    api.push("t", "REPLACE", [parquet_bytes({"id": [1, 2, 3], "k2": ["x", "x", "y"], "v": [1, 2, 3]})])
    job = api.push(
        "t",
        "DELTA",
        [parquet_bytes({"id": [4], "k2": ["x"], "v": [4]})],
        [parquet_bytes({"id": [2, 3], "k2": ["x", "x"]})],
        keys=["id", "k2"],
    )
    assert job["status"] == "DONE", job["logs"]
    assert api.rows("t", "id") == [
        {"id": 1, "k2": "x", "v": 1},
        {"id": 3, "k2": "y", "v": 3},
        {"id": 4, "k2": "x", "v": 4},
    ]


def test_deleted_chunk_without_keys_is_an_error(api: Api) -> None:
    api.push("t", "REPLACE", [parquet_bytes({"id": [1]})])
    job = api.push("t", "DELTA", [], [parquet_bytes({"id": [1]})])
    assert job["status"] == "ERROR"
    assert "no keys" in job["logs"][-1]
    assert api.rows("t") == [{"id": 1}]


def test_duplicate_removal_column_keeps_highest(api: Api) -> None:
    api.push("t", "DELTA", [parquet_bytes({"id": [9], "ver": [5], "v": ["old-high"]})], keys=["id"])
    chunk = parquet_bytes({"id": [1, 1, 1, 9], "ver": [2, 7, 3, 4], "v": ["two", "seven", "three", "low"]})
    job = api.push("t", "DELTA", [chunk], keys=["id"], params={"duplicateRemovalColumn": "ver"})
    assert job["status"] == "DONE", job["logs"]
    assert api.rows("t", "id") == [{"id": 1, "ver": 7, "v": "seven"}, {"id": 9, "ver": 5, "v": "old-high"}]


def test_duplicates_without_removal_column_keep_last(api: Api) -> None:
    job = api.push("t", "DELTA", [parquet_bytes({"id": [1, 1], "v": ["first", "last"]})], keys=["id"])
    assert job["status"] == "DONE"
    assert api.rows("t") == [{"id": 1, "v": "last"}]


def test_field_length_and_fallback_truncate_strings(api: Api) -> None:
    schema = {
        "tableName": "t",
        "columns": [{"columnName": "short", "columnType": "STRING", "fieldLength": 3}],
    }
    job = api.push(
        "t",
        "REPLACE",
        [parquet_bytes({"short": ["abcdef"], "other": ["x" * 20]})],
        tableSchema=schema,
        fallbackVarcharLength=5,
    )
    assert job["status"] == "DONE", job["logs"]
    assert api.rows("t") == [{"short": "abc", "other": "xxxxx"}]


def test_default_varchar_length_is_80(api: Api) -> None:
    api.push("t", "REPLACE", [parquet_bytes({"s": ["y" * 100]})])
    assert api.rows("t") == [{"s": "y" * 80}]


def test_table_schema_types(api: Api) -> None:
    columns = [
        {"columnName": "i", "columnType": "INTEGER"},
        {"columnName": "f", "columnType": "FLOAT"},
        {"columnName": "d", "columnType": "DATE"},
        {"columnName": "ts", "columnType": "DATETIME"},
        {"columnName": "tm", "columnType": "TIME"},
        {"columnName": "b", "columnType": "BOOLEAN"},
        {"columnName": "s", "columnType": "STRING"},
    ]
    data = parquet_bytes(
        {
            "i": pa.array([1], pa.int32()),
            "f": pa.array([1.5], pa.float32()),
            "d": [dt.date(2024, 1, 2)],
            "ts": [dt.datetime(2024, 1, 2, 3, 4, 5, 678901)],
            "tm": [dt.time(12, 30)],
            "b": [True],
            "s": [42],
            "inferred": pa.array([7], pa.int8()),
        }
    )
    job = api.push("t", "REPLACE", [data], tableSchema={"tableName": "t", "columns": columns})
    assert job["status"] == "DONE", job["logs"]
    types = {c["name"]: c["type"] for c in api.tables()["t"]["columns"]}
    assert types == {
        "i": "BIGINT",
        "f": "DOUBLE",
        "d": "TIMESTAMP_MS",
        "ts": "TIMESTAMP_MS",
        "tm": "TIME",
        "b": "BOOLEAN",
        "s": "VARCHAR",
        "inferred": "BIGINT",
    }
    assert api.rows("t") == [
        {
            "i": 1,
            "f": 1.5,
            "d": "2024-01-02T00:00:00",
            "ts": "2024-01-02T03:04:05.678000",
            "tm": "12:30:00",
            "b": True,
            "s": "42",
            "inferred": 7,
        }
    ]


def test_value_that_does_not_fit_names_the_column(api: Api) -> None:
    schema = {"columns": [{"columnName": "amount", "columnType": "INTEGER"}]}
    api.push("t", "REPLACE", [parquet_bytes({"amount": ["1"]})], tableSchema=schema)
    job = api.push("t", "DELTA", [parquet_bytes({"amount": ["12", "abc"]})], tableSchema=schema)
    assert job["status"] == "ERROR"
    assert "'amount'" in job["logs"][-1]
    assert "abc" in job["logs"][-1]
    assert api.rows("t") == [{"amount": 1}]  # the failed job changed nothing


def test_missing_key_column_fails_naming_it(api: Api) -> None:
    job = api.push("t", "DELTA", [parquet_bytes({"id": [1]}), parquet_bytes({"other": [1]})], keys=["id"])
    assert job["status"] == "ERROR"
    assert (
        job["logs"][-1] == "Internal error while validating the Parquet: key column 'id' not found in chunk 2"
    )
    assert "t" not in api.tables()


def test_pk_field_in_schema_acts_as_key(api: Api) -> None:
    schema = {"columns": [{"columnName": "id", "columnType": "INTEGER", "pkField": True}]}
    api.push("t", "DELTA", [parquet_bytes({"id": [1], "v": ["a"]})], tableSchema=schema)
    api.push("t", "DELTA", [parquet_bytes({"id": [1], "v": ["b"]})], tableSchema=schema)
    assert api.rows("t") == [{"id": 1, "v": "b"}]


def test_names_are_case_insensitive(api: Api) -> None:
    api.push("Orders", "REPLACE", [parquet_bytes({"ID": [1], "Value": ["a"]})])
    job = api.push("ORDERS", "DELTA", [parquet_bytes({"id": [1], "value": ["b"]})], keys=["Id"])
    assert job["status"] == "DONE", job["logs"]
    assert api.rows("orders") == [{"ID": 1, "Value": "b"}]


def test_dates_outside_supported_years_become_null(api: Api) -> None:
    api.push("t", "REPLACE", [parquet_bytes({"d": [dt.datetime(1300, 1, 1), dt.datetime(2000, 1, 1)]})])
    assert api.rows("t") == [{"d": None}, {"d": "2000-01-01T00:00:00"}]


def test_unreadable_chunk_is_an_error(api: Api) -> None:
    job = api.push("t", "REPLACE", [b"this is not parquet"])
    assert job["status"] == "ERROR"
    assert job["logs"][-1].startswith("Internal error while validating the Parquet: chunk 1 is unreadable")


def test_a_value_an_integer_column_would_change_fails_the_job(api: Api) -> None:
    """DuckDB's CAST would round 2.5 to 3 and read '007' as 7: an INTEGER column takes a value only as it is."""
    api.push("t", "REPLACE", [parquet_bytes({"id": [1], "n": [10]})])
    for values in ([2.5], ["007"], ["+7"]):
        job = api.push("t", "DELTA", [parquet_bytes({"id": [2], "n": values})])
        assert job["status"] == "ERROR", (values, job)
        assert f"value {values[0]} in column 'n' does not fit type INTEGER exactly" in str(job["logs"]), job[
            "logs"
        ]
    job = api.push(
        "t", "DELTA", [parquet_bytes({"id": [3], "n": [3.0]}), parquet_bytes({"id": [4], "n": ["-4"]})]
    )
    assert job["status"] == "DONE", job["logs"]
    assert api.rows("t", "id") == [{"id": 1, "n": 10}, {"id": 3, "n": 3}, {"id": 4, "n": -4}]
