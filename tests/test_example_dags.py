"""The example DAGs: they import cleanly, and each one, run under dag.test(), lands exactly its data."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.example_data import (
    CUSTOMER_REVENUE,
    EXAMPLES,
    as_csv_row,
    by_customer,
    customers,
    normalise,
    orders,
)
from tests.helpers import ADMIN_KEY, POOL, EmulatorClient, task_states, xcom


@pytest.mark.usefixtures("airflow_db")
def test_dagbag_imports_every_example() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLES))
    assert bag.import_errors == {}
    assert {
        "example_celonis_csv_delta",
        "example_celonis_daily_replace",
        "example_celonis_sensor",
        "example_celonis_pipeline",
    } <= set(bag.dag_ids)
    for dag_id in bag.dag_ids:
        assert "celonis" in bag.get_dag(dag_id).tags


def _module_of(dag: Any) -> Any:
    return next(m for m in list(sys.modules.values()) if getattr(m, "dag", None) is dag)


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


@pytest.fixture
def pipeline_emulator(
    celonis_emulator_factory: Callable[..., Any],
    airflow_conn: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> EmulatorClient:
    """An emulator serving the example's data job and data model (``data/integration.json``), the
    ``celonis_default`` connection to it, and the environment the example reads its asset URIs from."""
    emu = celonis_emulator_factory(
        app_keys=(f"app-key-0123456789={POOL}", ADMIN_KEY),
        integration_config=EXAMPLES / "data" / "integration.json",
        job_duration=0.3,
        integration_duration=0.3,
    )
    airflow_conn("celonis_default", host=emu.url, password="app-key-0123456789", data_pool_id=POOL)
    monkeypatch.setenv("CELONIS_TEAM_URL", emu.url)
    monkeypatch.setenv("CELONIS_DATA_POOL_ID", POOL)
    return EmulatorClient(emu, ADMIN_KEY)


def asset_events(uri: str, run_id: str) -> int:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return int(
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.uri == uri, AssetEvent.source_run_id == run_id)
            .count()
        )


def test_pipeline_example(example_dag: Callable[[str], Any], pipeline_emulator: EmulatorClient) -> None:
    """Two mapped pushes, the data job joining them, the data model load: the rows of each step."""
    landed = pipeline_emulator
    run = example_dag("example_celonis_pipeline").test()
    states = {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
    assert states == {
        ("push", 0): "success",
        ("push", 1): "success",
        ("build_customer_revenue", -1): "success",
        ("load_sales_model", -1): "success",
    }
    assert normalise([as_csv_row(r) for r in landed.rows("orders_raw")]) == normalise(orders())
    assert by_customer(landed.rows("customers_raw")) == customers()
    assert by_customer(landed.rows("customer_revenue")) == CUSTOMER_REVENUE

    built = xcom(run, "build_customer_revenue")
    assert built["job_id"] == "build-customer-revenue"
    assert [(t["name"], t["status"]) for t in built["tasks"]] == [("Customer revenue", "SUCCESS")]
    emu = landed.emu
    model = landed.session.get(f"{emu.url}/emulator/api/pools/{POOL}/data-models/sales", timeout=30).json()
    loaded = xcom(run, "load_sales_model")
    assert [(ld["id"], ld["status"], ld["type"]) for ld in model["loads"]] == [
        (loaded["load_id"], "SUCCESS", "COMPLETE")
    ]
    assert set(model["tables"]) == {"orders_raw", "customer_revenue"}
    assert by_customer(model["tables"]["customer_revenue"]) == CUSTOMER_REVENUE
    assert normalise([as_csv_row(r) for r in model["tables"]["orders_raw"]]) == normalise(orders())
    # The data job's outlet: an asset event on the table it built, for DAGs scheduled on it.
    assert asset_events(f"celonis://{emu.url.split('://', 1)[1]}/{POOL}/customer_revenue", run.run_id) == 1


@pytest.mark.usefixtures("airflow_db")
def test_pipeline_example_under_airflow_dags_test(pipeline_emulator: EmulatorClient) -> None:
    """The command a user runs, in its own process: ``airflow dags test example_celonis_pipeline`` (it exits
    non-zero when the run fails); the data job's output and the model's snapshot hold the expected rows."""
    env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLES)}
    command = [sys.executable, "-m", "airflow", "dags", "test", "example_celonis_pipeline"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    landed = pipeline_emulator
    assert by_customer(landed.rows("customer_revenue")) == CUSTOMER_REVENUE
    emu = landed.emu
    model = landed.session.get(f"{emu.url}/emulator/api/pools/{POOL}/data-models/sales", timeout=30).json()
    assert [ld["status"] for ld in model["loads"]] == ["SUCCESS"]
    assert by_customer(model["tables"]["customer_revenue"]) == CUSTOMER_REVENUE
    assert normalise([as_csv_row(r) for r in model["tables"]["orders_raw"]]) == normalise(orders())
