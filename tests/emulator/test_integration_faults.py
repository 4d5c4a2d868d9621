"""The Integration API's traps and failures: the lagging status per profile, lost answers and gateway errors on
execute, reload and cancel (the generic fault middleware), 404s, authentication."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from airflow_provider_celonis.emulator.server import EmulatorServer
from tests.emulator.api_client import Api, parquet_bytes
from tests.emulator.integration_client import Integration, transformation, write_config

POOL = "pool-tr"
CONFIG = {
    "data_jobs": [{"id": "j", "name": "Job", "transformations": [transformation("t", "CREATE OR REPLACE TABLE copy AS SELECT * FROM src")]}],
    "data_models": [{"id": "m", "name": "Model", "tables": ["src"]}],
}  # fmt: skip
Factory = Callable[..., EmulatorServer]


def start(factory: Factory, tmp_path: Path, **settings: object) -> Integration:
    settings.setdefault("integration_duration", 0)
    emu = factory(
        integration_config=write_config(tmp_path, {POOL: CONFIG}),
        app_keys=("k1", "other=elsewhere"),
        **settings,
    )
    assert Api(emu, POOL).push("src", "REPLACE", [parquet_bytes({"id": [1]})])["status"] == "DONE"
    return Integration(emu, POOL)  # fmt: skip


def test_documented_status_lags_behind_an_execute_and_a_reload(
    celonis_emulator_factory: Factory, tmp_path: Path
) -> None:
    api = start(celonis_emulator_factory, tmp_path)
    settings = api.emu.settings
    assert (settings.profile, settings.status_lag) == ("documented", 1.0)
    settings.integration_status_lag = 0
    assert api.execute("j").status_code == 200
    first = api.wait_execution("j")
    assert api.reload("m").status_code == 200
    first_load = api.wait_load("m")
    settings.integration_status_lag = 3600  # a new execution or load stays hidden behind the previous one
    sent = int(time.time() * 1000)
    assert api.execute("j").status_code == 200
    assert api.reload("m").status_code == 200
    assert api.status("j") == {"id": "j", "status": "SUCCESS", "lastExecutionStartDate": first["start"]}
    assert first["start"] < sent
    assert api.get("jobs/j")["status"] == "SUCCESS"
    current = api.load_info("m")["loadInfo"]["currentComputeLoad"]
    assert (current["dataLoadId"], current["loadStatus"]) == (first_load["id"], "SUCCESS")
    second = api.wait_execution("j")
    assert api.status("j")["lastExecutionStartDate"] == first["start"]  # still, after the new one ended
    settings.integration_status_lag = 0
    assert api.status("j") == {"id": "j", "status": "SUCCESS", "lastExecutionStartDate": second["start"]}
    assert second["start"] >= sent
    assert (
        api.load_info("m")["loadInfo"]["currentComputeLoad"]["dataLoadId"] == api.model("m")["loads"][1]["id"]
    )


def test_documented_first_execution_shows_no_status_until_the_lag_passed(
    celonis_emulator_factory: Factory, tmp_path: Path
) -> None:
    api = start(celonis_emulator_factory, tmp_path, integration_status_lag=3600)
    assert api.execute("j").status_code == 200
    assert api.wait_execution("j")["status"] == "SUCCESS"
    assert api.status("j") == {"id": "j", "status": None, "lastExecutionStartDate": None}
    assert api.get("jobs/j")["currentExecutionId"] is None


def test_lenient_status_shows_the_new_execution_at_once(
    celonis_emulator_factory: Factory, tmp_path: Path
) -> None:
    api = start(celonis_emulator_factory, tmp_path, profile="lenient", integration_duration=60)
    assert api.emu.settings.status_lag == 0
    sent = int(time.time() * 1000)
    assert api.execute("j").status_code == 200
    status = api.status("j")
    assert status["status"] in {"QUEUED", "RUNNING"}
    assert status["lastExecutionStartDate"] >= sent
    assert api.get("jobs/j")["currentExecutionId"] == api.executions("j")[0]["executionId"]
    assert api.reload("m").status_code == 200
    assert api.load_info("m")["loadInfo"]["currentComputeLoad"]["loadStatus"] == "RUNNING"
    assert api.cancel("j").status_code == 200


def test_lost_answer_to_an_execute_leaves_exactly_one_execution(
    celonis_emulator_factory: Factory, tmp_path: Path
) -> None:
    api = start(celonis_emulator_factory, tmp_path)
    api.fault(method="POST", path=rf"/pools/{POOL}/jobs/j/execute/?$", action="close_after")
    with pytest.raises(requests.ConnectionError):
        api.execute("j")
    assert api.wait_execution("j")["status"] == "SUCCESS"
    assert len(api.executions("j")) == 1


def test_a_refused_execute_changes_nothing(celonis_emulator_factory: Factory, tmp_path: Path) -> None:
    api = start(celonis_emulator_factory, tmp_path)
    api.fault(method="POST", path=r"/jobs/j/execute/?$", action="close")
    with pytest.raises(requests.ConnectionError):
        api.execute("j")
    api.fault(method="POST", path=r"/jobs/j/execute/?$", status=503)
    assert api.execute("j").status_code == 503
    assert api.executions("j") == []


def test_gateway_error_after_a_reload_still_loads(celonis_emulator_factory: Factory, tmp_path: Path) -> None:
    api = start(celonis_emulator_factory, tmp_path)
    api.fault(method="POST", path=r"/data-models/m/reload/?$", action="status_after", status=502)
    assert api.reload("m").status_code == 502
    assert api.wait_load("m")["status"] == "SUCCESS"
    api.fault(method="POST", path=r"/load/partial-sync/?$", action="close_after")
    with pytest.raises(requests.ConnectionError):
        api.partial("m", [api.get("data-model/m/tables")[0]["id"]])
    assert api.wait_load("m", 2)["type"] == "PARTIAL"


def test_faults_on_cancel(celonis_emulator_factory: Factory, tmp_path: Path) -> None:
    api = start(celonis_emulator_factory, tmp_path, integration_duration=60)
    assert api.execute("j").status_code == 200
    api.fault(method="POST", path=r"/jobs/j/cancel/?$", status=503)
    assert api.cancel("j").status_code == 503
    assert api.executions("j")[0]["status"] in {"QUEUED", "RUNNING"}
    api.fault(method="POST", path=r"/jobs/j/cancel/?$", action="close_after")
    with pytest.raises(requests.ConnectionError):
        api.cancel("j")
    assert api.wait_execution("j")["status"] == "CANCEL"


def test_unknown_pools_jobs_models_and_executions_are_404(
    celonis_emulator_factory: Factory, tmp_path: Path
) -> None:
    api = start(celonis_emulator_factory, tmp_path)
    base = f"{api.emu.url}/integration/api"
    for path, what in [
        ("pools/unknown-pool/jobs", "Data pool unknown-pool not found"),
        ("pools/unknown-pool/tables", "Data pool unknown-pool not found"),
        ("pools/bad.pool/jobs", "Data pool bad.pool not found"),
        (f"pools/{POOL}/jobs/nope", "Data job nope not found"),
        (f"pools/{POOL}/jobs/nope/tasks/", "Data job nope not found"),
        (f"pools/{POOL}/logs/nope/executions", "Data job nope not found"),
        (f"pools/{POOL}/logs/executions?executionId=x&type=TASK&id=j", "Execution x not found"),
        (f"pools/{POOL}/logs/executions/detail?executionId=x&id=t&type=TASK", "Execution x not found"),
        (f"pools/{POOL}/data-models/nope/load-history/load-info-sync", "Data model nope not found"),
        (f"pools/{POOL}/data-model/nope/tables", "Data model nope not found"),
    ]:
        r = api.session.get(f"{base}/{path}")
        assert (r.status_code, r.json()["message"]) == (404, what), path
    for path in [
        f"pools/{POOL}/jobs/nope/execute",
        f"pools/{POOL}/jobs/nope/cancel",
        f"pools/{POOL}/data-models/nope/reload",
    ]:
        assert api.session.post(f"{base}/{path}", json={}).status_code == 404, path
    assert api.get("jobs/") == api.get("jobs")  # with and without the trailing slash
    assert api.get("jobs/j/tasks") == api.get("jobs/j/tasks/")  # fmt: skip


def test_credentials_are_checked(celonis_emulator_factory: Factory, tmp_path: Path) -> None:
    api = start(celonis_emulator_factory, tmp_path)
    url = f"{api.base}/jobs"
    assert requests.get(url).status_code == 401
    assert requests.get(url, headers={"Authorization": "AppKey wrong"}).status_code == 401
    assert requests.get(url, headers={"Authorization": "AppKey other"}).status_code == 403
    assert requests.post(f"{url}/j/execute", json={}).status_code == 401
    assert requests.get(f"{api.emu.url}/emulator/api/pools/{POOL}/data-models/m").status_code == 401
    assert api.executions("j") == []


def test_the_overview_lists_data_jobs_and_models(celonis_emulator_factory: Factory, tmp_path: Path) -> None:
    api = start(celonis_emulator_factory, tmp_path)
    assert api.execute("j").status_code == 200
    api.wait_execution("j")
    page = requests.get(f"{api.emu.url}/").text
    assert "<h2>Data jobs</h2>" in page
    assert "<td>Job</td>" in page
    assert "<td>Model</td>" in page
