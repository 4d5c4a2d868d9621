"""Example 5: every day, push raw tables, transform them with a data job, then load the data model.

What it shows:

* dynamic task mapping: one ``DataPushOperator`` mapped over ``TABLES`` (``expand_kwargs``), one task
  instance per table; adding a table is adding a line;
* ``DataJobOperator`` runs the pool's data job "Build customer revenue", whose SQL joins the two pushed
  tables into ``customer_revenue``; ``DataModelLoadOperator`` then reloads the data model "Sales";
* every wait is deferrable: Celonis works while the triggerer waits, no worker slot is held;
* Assets: Celonis does not say which tables a data job reads or writes, so the task declares them
  (``inlets``/``outlets`` built with ``celonis_asset``); a DAG with ``schedule=[CUSTOMER_REVENUE]`` runs
  after every successful build.

The data job and the data model are set up in Celonis. Against the local emulator they come from
``data/integration.json`` (``celonis-emulator --integration-config example_dags/data/integration.json``,
data pool ``pool-1``). Team URL and pool are read from the environment, as in the asset example.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_celonis.lineage import celonis_asset
from airflow_provider_celonis.operators.data_job import DataJobOperator
from airflow_provider_celonis.operators.data_model import DataModelLoadOperator
from airflow_provider_celonis.operators.data_push import DataPushOperator

DATA = Path(__file__).parent / "data"
TEAM_URL = os.environ.get("CELONIS_TEAM_URL", "https://myteam.eu-1.celonis.cloud")
DATA_POOL_ID = os.environ.get("CELONIS_DATA_POOL_ID", "pool-1")

TABLES = [
    {"source": str(DATA / "orders.csv"), "target_table": "orders_raw"},
    {"source": str(DATA / "customers.csv"), "target_table": "customers_raw"},
]
CUSTOMER_REVENUE = celonis_asset(TEAM_URL, DATA_POOL_ID, "customer_revenue")

with DAG(
    dag_id="example_celonis_pipeline",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # one data job execution at a time
    default_args={"pool": "celonis", "data_pool_id": DATA_POOL_ID, "retries": 2},
    tags=["celonis", "example"],
) as dag:
    push = DataPushOperator.partial(task_id="push", job_type="REPLACE", deferrable=True).expand_kwargs(TABLES)
    build = DataJobOperator(
        task_id="build_customer_revenue",
        data_job="Build customer revenue",
        deferrable=True,
        inlets=[celonis_asset(TEAM_URL, DATA_POOL_ID, t["target_table"]) for t in TABLES],
        outlets=[CUSTOMER_REVENUE],
    )
    load = DataModelLoadOperator(task_id="load_sales_model", data_model="Sales", deferrable=True)
    push >> build >> load
