"""Streams of DataFrames as DAGs make them (``pd.read_sql(..., chunksize=...)``, generators of frames) land
row for row through a real task, though each chunk's dtypes differ (``datapath.streams``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider_celonis.operators.data_push import DataPushOperator
from tests.helpers import EmulatorClient, task_states


def _orders_db(path: Path) -> Path:
    """A table whose ``coupon`` is NULL in the first 3,000 rows, and whose ``qty`` has NULLs only later."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, coupon TEXT, qty INTEGER, price REAL)")
        db.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?)",
            [
                (i, None if i <= 3000 else f"C{i}", None if i > 4000 and i % 7 == 0 else i * 3, i / 4)
                for i in range(1, 5001)
            ],
        )
    return path


@pytest.mark.usefixtures("celonis_conn")
def test_chunked_read_sql_and_frames_of_differing_dtypes_land(
    make_dag: Callable[..., Any], landed: EmulatorClient, tmp_path: Path
) -> None:
    db = _orders_db(tmp_path / "shop.db")

    def orders() -> Iterator[pd.DataFrame]:
        with sqlite3.connect(db) as connection:
            yield from pd.read_sql("SELECT * FROM orders ORDER BY id", connection, chunksize=1000)

    def ledger() -> Iterator[pd.DataFrame]:
        # What a NUMERIC column gives through a DB-API driver: Decimals of another precision per chunk,
        # beside a categorical that a later chunk holds as plain strings.
        yield pd.DataFrame(
            {"entry": [1, 2], "amount": [Decimal("1.5"), Decimal("2.0")], "kind": pd.Categorical(["a", "b"])}
        )
        yield pd.DataFrame({"entry": [3], "amount": [Decimal("123456.789")], "kind": ["c"]})
        yield pd.DataFrame({"entry": [4], "amount": [None], "kind": [None]})

    def tasks() -> None:
        DataPushOperator(task_id="orders", source=orders, target_table="orders", poll_interval=0.2)
        DataPushOperator(task_id="ledger", source=ledger, target_table="ledger", poll_interval=0.2)

    run = make_dag(tasks=tasks).test()
    assert task_states(run) == {"orders": "success", "ledger": "success"}

    got = sorted(landed.rows("orders"), key=lambda r: r["id"])
    assert len(got) == 5000
    assert all(r["coupon"] is None for r in got[:3000])
    assert [r["coupon"] for r in got[3000:]] == [f"C{i}" for i in range(3001, 5001)]
    assert [r["qty"] for r in got] == [None if i > 4000 and i % 7 == 0 else i * 3 for i in range(1, 5001)]
    assert [r["price"] for r in got] == [i / 4 for i in range(1, 5001)]
    jobs = {job["targetName"]: job for job in landed.jobs()}
    columns = {c["columnName"]: c["columnType"] for c in jobs["orders"]["tableSchema"]["columns"]}
    assert columns == {"id": "INTEGER", "coupon": "STRING", "qty": "INTEGER", "price": "FLOAT"}

    assert sorted(landed.rows("ledger"), key=lambda r: r["entry"]) == [
        {"entry": 1, "amount": 1.5, "kind": "a"},
        {"entry": 2, "amount": 2.0, "kind": "b"},
        {"entry": 3, "amount": 123456.789, "kind": "c"},
        {"entry": 4, "amount": None, "kind": None},
    ]
