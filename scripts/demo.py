"""`make demo`: start the local Celonis emulator, push sample data with an example DAG, show what landed.

Everything happens in throw-away folders: a temporary AIRFLOW_HOME with a SQLite metadata DB, and an
emulator data directory. Nothing outside them is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from airflow_provider_celonis.emulator.testing import emulator_process

REPO = Path(__file__).resolve().parents[1]
APP_KEY = "demo-app-key"
POOL = "demo-pool"


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="celonis-demo-"))
    try:
        with emulator_process(
            "--app-key", APP_KEY, "--data-dir", str(work / "emulator"), "--log-level", "warning"
        ) as (_, url):
            print(f"Celonis emulator running at {url}")
            return push_and_show(url, work / "airflow")
    finally:
        print("Emulator stopped.")
        shutil.rmtree(work, ignore_errors=True)


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


if __name__ == "__main__":
    raise SystemExit(main())
