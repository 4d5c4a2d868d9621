"""Test harness: a real Airflow with a migrated SQLite metadata DB, and emulator-backed connections.

Airflow reads its configuration when first imported, so the environment is set here, before any test
module imports it. DAGs run through ``dag.test()`` must live in the DAGs folder (Airflow 3 parses the
bundle to serialize them), so ``run_dag`` writes each test's DAG there first.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ADMIN_KEY, POOL, EmulatorClient, conn_uri_env, load_dag, write_dag

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
def celonis_conn(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Register a ``celonis`` connection to the emulator (env var, as users would); returns its id."""

    def make(conn_id: str = "celonis_default", password: str | None = None, **extra: Any) -> str:
        extra.setdefault("data_pool_id", POOL)
        name, value = conn_uri_env(conn_id, emulator.url, password or emulator.app_key, **extra)
        monkeypatch.setenv(name, value)
        return conn_id

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
def landed(emulator: Any) -> EmulatorClient:
    return EmulatorClient(emulator, ADMIN_KEY)
