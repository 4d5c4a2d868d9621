"""What the emulator's ingestion worker does with uploaded files: delta by key, age column, FIFO, errors,
and where the two profiles differ (configured tables and keys, child-table keys, the region)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import botocore.exceptions
import pyarrow as pa
import pytest

from tests.helpers import ADMIN_KEY
from tests.ingestion.conftest import ACCESS, CONN, KEY_PREFIX, OTHER, SECRET, Ingestion, parquet, s3_client

ITEMS = pa.list_(pa.struct([("line_id", pa.int64()), ("qty", pa.int64())]))


def test_delta_upserts_by_key_in_arrival_order(put: Any, ingestion: Ingestion) -> None:
    put("sales", "1.parquet", parquet({"id": [1, 2, 3], "amount": [597.0, 10.0, 5.0], "pay": ["card"] * 3}))
    put("sales", "2.parquet", parquet({"id": [1, 4], "amount": [600.0, 1.0], "pay": ["cash", "card"]}))
    put("sales", "3.parquet", parquet({"id": [1, 1], "amount": [700.0, 701.0], "pay": ["x", "y"]}))
    status = ingestion.wait(3)
    assert [f["status"] for f in status["files"]] == ["DONE"] * 3
    assert status["failed"] == 0
    assert ingestion.sorted_rows("sales", "id") == [
        {"id": 1, "amount": 701.0, "pay": "y"},  # the last file wins, and within a file the last row
        {"id": 2, "amount": 10.0, "pay": "card"},
        {"id": 3, "amount": 5.0, "pay": "card"},
        {"id": 4, "amount": 1.0, "pay": "card"},
    ]


def test_age_column_keeps_the_newer_row(put: Any, ingestion: Ingestion, configure: Any) -> None:
    configure("t", "id", age="age")
    put("t", "1.parquet", parquet({"id": [1, 2], "v": ["a", "b"], "age": [10, 10]}), age="age")
    put("t", "2.parquet", parquet({"id": [1, 2], "v": ["older", "newer"], "age": [9, 11]}), age="age")
    put("t", "3.parquet", parquet({"id": [3, 3], "v": ["high", "low"], "age": [5, 4]}), age="age")
    ingestion.wait(3)
    assert ingestion.sorted_rows("t", "id") == [
        {"id": 1, "v": "a", "age": 10},  # age 9 does not replace age 10
        {"id": 2, "v": "newer", "age": 11},
        {"id": 3, "v": "high", "age": 5},  # within a file the highest age wins, not the last row
    ]


def test_child_tables_are_upserted_by_their_configured_key(put: Any, ingestion: Ingestion) -> None:
    first = pa.table(
        {
            "order_id": [1, 2],
            "line_items": pa.array(
                [[{"line_id": 10, "qty": 1}, {"line_id": 11, "qty": 2}], [{"line_id": 20, "qty": 3}]], ITEMS
            ),
        }
    )
    put("orders", "1.parquet", parquet(first), keys=None)
    update = pa.table(
        {
            "order_id": [1],
            "line_items": pa.array([[{"line_id": 11, "qty": 7}, {"line_id": 12, "qty": 9}]], ITEMS),
        }
    )
    put("orders", "2.parquet", parquet(update), keys=None)
    unconfigured = pa.table({"order_id": [3], "ship_to": [{"city": "Munich"}]})
    put("orders", "3.parquet", parquet(unconfigured), keys=None)
    status = ingestion.wait(3)
    assert [f["status"] for f in status["files"]] == ["DONE", "DONE", "FAILED"]
    assert "orders_ship_to" in status["files"][2]["message"]  # no key configured for that child table
    assert ingestion.sorted_rows("orders", "order_id") == [{"order_id": 1}, {"order_id": 2}]
    # Delta by the child's own key (line_id): 11 updated, 12 added, 10 and 20 kept.
    assert ingestion.sorted_rows("orders_line_items", "line_id") == [
        {"orders_order_id": 1, "line_id": 10, "qty": 1},
        {"orders_order_id": 1, "line_id": 11, "qty": 7},
        {"orders_order_id": 1, "line_id": 12, "qty": 9},
        {"orders_order_id": 2, "line_id": 20, "qty": 3},
    ]


@pytest.fixture
def lenient(celonis_emulator_factory: Callable[..., Any]) -> Any:
    """A lenient emulator: unconfigured tables accepted, keys from object metadata, any region."""
    return celonis_emulator_factory(
        app_keys=(ADMIN_KEY,), ingestion_keys=(f"{ACCESS}:{SECRET}:{CONN}", OTHER), profile="lenient"
    )


def test_lenient_nested_rows_replace_their_children(lenient: Any) -> None:
    ingestion, s3 = Ingestion(lenient, ADMIN_KEY), s3_client(lenient)

    def put(name: str, table: pa.Table) -> None:
        meta = {"primary-keys": "order_id"}
        s3.put_object(
            Bucket="continuous", Key=f"{KEY_PREFIX}orders/{name}", Body=parquet(table), Metadata=meta
        )

    items = ITEMS
    first = pa.table(
        {
            "order_id": [1, 2],
            "ship_to": [{"city": "Munich"}, None],
            "line_items": pa.array(
                [[{"line_id": 10, "qty": 1}, {"line_id": 11, "qty": 2}], [{"line_id": 20, "qty": 3}]], items
            ),
            "tags": [["a", "b"], []],
        }
    )
    put("1.parquet", first)
    update = pa.table({"order_id": [1], "line_items": pa.array([[{"line_id": 12, "qty": 9}]], items)})
    put("2.parquet", update)
    ingestion.wait(2)
    assert ingestion.sorted_rows("orders", "order_id") == [{"order_id": 1}, {"order_id": 2}]
    # Order 1 was delivered again: its line items were replaced; order 2 kept its own.
    lines = ingestion.sorted_rows("orders_line_items", "line_id")
    assert lines == [
        {"orders_order_id": 1, "line_id": 12, "qty": 9},
        {"orders_order_id": 2, "line_id": 20, "qty": 3},
    ]
    assert ingestion.rows("orders_ship_to", "conn-1") == [{"orders_order_id": 1, "city": "Munich"}]
    assert sorted(r["tags"] for r in ingestion.rows("orders_tags", "conn-1")) == ["a", "b"]


def test_each_error_type_is_recorded_and_changes_nothing(
    put: Any, ingestion: Ingestion, configure: Any
) -> None:
    put("t", "0.parquet", parquet({"id": [1], "n": [1]}))
    put("t", "1.parquet", parquet({"other": [1]}))  # PK column missing
    put("t", "2.parquet", parquet({"id": [None, 2], "n": [1, 2]}))  # PK null
    configure("t", "id", age="version")  # keys are read when a file arrives
    put("t", "3.parquet", parquet({"id": [2], "n": [2]}))
    configure("t", "id")
    put("t", "4.parquet", parquet({"id": [2], "n": ["not a number"]}))
    put("t", "5.parquet", parquet({"id": [3], "n": [3]}))
    status = ingestion.wait(6)
    assert [f["status"] for f in status["files"]] == ["DONE", "FAILED", "FAILED", "FAILED", "FAILED", "DONE"]
    errors = ingestion.errors()
    assert [e["errorType"] for e in errors] == [
        "PK NOT FOUND IN INPUT FILE",
        "PK NOT FOUND IN INPUT FILE",
        "AGE COLUMN NOT FOUND IN INPUT FILE",
        "DATAPOOL SCHEMA MISMATCH",
    ]
    assert errors[0]["file"] == "connection/conn-1/t/1.parquet"
    assert errors[0]["table"] == "t"
    assert "'id'" in errors[0]["message"]
    assert "'version'" in errors[2]["message"]
    assert "'n'" in errors[3]["message"]
    assert "BIGINT" in errors[3]["message"]
    assert ingestion.sorted_rows("t", "id") == [{"id": 1, "n": 1}, {"id": 3, "n": 3}]


def test_configured_table_wins_and_pool_comes_from_the_key(emulator: Any, ingestion: Ingestion) -> None:
    other = s3_client(emulator, "AKIAOTHER0002", "other-secret-0123456789")
    for name, rows in (
        ("1", {"id": [1], "version": [2], "v": ["new"]}),
        ("2", {"id": [1], "version": [1], "v": ["old"]}),
    ):
        other.put_object(
            Bucket="continuous",
            Key=f"connection/conn-2/configured/{name}.parquet",
            Body=parquet(rows),
            Metadata={"primary-keys": "v"},  # ignored: the table is configured (--ingestion-table)
        )
    ingestion.wait(2)
    assert ingestion.rows("configured", "pool-9") == [{"id": 1, "version": 2, "v": "new"}]
    assert [t["name"] for t in ingestion.tables("conn-1")] == []


def test_documented_refuses_unconfigured_tables_and_ignores_metadata(put: Any, ingestion: Ingestion) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        put("nowhere", "a.parquet", parquet({"id": [1]}))
    assert refused.value.response["Error"]["Code"] == "NoSuchTable"
    assert "'nowhere'" in refused.value.response["Error"]["Message"]
    # "sales" is keyed by id: metadata naming another key changes nothing (Celonis ignores it too).
    put("sales", "1.parquet", parquet({"id": [1, 1], "v": ["a", "b"]}), keys="v")
    assert ingestion.wait(1)["files"][0]["primaryKeys"] == ["id"]
    assert ingestion.rows("sales", CONN) == [{"id": 1, "v": "b"}]


def test_lenient_takes_keys_from_metadata_and_accepts_any_table(lenient: Any) -> None:
    s3, ingestion = s3_client(lenient), Ingestion(lenient, ADMIN_KEY)
    for name in ("1", "2"):
        body = parquet({"id": [1], "v": [name]})
        meta = {"primary-keys": "id"}
        s3.put_object(Bucket="continuous", Key=f"{KEY_PREFIX}free/{name}.parquet", Body=body, Metadata=meta)
    ingestion.wait(2)
    assert ingestion.rows("free", CONN) == [{"id": 1, "v": "2"}]


def test_region_must_match_the_team_in_the_documented_profile(emulator: Any, lenient: Any) -> None:
    body = parquet({"id": [1]})
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        s3_client(emulator, region="eu-central-1").put_object(
            Bucket="continuous", Key=f"{KEY_PREFIX}sales/a.parquet", Body=body
        )
    error = refused.value.response["Error"]
    assert error["Code"] == "AuthorizationHeaderMalformed"
    assert "'us-east-1'" in error["Message"]
    s3_client(lenient, region="eu-central-1").put_object(
        Bucket="continuous", Key=f"{KEY_PREFIX}sales/a.parquet", Body=body
    )
