"""The operator's data options (``sanitize_names``, ``null_values``, ``encoding``), a byte-order mark
with keys in CSV pass-through, and a UTF-16 file without ``encoding``: one DAG run, each task checked by
what landed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers import EmulatorClient, task_states

DAG = """
import datetime
from airflow.sdk import DAG
from airflow_provider_celonis.operators.data_push import DataPushOperator

common = dict(poll_interval=0.2, job_type="REPLACE")
with DAG("DAG_ID", schedule=None, start_date=datetime.datetime(2024, 1, 1), catchup=False) as dag:
    DataPushOperator(task_id="sanitize", source=NAMES, target_table="sanitize", sanitize_names=True, **common)
    DataPushOperator(
        task_id="sanitize_csv", source=NAMES, target_table="sanitize_csv", sanitize_names=True, file_type="CSV",
        **common,
    )
    DataPushOperator(task_id="nulls", source=NULLS, target_table="nulls", null_values=["", "NULL"], **common)
    DataPushOperator(task_id="latin", source=LATIN, target_table="latin", encoding="latin-1", **common)
    DataPushOperator(
        task_id="latin_csv", source=LATIN, target_table="latin_csv", encoding="latin-1", file_type="CSV",
        **common,
    )
    DataPushOperator(
        task_id="bom_keys_csv", source=BOM, target_table="bom_keys_csv", keys=["id"], file_type="CSV",
        poll_interval=0.2,
    )
    DataPushOperator(task_id="utf16", source=UTF16, target_table="utf16", **common)
"""


def test_data_options_through_the_operator(
    run_dag: Any, celonis_conn: Any, landed: EmulatorClient, tmp_path: Path
) -> None:
    files = {
        "NAMES": ("names.csv", b"id,order id,Amount ($)\n1,2,3\n"),
        "NULLS": ("nulls.csv", b'id,s\n1,NULL\n2,"NULL"\n3,\n4,""\n'),
        "LATIN": ("latin.csv", "id,name\n1,Müller\n".encode("latin-1")),
        "BOM": ("bom.csv", "\ufeffid,name\r\n1,a\r\n".encode()),
        "UTF16": ("utf16.csv", "id,name\n1,a\n".encode("utf-16")),
    }
    source = DAG
    for key, (name, data) in files.items():
        (tmp_path / name).write_bytes(data)
        source = source.replace(f"={key},", f"={str(tmp_path / name)!r},")
    run = run_dag(source)
    states = task_states(run)
    assert states.pop("utf16") == "failed"
    assert states == dict.fromkeys(states, "success")

    def table(name: str) -> list[dict[str, Any]]:
        return sorted(landed.rows(name), key=lambda r: r["id"])

    assert table("sanitize") == [{"id": 1, "order_id": 2, "Amount____": 3}]
    assert table("sanitize_csv") == [{"id": 1, "order_id": 2, "Amount____": 3}]
    assert [r["s"] for r in table("nulls")] == [None, "NULL", None, ""]
    assert table("latin") == [{"id": 1, "name": "Müller"}]
    assert table("latin_csv") == [{"id": 1, "name": "Müller"}]
    assert table("bom_keys_csv") == [{"id": 1, "name": "a"}]
    assert not [j for j in landed.jobs() if j["targetName"] == "utf16"]
