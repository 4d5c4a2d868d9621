"""Example 2: every day, replace a Celonis table with rows produced by a Python callable.

The callable returns a pandas DataFrame here; it may also return an Arrow table, a RecordBatchReader or
an iterable of record batches, which is how a large extract streams without being held in memory.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
from airflow.sdk import DAG

from airflow_provider_celonis.operators.data_push import DataPushOperator


def exchange_rates() -> pd.DataFrame:
    """Stand-in for an extract: one rate per currency and day for the last 30 days."""
    days = [date(2026, 1, 1) + timedelta(days=n) for n in range(30)]
    currencies = {"USD": 1.08, "GBP": 0.86, "JPY": 161.5, "CHF": 0.95}
    return pd.DataFrame(
        [
            {"day": day, "currency": code, "rate": round(base * (1 + 0.001 * n), 6)}
            for n, day in enumerate(days)
            for code, base in currencies.items()
        ]
    )


with DAG(
    dag_id="example_celonis_daily_replace",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["celonis", "example"],
) as dag:
    DataPushOperator(
        task_id="replace_exchange_rates",
        source=exchange_rates,
        target_table="exchange_rates",
        job_type="REPLACE",
        pool="celonis",
    )
