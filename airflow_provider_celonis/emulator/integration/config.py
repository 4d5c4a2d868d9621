"""The Integration API's configuration file: each pool's data jobs (transformations, data model loads) and models.

```json
{"pools": {"<pool id>": {
    "data_jobs": [{"id": "j1", "name": "Build", "transformations": [{"id": "t1", "name": "T", "sql": "..."}],
                   "data_model_executions": [{"id": "x1", "data_model_id": "m1"}]}],
    "data_models": [{"id": "m1", "name": "Orders", "tables": ["orders", {"id": "tid", "name": "items"}]}]}}}
```

Everything is checked when the settings are built: a bad file fails the start with a message naming the file
and the entry. Pool tables named by a model need not exist yet (transformations create them later).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..storage import valid_pool

#: The namespace of the ids the emulator gives data model tables configured by name only.
TABLE_ID_NAMESPACE = uuid.NAMESPACE_URL


def table_id(data_model_id: str, name: str) -> str:
    """The deterministic id of a data model table configured as a plain name: uuid5 of model id and name."""
    return str(uuid.uuid5(TABLE_ID_NAMESPACE, f"celonis-emulator/data-models/{data_model_id}/tables/{name}"))


@dataclass(frozen=True)
class Transformation:
    """A transformation task: SQL (one or more statements) run in the pool's schema."""

    id: str
    name: str
    sql: str


@dataclass(frozen=True)
class ModelExecution:
    """A data model load step of a data job; ``table_ids`` empty means a complete load."""

    id: str
    data_model_id: str
    table_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class DataJob:
    id: str
    name: str
    transformations: tuple[Transformation, ...] = ()
    model_executions: tuple[ModelExecution, ...] = ()

    def transformation(self, task_id: str) -> Transformation | None:
        return next((t for t in self.transformations if t.id == task_id), None)

    def model_execution(self, execution_id: str) -> ModelExecution | None:
        return next((m for m in self.model_executions if m.id == execution_id), None)


@dataclass(frozen=True)
class ModelTable:
    """A data model table: ``name`` is the pool table it loads."""

    id: str
    name: str
    alias: str | None = None


@dataclass(frozen=True)
class DataModel:
    id: str
    name: str
    tables: tuple[ModelTable, ...] = ()

    def table(self, id_or_name: str) -> ModelTable | None:
        """The table with this id, else with this name (names are case-insensitive)."""
        found = next((t for t in self.tables if t.id == id_or_name), None)
        return found or next((t for t in self.tables if t.name.lower() == id_or_name.lower()), None)


@dataclass(frozen=True)
class PoolConfig:
    jobs: tuple[DataJob, ...] = ()
    models: tuple[DataModel, ...] = ()

    def job(self, job_id: str) -> DataJob | None:
        return next((j for j in self.jobs if j.id == job_id), None)

    def model(self, model_id: str) -> DataModel | None:
        return next((m for m in self.models if m.id == model_id), None)


@dataclass(frozen=True)
class IntegrationConfig:
    pools: Mapping[str, PoolConfig] = field(default_factory=dict)

    def pool(self, pool_id: str) -> PoolConfig:
        """The pool's configuration; an unconfigured pool has no jobs and no models."""
        return self.pools.get(pool_id) or PoolConfig()


class ConfigError(ValueError):
    pass


def _text(entry: Any, key: str, where: str) -> str:
    value = entry.get(key) if isinstance(entry, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} needs a non-empty string '{key}'")
    return value


def _items(entry: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = entry.get(key) or []
    if not isinstance(value, list):
        raise ConfigError(f"{where}: '{key}' must be a list")
    return value


def _unique(seen: set[str], value: str, what: str, where: str) -> None:
    if value.lower() in seen:
        raise ConfigError(f"{where}: duplicate {what} '{value}'")
    seen.add(value.lower())


def _table(raw: Any, model_id: str, where: str) -> ModelTable:
    if isinstance(raw, str) and raw.strip():
        return ModelTable(table_id(model_id, raw), raw)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a pool table name or an object with 'id' and 'name'")
    alias = raw.get("alias")
    if alias is not None and not isinstance(alias, str):
        raise ConfigError(f"{where}: 'alias' must be a string")
    return ModelTable(_text(raw, "id", where), _text(raw, "name", where), alias or None)


def _model(raw: Any, where: str) -> DataModel:
    model_id, name = _text(raw, "id", where), _text(raw, "name", where)
    tables: list[ModelTable] = []
    ids: set[str] = set()
    names: set[str] = set()
    for i, entry in enumerate(_items(raw, "tables", where)):
        table = _table(entry, model_id, f"{where}.tables[{i}]")
        _unique(ids, table.id, "table id", f"{where}.tables[{i}]")
        _unique(names, table.name, "table name", f"{where}.tables[{i}]")
        tables.append(table)
    return DataModel(model_id, name, tuple(tables))


def _model_execution(raw: Any, models: Mapping[str, DataModel], where: str) -> ModelExecution:
    execution_id, model_id = _text(raw, "id", where), _text(raw, "data_model_id", where)
    model = models.get(model_id)
    if model is None:
        raise ConfigError(f"{where}: data_model_id '{model_id}' is no data model of this pool")
    table_ids = []
    for i, ref in enumerate(_items(raw, "tables", where)):
        table = model.table(ref) if isinstance(ref, str) else None
        if table is None:
            raise ConfigError(
                f"{where}.tables[{i}]: '{ref}' is no table (id or name) of data model '{model_id}'"
            )
        table_ids.append(table.id)
    return ModelExecution(execution_id, model_id, tuple(table_ids))


def _job(raw: Any, models: Mapping[str, DataModel], seen: dict[str, set[str]], where: str) -> DataJob:
    job_id, name = _text(raw, "id", where), _text(raw, "name", where)
    _unique(seen["job"], job_id, "data job id", where)
    transformations = []
    for i, entry in enumerate(_items(raw, "transformations", where)):
        here = f"{where}.transformations[{i}]"
        task = Transformation(_text(entry, "id", here), _text(entry, "name", here), _text(entry, "sql", here))
        _unique(seen["task"], task.id, "transformation id", here)
        transformations.append(task)
    executions = []
    for i, entry in enumerate(_items(raw, "data_model_executions", where)):
        here = f"{where}.data_model_executions[{i}]"
        execution = _model_execution(entry, models, here)
        _unique(seen["execution"], execution.id, "data model execution id", here)
        executions.append(execution)
    return DataJob(job_id, name, tuple(transformations), tuple(executions))


def _pool(raw: Any, where: str) -> PoolConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be an object with 'data_jobs' and 'data_models'")
    models: dict[str, DataModel] = {}
    for i, entry in enumerate(_items(raw, "data_models", where)):
        model = _model(entry, f"{where}.data_models[{i}]")
        _unique(set(map(str.lower, models)), model.id, "data model id", f"{where}.data_models[{i}]")
        models[model.id] = model
    jobs: list[DataJob] = []
    seen: dict[str, set[str]] = {"job": set(), "task": set(), "execution": set()}
    for i, entry in enumerate(_items(raw, "data_jobs", where)):
        jobs.append(_job(entry, models, seen, f"{where}.data_jobs[{i}]"))
    return PoolConfig(tuple(jobs), tuple(models.values()))


def load_integration_config(path: Path) -> IntegrationConfig:
    """Read and check the file; raises ValueError naming the file and the entry."""
    try:
        doc: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the integration config {path}: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("pools"), dict):
        raise ConfigError(f"{path}: expected an object with 'pools': {{<pool id>: {{...}}}}")
    pools = {}
    for pool_id, raw in doc["pools"].items():
        if not valid_pool(pool_id):
            raise ConfigError(f"{path}: pools.{pool_id}: not a valid pool id (letters, digits, '_', '-')")
        pools[pool_id] = _pool(raw, f"{path}: pools.{pool_id}")
    return IntegrationConfig(pools)
