"""Lineage: OpenLineage facets and hook-lineage of a push, and a Celonis-table asset triggering a DAG."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_celonis.lineage import (
    LineageDataset,
    celonis_asset,
    celonis_asset_uri,
    celonis_namespace,
    openlineage_facets,
    report_hook_lineage,
    source_datasets,
)
from airflow_provider_celonis.operators.data_push import DataPushOperator
from tests.helpers import POOL, task_states


def test_names() -> None:
    assert celonis_namespace("https://myteam.eu-1.celonis.cloud") == "celonis://myteam.eu-1.celonis.cloud"
    assert celonis_namespace("http://127.0.0.1:8765/") == "celonis://127.0.0.1:8765"
    uri = celonis_asset_uri("https://myteam.eu-1.celonis.cloud", "pool-1", "orders")
    assert uri == "celonis://myteam.eu-1.celonis.cloud/pool-1/orders"
    assert celonis_asset("https://myteam.eu-1.celonis.cloud", "pool-1", "orders").uri == uri


def test_source_datasets(tmp_path: Path) -> None:
    from airflow.sdk import ObjectStoragePath

    assert source_datasets(str(tmp_path / "a.csv")) == [LineageDataset("file", str(tmp_path / "a.csv"))]
    assert source_datasets([tmp_path / "x", "s3://bucket/exports/*.parquet"]) == [
        LineageDataset("file", str(tmp_path / "x")),
        LineageDataset("s3://bucket", "exports/*.parquet"),
    ]
    assert source_datasets(ObjectStoragePath("s3://bucket/key/orders.parquet")) == [
        LineageDataset("s3://bucket", "key/orders.parquet")
    ]
    assert source_datasets(lambda: None) == []
    assert source_datasets(None) == []


@pytest.mark.usefixtures("celonis_conn")
def test_openlineage_facets_of_a_file_push(emulator: Any, tmp_path: Path) -> None:
    op = DataPushOperator(task_id="push", source=str(tmp_path / "orders.csv"), target_table="orders")
    lineage = op.get_openlineage_facets_on_complete(None)
    host = emulator.url.split("://", 1)[1]
    assert [(d.namespace, d.name) for d in lineage.inputs] == [("file", str(tmp_path / "orders.csv"))]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [(f"celonis://{host}", f"{POOL}/orders")]


@pytest.mark.usefixtures("celonis_conn")
def test_openlineage_facets_of_a_sql_push(
    emulator: Any, tmp_path: Path, airflow_conn: Callable[..., str]
) -> None:
    from airflow_provider_celonis.transfers.sql_to_celonis import SqlToCelonisOperator

    db = tmp_path / "src.db"
    sqlite3.connect(db).close()
    op = SqlToCelonisOperator(
        task_id="push",
        sql_conn_id=airflow_conn("src_db", "sqlite", host=str(db)),
        sql="SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id",
        target_table="orders",
        data_pool_id="pool-2",
    )
    lineage = op.get_openlineage_facets_on_complete(None)
    assert sorted((d.namespace, d.name) for d in lineage.inputs) == [
        (f"sqlite://{db}", "customers"),
        (f"sqlite://{db}", "orders"),
    ]
    host = emulator.url.split("://", 1)[1]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [(f"celonis://{host}", "pool-2/orders")]


@pytest.mark.usefixtures("celonis_conn")
def test_no_openlineage_provider_no_facets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage.extractors", None)
    op = DataPushOperator(task_id="push", source="/data/orders.csv", target_table="orders")
    assert openlineage_facets(op) is None


@pytest.mark.usefixtures("celonis_conn")
def test_hook_lineage_collector_reports_the_same(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.lineage import HookLineageCollector

    collector = HookLineageCollector()
    monkeypatch.setattr(
        "airflow.providers.common.compat.lineage.hook.get_hook_lineage_collector", lambda: collector
    )
    op = DataPushOperator(task_id="push", source="/data/orders.csv", target_table="orders")
    report_hook_lineage(op)
    collected = collector.collected_assets
    host = emulator.url.split("://", 1)[1]
    assert [a.asset.uri for a in collected.inputs] == ["file:///data/orders.csv"]
    assert [a.asset.uri for a in collected.outputs] == [f"celonis://{host}/{POOL}/orders"]
    assert collected.outputs[0].context is op.hook


@pytest.mark.usefixtures("celonis_conn")
def test_push_with_celonis_asset_outlet_emits_an_asset_event(
    make_dag: Callable[..., Any], emulator: Any, tmp_path: Path
) -> None:
    """The example's pattern: ``outlets=[celonis_asset(...)]`` records an asset event on success."""
    source = tmp_path / "rows.csv"
    source.write_text("id,name\n1,a\n2,b\n")
    uri = celonis_asset_uri(emulator.url, POOL, "asset_rows")
    from airflow.sdk import Asset

    dag = make_dag(
        source=str(source), target_table="asset_rows", keys=["id"], poll_interval=0.2, outlets=[Asset(uri)]
    )
    run = dag.test()
    assert task_states(run) == {"push": "success"}
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        events = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.uri == uri, AssetEvent.source_run_id == run.run_id)
            .all()
        )
        assert len(events) == 1
