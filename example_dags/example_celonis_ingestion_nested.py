"""Example 4: push nested JSON (orders with their line items) through the Standard Data Ingestion API.

Celonis unnests the ``line_items`` list into a child table, so the orders land as two linked tables:
``orders`` and ``orders_line_items``, whose column ``orders_order_id`` carries the parent's key.
Set up the ``celonis_data_ingestion_default`` connection (team URL, the data connection's S3 access key
and secret, extra ``connection_id``) and the ``celonis`` pool first; see docs/ingestion.md.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_celonis.operators.data_ingestion import DataIngestionOperator

DATA = Path(__file__).parent / "data"

with DAG(
    dag_id="example_celonis_ingestion_nested",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["celonis", "example"],
) as dag:
    DataIngestionOperator(
        task_id="ingest_orders",
        source=str(DATA / "orders_nested.jsonl"),
        target_table="orders",
        primary_keys=["order_id"],
        pool="celonis",
        retries=2,
    )
