"""Example 4: a push into a Celonis table triggers a downstream DAG through an Airflow Asset.

The Celonis table is the asset ``celonis://<team host>/<data pool id>/<table>`` (``celonis_asset`` builds
it; the same URI the provider reports to OpenLineage and the hook lineage collector). The producer names
it in ``outlets``; when the push succeeds, Airflow records an asset event and schedules every DAG whose
``schedule`` includes that asset.

The team URL and pool are known when the DAG file is parsed; they come from the environment here
(``CELONIS_TEAM_URL``, ``CELONIS_DATA_POOL_ID``) so the file needs no database access while parsing. Use
the values of your ``celonis_default`` connection.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_celonis.lineage import celonis_asset
from airflow_provider_celonis.operators.data_push import DataPushOperator

DATA = Path(__file__).parent / "data"
TEAM_URL = os.environ.get("CELONIS_TEAM_URL", "https://myteam.eu-1.celonis.cloud")
DATA_POOL_ID = os.environ.get("CELONIS_DATA_POOL_ID", "my-data-pool-id")

ORDERS = celonis_asset(TEAM_URL, DATA_POOL_ID, "orders_by_asset")

with DAG(
    dag_id="example_celonis_asset_producer",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["celonis", "example"],
):
    DataPushOperator(
        task_id="push_orders",
        source=str(DATA / "orders.csv"),
        target_table="orders_by_asset",
        data_pool_id=DATA_POOL_ID,
        job_type="DELTA",
        keys=["order_id"],
        pool="celonis",
        outlets=[ORDERS],
    )

with DAG(
    dag_id="example_celonis_asset_consumer",
    schedule=[ORDERS],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["celonis", "example"],
):

    @task
    def report(**context: Any) -> list[str]:
        """Runs after every successful push into the table; here it only lists what triggered it."""
        events = context["triggering_asset_events"]
        uris = [asset_event.asset.uri for asset_events in events.values() for asset_event in asset_events]
        print(f"Celonis table updated: {uris}")
        return uris

    report()
