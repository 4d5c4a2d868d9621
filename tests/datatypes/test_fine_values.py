"""Values that pyarrow alone reads wrong or not at all land as written: timestamps with seven or nine
fractional digits (SQL Server's datetime2, Java, Snowflake) and JSON integers a double cannot hold."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_celonis.operators.data_push import DataPushOperator
from tests.helpers import EmulatorClient, task_states


@pytest.mark.usefixtures("celonis_conn")
def test_fine_timestamps_and_json_big_integers_land(
    make_dag: Callable[..., Any], landed: EmulatorClient, tmp_path: Path
) -> None:
    csv = tmp_path / "datetime2.csv"
    csv.write_text(
        "id,changed_at\n1,2024-01-02 03:04:05.1234567\n2,1969-12-31 23:59:59.9999999\n"
        "3,9999-12-31 23:59:59.9999999\n4,\n"
    )
    jsonl = tmp_path / "ids.jsonl"
    jsonl.write_text('{"id": 1, "ref": 9223372036854775808}\n{"id": 2, "ref": 7}\n')

    def tasks() -> None:
        DataPushOperator(task_id="csv", source=str(csv), target_table="fine_ts", poll_interval=0.2)
        DataPushOperator(task_id="json", source=str(jsonl), target_table="big_ref", poll_interval=0.2)

    run = make_dag(tasks=tasks).test()
    assert task_states(run) == {"csv": "success", "json": "success"}
    got = sorted(landed.rows("fine_ts"), key=lambda r: r["id"])
    assert [r["changed_at"] for r in got] == [
        "2024-01-02T03:04:05.123000",  # Celonis keeps milliseconds: the rest is cut
        "1969-12-31T23:59:59.999000",  # cut as the text reads (a floor), not toward 1970
        "9999-12-31T23:59:59.999000",
        None,
    ]
    assert sorted((r["id"], r["ref"]) for r in landed.rows("big_ref")) == [
        (1, "9223372036854775808"),
        (2, "7"),
    ]


@pytest.mark.usefixtures("celonis_conn")
def test_columns_declared_string_keep_their_csv_text_as_written(
    make_dag: Callable[..., Any], landed: EmulatorClient, tmp_path: Path
) -> None:
    """Zip codes, phone numbers and amounts declared STRING land as written, not parsed into a number and
    printed again (01067 -> '1067', +4930123 -> '4930123.0'); deletes match such keys too."""
    csv = tmp_path / "customers.csv"
    csv.write_text("id,zip,Phone Nr,amount\n007,01067,+4930123,1.50\n8,80331,+4989,2\n9,00001,,\n")
    gone = tmp_path / "gone.csv"
    gone.write_text("id\n8\n")
    schema = [
        {"columnName": "ID", "columnType": "STRING"},  # names are case-insensitive, as in Celonis
        {"columnName": "zip", "columnType": "STRING"},
        {"columnName": "Phone_Nr", "columnType": "STRING"},
        {"columnName": "amount", "columnType": "STRING"},
    ]
    common: dict[str, Any] = {
        "target_table": "customers",
        "keys": ["id"],
        "table_schema": schema,
        "sanitize_names": True,
        "poll_interval": 0.2,
    }

    def tasks() -> None:
        first = DataPushOperator(task_id="load", source=str(csv), job_type="REPLACE", **common)
        delete = DataPushOperator(task_id="delete", source=str(csv), deleted_source=str(gone), **common)
        first >> delete

    run = make_dag(tasks=tasks).test()
    assert task_states(run) == {"load": "success", "delete": "success"}
    got = sorted(landed.rows("customers"), key=lambda r: r["id"])
    assert got == [
        {"id": "007", "zip": "01067", "Phone_Nr": "+4930123", "amount": "1.50"},
        {"id": "9", "zip": "00001", "Phone_Nr": None, "amount": None},
    ]


@pytest.mark.usefixtures("celonis_conn")
def test_a_column_declared_string_without_a_length_is_not_cut_to_80(
    make_dag: Callable[..., Any], landed: EmulatorClient, tmp_path: Path
) -> None:
    csv = tmp_path / "notes.csv"
    long = "x" * 300
    csv.write_text(f"id,note\n1,{long}\n2,short\n")

    def tasks() -> None:
        DataPushOperator(
            task_id="push",
            source=str(csv),
            target_table="notes",
            table_schema=[{"columnName": "note", "columnType": "STRING"}],
            poll_interval=0.2,
        )

    run = make_dag(tasks=tasks).test()
    assert task_states(run) == {"push": "success"}
    assert sorted((r["id"], r["note"]) for r in landed.rows("notes")) == [(1, long), (2, "short")]


@pytest.mark.usefixtures("celonis_conn")
def test_csv_times_of_day_with_fractions_land_as_time(
    make_dag: Callable[..., Any], landed: EmulatorClient, tmp_path: Path
) -> None:
    csv = tmp_path / "shifts.csv"
    csv.write_text("id,starts\n1,10:15:30.123\n2,\n3,07:05:00\n4,23:59:59.9999999\n")
    # JSON has no time type: its text lands as TIME where table_schema declares it.
    jsonl = tmp_path / "shifts.jsonl"
    jsonl.write_text(
        '{"id": 1, "starts": "10:15:30.123"}\n{"id": 2, "starts": null}\n{"id": 3, "starts": "07:05:00"}\n'
    )

    def tasks() -> None:
        DataPushOperator(task_id="push", source=str(csv), target_table="shifts", poll_interval=0.2)
        DataPushOperator(
            task_id="json",
            source=str(jsonl),
            target_table="json_shifts",
            table_schema=[{"columnName": "starts", "columnType": "TIME"}],
            poll_interval=0.2,
        )

    run = make_dag(tasks=tasks).test()
    assert task_states(run) == {"push": "success", "json": "success"}
    json_rows = sorted(landed.rows("json_shifts"), key=lambda r: r["id"])
    assert [r["starts"] for r in json_rows] == ["10:15:30.123000", None, "07:05:00"]
    job = next(j for j in landed.jobs() if j["targetName"] == "shifts")
    assert {c["columnName"]: c["columnType"] for c in job["tableSchema"]["columns"]} == {
        "id": "INTEGER",
        "starts": "TIME",
    }
    got = sorted(landed.rows("shifts"), key=lambda r: r["id"])
    assert [str(r["starts"]) if r["starts"] is not None else None for r in got] == [
        "10:15:30.123000",
        None,
        "07:05:00",
        "23:59:59.999000",  # Celonis keeps milliseconds: the rest is cut
    ]
