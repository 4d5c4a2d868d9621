"""Example 3: submit a push without waiting, then wait for the job with a (deferrable) sensor.

Splitting submit and wait frees the worker slot while Celonis executes the job; the sensor takes the job
id from the push task's XCom.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_celonis.operators.data_push import DataPushOperator
from airflow_provider_celonis.sensors.data_push import DataPushJobSensor

DATA = Path(__file__).parent / "data"

with DAG(
    dag_id="example_celonis_sensor",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["celonis", "example"],
) as dag:
    submit = DataPushOperator(
        task_id="submit_orders",
        source=str(DATA / "orders.csv"),
        target_table="orders_snapshot",
        job_type="REPLACE",
        wait_for_completion=False,
        pool="celonis",
    )
    wait = DataPushJobSensor(
        task_id="wait_for_job",
        job_id="{{ ti.xcom_pull(task_ids='submit_orders')['job_id'] }}",
        data_pool_id="{{ ti.xcom_pull(task_ids='submit_orders')['data_pool_id'] }}",
        deferrable=True,
        poke_interval=5,
        timeout=3600,
    )
    submit >> wait
