"""Lineage of a Celonis push: OpenLineage facets and Airflow's hook lineage collector report the same thing.

Naming (see docs/operators.md, "Lineage"):

* the Celonis table is namespace ``celonis://<team host[:port]>``, name ``<data pool id>/<table>``; as an
  Airflow ``Asset`` its URI is ``celonis://<team host[:port]>/<data pool id>/<table>`` (``celonis_asset``);
* a local file, folder or glob is namespace ``file``, name its absolute path (the glob pattern as written);
* an object-storage path (``ObjectStoragePath`` or a ``s3://bucket/key`` string) is namespace
  ``<scheme>://<bucket>``, name the key;
* a SQL table read by ``SqlToCelonisOperator`` is namespace ``<conn type>://<host>[:<port>]``, name
  ``[<database>.][<schema>.]<table>`` as parsed from the query.

``apache-airflow-providers-openlineage`` is optional (the ``openlineage`` extra): everything here imports
it lazily and degrades to "no lineage" without it. Nothing in this module may fail a push.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

CELONIS_SCHEME = "celonis"


@dataclass(frozen=True)
class LineageDataset:
    """An OpenLineage dataset identity: ``namespace`` + ``name``."""

    namespace: str
    name: str

    @property
    def uri(self) -> str:
        """The same dataset as an Airflow asset URI."""
        if self.namespace == "file":
            return f"file://{self.name}"
        return f"{self.namespace}/{self.name.lstrip('/')}"


def celonis_namespace(team_url: str) -> str:
    """``celonis://<host[:port]>`` for a team URL such as ``https://myteam.eu-1.celonis.cloud``."""
    parts = urlsplit(team_url if "://" in team_url else f"//{team_url}")
    return f"{CELONIS_SCHEME}://{parts.netloc or parts.path}".rstrip("/")


def celonis_dataset(team_url: str, data_pool_id: str, table: str) -> LineageDataset:
    return LineageDataset(celonis_namespace(team_url), f"{data_pool_id}/{table}")


def celonis_asset_uri(team_url: str, data_pool_id: str, table: str) -> str:
    """``celonis://<team host>/<data pool id>/<table>``: the URI of the Celonis table as an Airflow asset."""
    return celonis_dataset(team_url, data_pool_id, table).uri


def celonis_asset(team_url: str, data_pool_id: str, table: str, **kwargs: Any) -> Any:
    """An ``airflow.sdk.Asset`` for a Celonis table, for ``outlets=[...]`` and asset-scheduled DAGs."""
    from airflow.sdk import Asset

    return Asset(celonis_asset_uri(team_url, data_pool_id, table), **kwargs)


# -- inputs -----------------------------------------------------------------------------------------


def _path_dataset(value: Any) -> LineageDataset | None:
    if isinstance(value, str | PurePath) or hasattr(value, "protocol"):
        text = str(value)
    else:
        return None
    if not text.strip():
        return None
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme == "file":
            return LineageDataset("file", parts.path)
        return LineageDataset(f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/"))
    return LineageDataset("file", os.path.abspath(os.path.expanduser(text)))


def source_datasets(source: Any) -> list[LineageDataset]:
    """Datasets of a ``source``/``deleted_source`` value: paths, globs, folders, lists of them, object
    storage. In-memory sources (DataFrames, Arrow data, callables, streams) have no dataset identity."""
    if source is None:
        return []
    if isinstance(source, str | PurePath) or hasattr(source, "protocol"):
        found = _path_dataset(source)
        return [found] if found else []
    if isinstance(source, list | tuple):
        out: list[LineageDataset] = []
        for item in source:
            out.extend(source_datasets(item))
        return out
    return []


def sql_datasets(sql: str, conn: Any) -> list[LineageDataset]:
    """Tables a query reads, parsed with OpenLineage's SQL parser (none when it is not installed)."""
    try:
        from openlineage_sql import parse
    except ImportError:
        return []
    conn_type = str(getattr(conn, "conn_type", None) or "sql")
    dialect = {"postgres": "postgres", "mysql": "mysql", "sqlite": "sqlite", "snowflake": "snowflake"}.get(
        conn_type, "generic"
    )
    try:
        parsed = parse([sql], dialect=dialect)
    except Exception as exc:  # noqa: BLE001 - lineage is best effort: it never fails the push
        log.debug("Could not parse the query for lineage: %s", exc)
        return []
    if parsed is None:
        return []
    host = str(getattr(conn, "host", None) or "localhost")
    port = getattr(conn, "port", None)
    namespace = f"{conn_type}://{host}{f':{port}' if port else ''}"
    database = getattr(conn, "schema", None) if conn_type != "sqlite" else None
    out = []
    for table in parsed.in_tables:
        schema = table.schema or ("public" if conn_type == "postgres" else None)
        parts = [p for p in (table.database or database, schema, table.name) if p]
        out.append(LineageDataset(namespace, ".".join(parts)))
    return out


# -- an operator's lineage --------------------------------------------------------------------------


@dataclass(frozen=True)
class PushLineage:
    inputs: Sequence[LineageDataset]
    output: LineageDataset


def push_lineage(operator: Any, data_pool_id: str | None = None) -> PushLineage | None:
    """What a ``DataPushOperator`` (or subclass) read and wrote; ``None`` when it cannot be told."""
    try:
        hook = operator.hook
        pool = data_pool_id or getattr(operator, "_pool", None) or hook.resolve_pool(operator.data_pool_id)
        output = celonis_dataset(hook.config.base_url, pool, str(operator.target_table))
    except Exception as exc:  # noqa: BLE001 - lineage is best effort: it never fails the push
        log.debug("No Celonis lineage: %s", exc)
        return None
    inputs: list[LineageDataset] = []
    sql = getattr(operator, "sql", None)
    if sql and getattr(operator, "sql_conn_id", None):
        try:
            from airflow.providers.common.compat.sdk import BaseHook

            inputs.extend(sql_datasets(str(sql), BaseHook.get_connection(operator.sql_conn_id)))
        except Exception as exc:  # noqa: BLE001 - lineage is best effort: it never fails the push
            log.debug("No SQL lineage: %s", exc)
    else:
        inputs.extend(source_datasets(getattr(operator, "source", None)))
    inputs.extend(source_datasets(getattr(operator, "deleted_source", None)))
    return PushLineage(_unique(inputs), output)


def _unique(items: Iterable[LineageDataset]) -> list[LineageDataset]:
    return list(dict.fromkeys(items))


def openlineage_facets(operator: Any) -> Any:
    """``OperatorLineage`` for ``get_openlineage_facets_on_complete``; ``None`` without the provider."""
    try:
        from airflow.providers.openlineage.extractors import OperatorLineage
        from openlineage.client.event_v2 import Dataset
    except ImportError:
        return None
    lineage = getattr(operator, "_lineage", None) or push_lineage(operator)
    if lineage is None:
        return None
    return OperatorLineage(
        inputs=[Dataset(namespace=d.namespace, name=d.name) for d in lineage.inputs],
        outputs=[Dataset(namespace=lineage.output.namespace, name=lineage.output.name)],
    )


def data_model_dataset(team_url: str, data_pool_id: str, model_id: str) -> LineageDataset:
    """A data model as a dataset: ``celonis://<host>`` ``<pool>/data-models/<model id>``."""
    return LineageDataset(celonis_namespace(team_url), f"{data_pool_id}/data-models/{model_id}")


def integration_lineage(operator: Any, outcome: dict[str, Any]) -> PushLineage | None:
    """A data model load reads its pool tables and writes the model. A data job: ``None``, because the
    Integration API calls we use do not say which tables its SQL reads or writes (declare them with the
    task's ``inlets``/``outlets``)."""
    if "data_model_id" not in outcome:
        log.info(
            "Celonis does not say which tables data job %s reads or writes; declare them with inlets/outlets "
            "for lineage",
            outcome.get("job_id"),
        )
        return None
    try:
        hook, pool, model = operator.hook, str(outcome["data_pool_id"]), str(outcome["data_model_id"])
        team = hook.config.base_url
        names = outcome.get("tables") or [t.get("name") for t in hook.list_data_model_tables(model, pool)]
        inputs = [celonis_dataset(team, pool, str(name)) for name in names if name]
        return PushLineage(_unique(inputs), data_model_dataset(team, pool, model))
    except Exception as exc:  # noqa: BLE001 - lineage is best effort: it never fails the task
        log.debug("No data model lineage: %s", exc)
        return None


def report_integration_lineage(operator: Any, outcome: dict[str, Any]) -> None:
    """Remember a data job's or data model load's lineage for OpenLineage and report it to the collector."""
    operator._lineage = integration_lineage(operator, outcome)
    _report(operator, lambda: operator._lineage)


def report_hook_lineage(operator: Any, data_pool_id: str | None = None) -> None:
    """Tell Airflow's hook lineage collector what the push read and wrote (never raises)."""
    _report(operator, lambda: push_lineage(operator, data_pool_id))


def _report(operator: Any, lineage_of: Callable[[], PushLineage | None]) -> None:
    try:
        from airflow.providers.common.compat.lineage.hook import get_hook_lineage_collector

        lineage = lineage_of()
        if lineage is None:
            return
        collector = get_hook_lineage_collector()
        for dataset in lineage.inputs:
            collector.add_input_asset(context=operator.hook, uri=dataset.uri)
        collector.add_output_asset(context=operator.hook, uri=lineage.output.uri)
    except Exception as exc:  # noqa: BLE001 - lineage is best effort: it never fails the push
        log.debug("Hook lineage not reported: %s", exc)
