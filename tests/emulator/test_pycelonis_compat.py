"""pycelonis 2.x, Celonis' own SDK, driven against the emulator's Integration API: its objects must parse every
answer and its execute/reload loops must work (lenient profile, no status lag), and under the documented
profile's lag they show the trap its docs do not guard against.

pycelonis is not on PyPI; run with ``PYTHONPATH`` pointing at an extracted copy (see docs/emulator.md). Without
it these tests are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_celonis.emulator.integration.config import table_id
from airflow_provider_celonis.emulator.server import EmulatorServer
from tests.emulator.api_client import Api, parquet_bytes
from tests.emulator.integration_client import Integration, transformation, write_config

pytest.importorskip("pycelonis")
job_module = pytest.importorskip("pycelonis.ems.data_integration.job")
pool_module = pytest.importorskip("pycelonis.ems.data_integration.data_pool")
service = pytest.importorskip("pycelonis.service.integration.service")
errors = pytest.importorskip("pycelonis.errors")
client_module = pytest.importorskip("pycelonis_core.client.client")
config_module = pytest.importorskip("pycelonis.config")

POOL = "pool-pyc"
CONFIG = {
    "data_jobs": [
        {
            "id": "build",
            "name": "Build",
            "transformations": [
                transformation("t1", "CREATE OR REPLACE TABLE doubled AS SELECT id, amount * 2 AS amount FROM orders"),
                transformation("t2", "CREATE OR REPLACE TABLE total AS SELECT sum(amount) AS total FROM doubled"),
            ],
            "data_model_executions": [{"id": "load-m", "data_model_id": "m"}],
        },
        {"id": "broken", "name": "Broken", "transformations": [transformation("bad", "SELECT * FROM no_such_table")]},
    ],
    "data_models": [{"id": "m", "name": "Model", "tables": ["doubled", {"id": "total-id", "name": "total"}]}],
}  # fmt: skip
Factory = Callable[..., EmulatorServer]


@pytest.fixture(autouse=True)
def _quiet_pycelonis() -> Iterator[None]:
    config_module.Config.DISABLE_TQDM = True
    yield
    config_module.Config.reset()


def pool_for(factory: Factory, tmp_path: Path, **settings: object) -> tuple[Any, Integration]:
    """pycelonis' DataPool of a started emulator (and our client for checking what happened)."""
    emu = factory(integration_config=write_config(tmp_path, {POOL: CONFIG}), **settings)
    assert Api(emu, POOL).push("orders", "REPLACE", [parquet_bytes({"id": [1, 2], "amount": [1.5, 2.0]})])
    client = client_module.Client(
        base_url=emu.url,
        api_token=emu.app_key,
        key_type=client_module.KeyType.APP_KEY,
        user_agent="compat-test",
    )
    return pool_module.DataPool(client=client, id=POOL, name="pool"), Integration(emu, POOL)


def test_pycelonis_executes_a_job_and_reloads_a_model(
    celonis_emulator_factory: Factory, tmp_path: Path
) -> None:
    pool, ours = pool_for(celonis_emulator_factory, tmp_path, profile="lenient", integration_duration=0.5)
    job = pool.get_jobs().find("build", "id")
    assert [t.id for t in job.get_transformations()] == ["t1", "t2"]
    assert [(e.id, e.data_model_id) for e in job.get_data_model_executions()] == [("load-m", "m")]
    job.execute(wait=True)
    (execution,) = ours.executions("build")
    assert execution["status"] == "SUCCESS"
    assert ours.rows("total", "total") == [{"total": 7.0}]
    assert job.get_current_execution_status().status == service.ExecutionStatus.SUCCESS
    model = pool.get_data_models().find("m", "id")
    ours.wait_load("m")  # the job's own load step: pycelonis' execute does not wait for it (its docs say so)
    model.reload(wait=True)
    loads = ours.model("m")["loads"]
    assert [(ld["type"], ld["status"]) for ld in loads] == [("COMPLETE", "SUCCESS"), ("COMPLETE", "SUCCESS")]
    assert model.get_load_status().load_status == service.DataModelLoadStatus.SUCCESS
    model.partial_reload(["total-id"], wait=True)
    assert ours.model("m")["loads"][-1]["type"] == "PARTIAL"
    model.reload(force_complete=False, wait=True)
    assert ours.model("m")["loads"][-1]["type"] == "FROM_CACHE"
    assert ours.model("m")["tables"]["total"] == [{"total": 7.0}]


def test_pycelonis_subsets_errors_and_in_progress(celonis_emulator_factory: Factory, tmp_path: Path) -> None:
    pool, ours = pool_for(celonis_emulator_factory, tmp_path, profile="lenient", integration_duration=0)
    job = pool.get_jobs().find("build", "id")
    doubled = table_id("m", "doubled")
    selection = service.DataModelExecutionConfiguration(data_model_execution_id="load-m", tables=[doubled])
    job.execute(transformation_ids=["t1"], data_model_execution_configurations=[selection], wait=True)
    assert [t["taskId"] for t in ours.executions("build")[0]["tasks"]] == ["t1"]
    assert (ours.wait_load("m")["type"], ours.wait_load("m")["status"]) == ("PARTIAL", "SUCCESS")
    with pytest.raises(
        errors.PyCelonisExecutionFailedError, match="Catalog Error: Table with name no_such_table"
    ):
        pool.get_jobs().find("broken", "id").execute(wait=True)
    ours.emu.settings.integration_duration = 60
    job.execute(wait=False)
    with pytest.raises(errors.PyCelonisExecutionInProgressError):
        job.execute(wait=False)
    job.cancel_execution()
    assert ours.wait_execution("build")["status"] == "CANCEL"
    ours.emu.settings.integration_duration = 0
    model = pool.get_data_models().find("m", "id")
    ours.next_load_status("m", "ERROR", "Compute engine out of memory")
    with pytest.raises(errors.PyCelonisReloadFailedError, match="Compute engine out of memory"):
        model.partial_reload([doubled], wait=True)
    ours.next_load_status("m", "WARNING", "A foreign key has no match")
    model.partial_reload([doubled], wait=True)  # a warning passes (pycelonis logs it)
    assert [ld["status"] for ld in ours.model("m")["loads"]] == ["SUCCESS", "ERROR", "WARNING"]
    with pytest.raises(
        errors.PyCelonisReloadFailedError, match="Table 'total' of data model 'Model' does not exist"
    ):
        model.reload(wait=True)  # t2 never ran: the complete load misses its table
    table = pool.get_tables().find("orders")
    columns = [(c.name, c.type_) for c in table.get_columns()]
    assert columns == [("id", "INTEGER"), ("amount", "FLOAT")]


def test_documented_lag_fools_pycelonis(celonis_emulator_factory: Factory, tmp_path: Path) -> None:
    """The trap in the facts: pycelonis polls the one status per job/model and takes the previous one for its
    own. Under the documented profile's lag it fails a job that never ran before, and returns before the work
    is done when an earlier run succeeded."""
    pool, ours = pool_for(
        celonis_emulator_factory, tmp_path, integration_duration=30, integration_status_lag=30
    )
    settings = ours.emu.settings
    job = pool.get_jobs().find("build", "id")
    with pytest.raises(errors.PyCelonisExecutionFailedError):  # no previous status: "not SUCCESS", no log yet
        job.execute(wait=True)
    assert ours.executions("build")[0]["status"] in {"QUEUED", "RUNNING"}
    job.cancel_execution()
    settings.integration_duration, settings.integration_status_lag = 0, 0
    job.execute(wait=True)
    assert ours.wait_load("m")["status"] == "SUCCESS"
    settings.integration_duration, settings.integration_status_lag = 30, 30
    job.execute(wait=True)  # sees the previous SUCCESS and returns
    assert [e["status"] for e in ours.executions("build")] == ["CANCEL", "SUCCESS", "RUNNING"]
    model = pool.get_data_models().find("m", "id")
    model.reload(wait=True)  # sees the previous load's SUCCESS and returns
    assert [ld["status"] for ld in ours.model("m")["loads"]] == ["SUCCESS", "RUNNING"]
    job.cancel_execution()
