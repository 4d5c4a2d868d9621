"""Example 1: push a CSV file into Celonis as a DELTA load, upserting by key.

Set up the ``celonis_default`` connection (team URL, application key, default data pool) and the
``celonis`` pool (``airflow pools import pools.json``) first; see the README.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_celonis.operators.data_push import DataPushOperator

DATA = Path(__file__).parent / "data"

with DAG(
    dag_id="example_celonis_csv_delta",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["celonis", "example"],
) as dag:
    DataPushOperator(
        task_id="push_orders",
        source=str(DATA / "orders.csv"),
        target_table="orders",
        job_type="DELTA",
        keys=["order_id"],
        pool="celonis",
        retries=2,
    )
