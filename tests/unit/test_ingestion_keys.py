"""Ingestion keys live in Celonis' table configuration: the operator only checks data against them."""

from __future__ import annotations

from typing import Any

from airflow_provider_celonis.operators.data_ingestion import DataIngestionOperator


def _operator(**kwargs: Any) -> DataIngestionOperator:
    return DataIngestionOperator(
        task_id="ingest", target_table="orders", source="orders.parquet", primary_keys=["id"], **kwargs
    )


def test_keys_are_not_sent_as_object_metadata_by_default() -> None:
    assert _operator()._metadata() is None


def test_declare_keys_sends_them_for_the_lenient_emulator() -> None:
    meta = _operator(declare_keys=True, age_column="changed_at")._metadata()
    assert meta == {"primary-keys": "id", "age-column": "changed_at"}
