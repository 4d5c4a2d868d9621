"""The operator's data options (``sanitize_names``, ``null_values``, ``encoding``), a byte-order mark
with keys in CSV pass-through, and a UTF-16 file without ``encoding``: one DAG run, each task checked by
what landed."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_celonis.operators.data_push import DataPushOperator
from tests.helpers import EmulatorClient, task_states


def option_tasks(files: dict[str, str]) -> None:
    """One task per option, each into its own table; ``files`` by role (NAMES, NULLS, LATIN, BOM, UTF16)."""
    common: dict[str, Any] = {"poll_interval": 0.2, "job_type": "REPLACE"}
    names, latin = files["NAMES"], files["LATIN"]
    DataPushOperator(task_id="sanitize", source=names, target_table="sanitize", sanitize_names=True, **common)
    DataPushOperator(
        task_id="sanitize_csv",
        source=names,
        target_table="sanitize_csv",
        sanitize_names=True,
        file_type="CSV",
        **common,
    )
    DataPushOperator(
        task_id="nulls", source=files["NULLS"], target_table="nulls", null_values=["", "NULL"], **common
    )
    DataPushOperator(task_id="latin", source=latin, target_table="latin", encoding="latin-1", **common)
    DataPushOperator(
        task_id="latin_csv",
        source=latin,
        target_table="latin_csv",
        encoding="latin-1",
        file_type="CSV",
        **common,
    )
    DataPushOperator(
        task_id="bom_keys_csv",
        source=files["BOM"],
        target_table="bom_keys_csv",
        keys=["id"],
        file_type="CSV",
        poll_interval=0.2,
    )
    DataPushOperator(task_id="utf16", source=files["UTF16"], target_table="utf16", **common)


@pytest.mark.usefixtures("celonis_conn")
def test_data_options_through_the_operator(
    make_dag: Callable[..., Any], landed: EmulatorClient, tmp_path: Path
) -> None:
    files = {
        "NAMES": ("names.csv", b"id,order id,Amount ($)\n1,2,3\n"),
        "NULLS": ("nulls.csv", b'id,s\n1,NULL\n2,"NULL"\n3,\n4,""\n'),
        "LATIN": ("latin.csv", "id,name\n1,Müller\n".encode("latin-1")),
        "BOM": ("bom.csv", "\ufeffid,name\r\n1,a\r\n".encode()),
        "UTF16": ("utf16.csv", "id,name\n1,a\n".encode("utf-16")),
    }
    paths = {}
    for key, (name, data) in files.items():
        (tmp_path / name).write_bytes(data)
        paths[key] = str(tmp_path / name)
    run = make_dag(tasks=functools.partial(option_tasks, paths)).test()
    states = task_states(run)
    assert states.pop("utf16") == "failed"
    succeeded = ("sanitize", "sanitize_csv", "nulls", "latin", "latin_csv", "bom_keys_csv")
    assert states == dict.fromkeys(succeeded, "success")

    def table(name: str) -> list[dict[str, Any]]:
        return sorted(landed.rows(name), key=lambda r: r["id"])

    assert table("sanitize") == [{"id": 1, "order_id": 2, "Amount____": 3}]
    assert table("sanitize_csv") == [{"id": 1, "order_id": 2, "Amount____": 3}]
    assert [r["s"] for r in table("nulls")] == [None, "NULL", None, ""]
    assert table("latin") == [{"id": 1, "name": "Müller"}]
    assert table("latin_csv") == [{"id": 1, "name": "Müller"}]
    assert table("bom_keys_csv") == [{"id": 1, "name": "a"}]
    assert not [j for j in landed.jobs() if j["targetName"] == "utf16"]
