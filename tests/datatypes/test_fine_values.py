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
