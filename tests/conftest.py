"""Test harness: a real Airflow with a migrated SQLite metadata DB, and emulator-backed connections.

Airflow reads its configuration when first imported, so the environment is set here, before any test
module imports it. DAGs run through ``dag.test()`` must live in the DAGs folder (Airflow 3 parses the
bundle to serialize them), so ``run_dag`` writes each test's DAG there first (``make_dag`` builds one from an operator and its arguments).

Each pytest-xdist worker imports this module in its own process, so each gets its own AIRFLOW_HOME and SQLite
DB. Tests under ``tests/unit/`` form the fast layer (``make unit``): they may not use the emulator or the
Airflow DB, and collection fails if one does. Tests under ``tests/e2e/`` are marked ``e2e`` and run alone.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import dag_builder
from tests.helpers import ADMIN_KEY, POOL, EmulatorClient, load_dag, write_dag

_HOME = Path(tempfile.mkdtemp(prefix="celonis-airflow-home-"))
_DAGS = _HOME / "dags"
_DAGS.mkdir()
os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(_DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME}/airflow.db",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__CELONIS__TRIGGER_REQUESTS_PER_SECOND": "200",
        # Example DAGs retry; a failing test should not wait Airflow's default 5 minutes per retry.
        "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "1",
    }
)
REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    config.addinivalue_line("markers", "airflow: needs the migrated Airflow metadata DB")
    config.addinivalue_line("markers", "unit: the fast layer under tests/unit/ (no emulator, no Airflow DB)")
    config.addinivalue_line("markers", "e2e: starts real Airflow services; never on xdist workers")


#: Fixtures that start a service or need the Airflow DB: not allowed in the unit layer.
SERVICE_FIXTURES = frozenset(
    {"airflow_db", "run_dag", "make_dag", "emulator", "celonis_conn", "landed", "celonis_emulator"}
    | {"celonis_emulator_factory", "shared_emulator", "postgres"}
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        layer = item.path.relative_to(REPO).parts[1:2] if item.path.is_relative_to(REPO) else ()
        if layer == ("unit",):
            item.add_marker(pytest.mark.unit)
            used = SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
            if used:
                raise pytest.UsageError(
                    f"{item.nodeid} is in tests/unit/ (no emulator, no Airflow DB) but uses {sorted(used)}: "
                    "move it to the integration layer"
                )
        elif layer == ("e2e",):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the metadata DB once per session."""
    from airflow.utils import db

    db.initdb()
    return _HOME


@pytest.fixture
def emulator(celonis_emulator_factory: Callable[..., Any]) -> Any:
    """A fresh emulator with an app key, an API key and an OAuth client; jobs stay RUNNING briefly."""
    return celonis_emulator_factory(
        app_keys=("app-key-0123456789=pool-1,pool-2,p", ADMIN_KEY),
        api_keys=("api-key-0123456789",),
        oauth_clients=("client-1:client-secret-0123456789",),
        job_duration=0.3,
    )


@pytest.fixture
def airflow_conn(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Register any Airflow connection as users would (a JSON ``AIRFLOW_CONN_<ID>`` variable); returns its id.

    ``airflow_conn("down", host=url, password="k", data_pool_id="p", retries=1)``: the connection fields
    (``conn_type``, ``host``, ``login``, ``password``, ``schema``, ``port``) by name, every other keyword into
    ``extra``. Removed again after the test.
    """

    def make(conn_id: str, conn_type: str = "celonis", **fields_and_extra: Any) -> str:
        fields = {
            name: fields_and_extra.pop(name)
            for name in ("host", "login", "password", "schema", "port")
            if name in fields_and_extra
        }
        value = {"conn_type": conn_type, **{k: v for k, v in fields.items() if v is not None}}
        value["extra"] = fields_and_extra
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))
        return conn_id

    return make


@pytest.fixture
def celonis_conn(emulator: Any, airflow_conn: Callable[..., str]) -> Callable[..., str]:
    """Register a ``celonis`` connection to the emulator (env var, as users would); returns its id."""

    def make(conn_id: str = "celonis_default", password: str | None = None, **extra: Any) -> str:
        extra.setdefault("data_pool_id", POOL)
        return airflow_conn(conn_id, host=emulator.url, password=password or emulator.app_key, **extra)

    make()
    return make


@pytest.fixture
def run_dag(airflow_db: Path) -> Iterator[Callable[..., Any]]:
    """Run DAG source through ``dag.test()``; returns the DagRun (assert its state: it does not raise)."""
    written: list[Path] = []

    def run(source: str, **test_kwargs: Any) -> Any:
        dag_id, path = write_dag(source)
        written.append(path)
        dag = load_dag(path, dag_id)
        return dag.test(**test_kwargs)

    yield run
    for path in written:
        path.unlink(missing_ok=True)


@pytest.fixture
def make_dag(airflow_db: Path) -> Iterator[Callable[..., Any]]:
    """Build a one-task DAG from an operator class and its keyword arguments (real objects, not source text).

    ``dag = make_dag(source=df, target_table="orders", keys=["id"])`` builds a ``DataPushOperator`` task
    ``push``; ``make_dag(SomeOperator, task_id="t", dag_kwargs={"params": {...}}, **kwargs)`` any other;
    ``make_dag(tasks=lambda: first >> second)`` several (the function creates them inside the DAG). The DAG
    lives in the DAGs folder (as ``dag.test()`` requires); run it with ``dag.test()`` and assert the run's
    state, which ``dag.test()`` does not raise on.
    """
    written: list[tuple[str, Path]] = []

    def make(
        operator: type | None = None,
        *,
        task_id: str = "push",
        tasks: Callable[[], object] | None = None,
        dag_kwargs: dict[str, Any] | None = None,
        **operator_kwargs: Any,
    ) -> Any:
        if tasks is not None and (operator is not None or operator_kwargs):
            raise TypeError("make_dag: give tasks= or an operator and its arguments, not both")
        if operator is None and tasks is None:
            from airflow_provider_celonis.operators.data_push import DataPushOperator

            operator = DataPushOperator
        dag_id = f"t_{uuid.uuid4().hex[:10]}"
        spec = dag_builder.DagSpec(operator, task_id, operator_kwargs, dag_kwargs or {}, tasks)
        dag_builder.SPECS[dag_id] = spec
        _, path = write_dag(dag_builder.DAG_FILE.format(dag_id=dag_id), name=dag_id)
        written.append((dag_id, path))
        return load_dag(path, dag_id)

    yield make
    for dag_id, path in written:
        dag_builder.SPECS.pop(dag_id, None)
        path.unlink(missing_ok=True)


@pytest.fixture
def landed(emulator: Any) -> EmulatorClient:
    return EmulatorClient(emulator, ADMIN_KEY)
