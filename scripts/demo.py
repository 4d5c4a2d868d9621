"""`make demo`: start the local Celonis emulator, push sample data with an example DAG, show what landed;
then run the pipeline example (push, data job, data model load) and show what the data job built and the
data model holds.

Everything happens in throw-away folders: a temporary AIRFLOW_HOME with a SQLite metadata DB, and an
emulator data directory. Nothing outside them is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet

from airflow_provider_celonis.emulator.testing import emulator_process

REPO = Path(__file__).resolve().parents[1]
APP_KEY = "demo-app-key"
POOL = "demo-pool"


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="celonis-demo-"))
    try:
        with emulator_process(
            "--app-key",
            APP_KEY,
            "--data-dir",
            str(work / "emulator"),
            "--log-level",
            "warning",
            "--integration-config",
            str(integration_config(work)),
            "--integration-duration",
            "0.2",
        ) as (_, url):
            print(f"Celonis emulator running at {url}")
            pushed = push_and_show(url, work / "airflow")
            return pushed or run_pipeline(url, work / "airflow")
    finally:
        print("Emulator stopped.")
        shutil.rmtree(work, ignore_errors=True)


def integration_config(work: Path) -> Path:
    """The pipeline example's data job and data model (example_dags/data/integration.json), in our pool."""
    config = json.loads((REPO / "example_dags" / "data" / "integration.json").read_text())
    (pool,) = config["pools"].values()
    path = work / "integration.json"
    path.write_text(json.dumps({"pools": {POOL: pool}}))
    return path


def push_and_show(url: str, home: Path) -> int:
    """Run the CSV example DAG against the emulator, then print the table it landed."""
    dags = home / "dags"
    shutil.copytree(REPO / "example_dags", dags)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW_CONN_CELONIS_DEFAULT": json.dumps(
                {"conn_type": "celonis", "host": url, "password": APP_KEY, "extra": {"data_pool_id": POOL}}
            ),
            # Deferred tasks store their trigger's arguments encrypted.
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "CELONIS_TEAM_URL": url,  # the pipeline example's assets
            "CELONIS_DATA_POOL_ID": POOL,
        }
    )
    import requests
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db

    print("Migrating a throw-away Airflow metadata DB ...")
    db.initdb()
    dag = DagBag(dag_folder=str(dags / "example_celonis_csv_delta.py")).get_dag("example_celonis_csv_delta")
    print(f"Running {dag.dag_id}: pushes example_dags/data/orders.csv into table 'orders' ...")
    run = dag.test()
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    print(f"DAG run {run.state}: {states}")
    headers = {"Authorization": f"AppKey {APP_KEY}"}
    tables = requests.get(f"{url}/emulator/api/pools/{POOL}/tables", headers=headers, timeout=30).json()
    rows = requests.get(
        f"{url}/emulator/api/pools/{POOL}/tables/orders.json", headers=headers, timeout=30
    ).json()
    print("\nWhat landed in the emulator:")
    for table in tables:
        cols = ", ".join(f"{c['name']} {c['type']}" for c in table["columns"])
        print(f"  {POOL}.{table['name']}: {table['rows']} rows ({cols})")
    for row in rows[:5]:
        print("   ", row)
    print(f"    ... {len(rows)} rows in all")
    return 0 if str(run.state) == "success" and len(rows) == 200 else 1


def run_pipeline(url: str, home: Path) -> int:
    """Run the pipeline example (already in the DAGs folder), then print the data job's output table and
    the data model's snapshot."""
    import requests
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(home / "dags" / "example_celonis_pipeline.py")).get_dag(
        "example_celonis_pipeline"
    )
    print(
        f"\nRunning {dag.dag_id}: pushes orders.csv and customers.csv (mapped), runs the data job "
        "'Build customer revenue', loads the data model 'Sales' ..."
    )
    run = dag.test()
    order = list(dag.task_ids)  # push, build_customer_revenue, load_sales_model
    states = {
        f"{ti.task_id}[{ti.map_index}]" if ti.map_index >= 0 else ti.task_id: str(ti.state)
        for ti in sorted(run.get_task_instances(), key=lambda ti: (order.index(ti.task_id), ti.map_index))
    }
    print(f"DAG run {run.state}: {states}")
    headers = {"Authorization": f"AppKey {APP_KEY}"}
    built = requests.get(
        f"{url}/emulator/api/pools/{POOL}/tables/customer_revenue.json", headers=headers, timeout=30
    ).json()
    print(f"\nWhat the data job's transformation built: {POOL}.customer_revenue ({len(built)} rows)")
    for row in sorted(built, key=lambda r: -r["revenue"]):
        print("   ", row)
    model = requests.get(
        f"{url}/emulator/api/pools/{POOL}/data-models/sales", headers=headers, timeout=30
    ).json()
    loads = ", ".join(f"{ld['type']} {ld['status']}" for ld in model["loads"])
    print(f"\nThe data model {model['name']!r} (loads: {loads}):")
    for table, table_rows in model["tables"].items():
        print(f"  {table}: {len(table_rows)} rows, e.g. {table_rows[0]}")
    snapshot = model["tables"].get("customer_revenue", [])
    ok = (
        str(run.state) == "success"
        and len(built) == 6
        and sorted(map(str, snapshot)) == sorted(map(str, built))
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
