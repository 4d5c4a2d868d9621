"""Test harness: a real Airflow with a migrated SQLite metadata DB, and emulator-backed connections.

Airflow reads its configuration when first imported, so the environment is set here, before any test
module imports it. DAGs run through ``dag.test()`` must live in the DAGs folder (Airflow 3 parses the
bundle to serialize them), so ``make_dag`` writes a small DAG file there that builds the test's DAG from the
objects the test passed (tests/dag_builder.py); ``airflow_conn`` registers connections as users do.

Each pytest-xdist worker imports this module in its own process, so each gets its own AIRFLOW_HOME and SQLite
DB. Tests under ``tests/unit/`` form the fast layer (``make unit``): they may not use the emulator or the
Airflow DB, and collection fails if one does. Tests under ``tests/e2e/`` are marked ``e2e`` and run apart from the
integration layer (``make e2e``: one xdist worker per Airflow stack).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests import dag_builder
from tests.helpers import ADMIN_KEY, POOL, EmulatorClient, conn_env, load_dag

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
    config.addinivalue_line("markers", "e2e: starts real Airflow services; never next to integration tests")


#: Fixtures that start a service or need the Airflow DB: not allowed in the unit layer.
SERVICE_FIXTURES = frozenset(
    {"airflow_db", "make_dag", "example_dag", "emulator", "celonis_conn", "landed", "celonis_emulator"}
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
        monkeypatch.setenv(*conn_env(conn_id, conn_type, **fields_and_extra))
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
def make_dag(airflow_db: Path) -> Iterator[Callable[..., Any]]:
    """Build a one-task DAG from an operator class and its keyword arguments (real objects, not source text).

    ``dag = make_dag(source=df, target_table="orders", keys=["id"])`` builds a ``DataPushOperator`` task
    ``push``; ``make_dag(SomeOperator, task_id="t", dag_kwargs={"params": {...}}, **kwargs)`` any other;
    ``make_dag(tasks=lambda: first >> second)`` several (the function creates them inside the DAG). The DAG
    lives in the DAGs folder (as ``dag.test()`` requires); run it with ``dag.test()`` and assert the run's
    state, which ``dag.test()`` does not raise on.
    """
    with ExitStack() as stack:
        yield lambda *args, **kwargs: stack.enter_context(dag_builder.dag_file(*args, **kwargs))


@pytest.fixture
def example_dag(airflow_db: Path) -> Iterator[Callable[[str], Any]]:
    """``example_dag("example_celonis_csv_delta")``: copy an example (and its data) into the DAGs folder, as a
    deployment would, and load it; removed again after the test."""
    dags = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    shutil.copytree(REPO / "example_dags" / "data", dags / "data", dirs_exist_ok=True)
    copied: list[Path] = []

    def load(name: str) -> Any:
        target = dags / f"{name}.py"
        shutil.copy(REPO / "example_dags" / f"{name}.py", target)
        copied.append(target)
        return load_dag(target, name)

    yield load
    for path in copied:
        path.unlink(missing_ok=True)


@pytest.fixture
def landed(emulator: Any) -> EmulatorClient:
    return EmulatorClient(emulator, ADMIN_KEY)
