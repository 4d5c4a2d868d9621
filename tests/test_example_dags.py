"""The example DAGs: they import cleanly, and each one, run under dag.test(), lands exactly its data."""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import EmulatorClient, task_states, xcom

EXAMPLES = Path(__file__).resolve().parents[1] / "example_dags"


@pytest.mark.usefixtures("airflow_db")
def test_dagbag_imports_every_example() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLES))
    assert bag.import_errors == {}
    assert {"example_celonis_csv_delta", "example_celonis_daily_replace", "example_celonis_sensor"} <= set(
        bag.dag_ids
    )
    for dag_id in bag.dag_ids:
        assert "celonis" in bag.get_dag(dag_id).tags


def _module_of(dag: Any) -> Any:
    return next(m for m in list(sys.modules.values()) if getattr(m, "dag", None) is dag)


def orders() -> list[dict[str, Any]]:
    with (EXAMPLES / "data" / "orders.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def as_csv_row(row: dict[str, Any]) -> dict[str, str]:
    created = str(row["created_at"]).replace("T", " ")[:19]
    return {
        "order_id": str(row["order_id"]),
        "customer": row["customer"],
        "amount": f"{row['amount']:g}" if isinstance(row["amount"], float) else str(row["amount"]),
        "status": row["status"],
        "created_at": created,
    }


def normalise(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return sorted(
        ({**r, "amount": f"{float(r['amount']):g}"} for r in rows), key=lambda r: int(r["order_id"])
    )


@pytest.mark.usefixtures("celonis_conn")
def test_csv_delta_example(example_dag: Callable[[str], Any], landed: EmulatorClient) -> None:
    run = example_dag("example_celonis_csv_delta").test()
    assert task_states(run) == {"push_orders": "success"}
    assert normalise([as_csv_row(r) for r in landed.rows("orders")]) == normalise(orders())
    assert xcom(run, "push_orders")["rows"] == 200
    # Pushing the same file again upserts by key: still 200 rows.
    assert task_states(example_dag("example_celonis_csv_delta").test()) == {"push_orders": "success"}
    assert len(landed.rows("orders")) == 200


@pytest.mark.usefixtures("celonis_conn")
def test_daily_replace_example(example_dag: Callable[[str], Any], landed: EmulatorClient) -> None:
    dag = example_dag("example_celonis_daily_replace")
    for _ in range(2):  # REPLACE twice: the table holds one copy
        assert task_states(dag.test()) == {"replace_exchange_rates": "success"}
    expected = _module_of(dag).exchange_rates()
    rows = landed.rows("exchange_rates")
    assert len(rows) == len(expected) == 120
    got = sorted((r["day"][:10], r["currency"], r["rate"]) for r in rows)
    want = sorted((str(d), c, r) for d, c, r in expected.itertuples(index=False))
    assert got == want


@pytest.mark.usefixtures("celonis_conn")
def test_sensor_example(example_dag: Callable[[str], Any], landed: EmulatorClient) -> None:
    run = example_dag("example_celonis_sensor").test()
    assert task_states(run) == {"submit_orders": "success", "wait_for_job": "success"}
    submitted = xcom(run, "submit_orders")
    assert submitted["status"] == "QUEUED"
    assert landed.jobs()[0]["id"] == submitted["job_id"]
    assert landed.jobs()[0]["status"] == "DONE"
    assert normalise([as_csv_row(r) for r in landed.rows("orders_snapshot")]) == normalise(orders())
