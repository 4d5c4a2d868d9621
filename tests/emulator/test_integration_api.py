"""The Integration API's data jobs over real HTTP: executions of SQL transformations in DuckDB, their logs,
subsets, failures, cancel and the 409 while one runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_celonis.emulator.integration.config import table_id
from airflow_provider_celonis.emulator.server import EmulatorServer
from tests.emulator.api_client import Api, parquet_bytes
from tests.emulator.integration_client import Integration, transformation, write_config

POOL = "pool-int"
SLOW_SQL = "SELECT sum(a.range * b.range) FROM range(100000000) a, range(100000) b"
CONFIG = {
    "data_jobs": [
        {
            "id": "build",
            "name": "Build orders",
            "transformations": [
                transformation("t1", "CREATE OR REPLACE TABLE big_orders AS SELECT id, amount FROM orders WHERE amount >= 20"),
                transformation(
                    "t2",
                    "CREATE OR REPLACE TABLE region_totals AS SELECT region, sum(amount) AS total FROM orders GROUP BY region;\n"
                    "CREATE OR REPLACE TABLE order_count AS SELECT count(*) AS n, ';' AS sep FROM big_orders;",
                ),
            ],
            "data_model_executions": [{"id": "load-m", "data_model_id": "m"}],
        },
        {
            "id": "broken",
            "name": "Broken",
            "transformations": [
                transformation("ok", "CREATE OR REPLACE TABLE ok_1 AS SELECT 1 AS x"),
                transformation("bad", "CREATE TABLE ok_2 AS SELECT 2 AS x; CREATE TABLE bad AS SELECT * FROM no_such_table"),
                transformation("after", "CREATE TABLE after_1 AS SELECT 1 AS x"),
            ],
            "data_model_executions": [{"id": "load-m2", "data_model_id": "m"}],
        },
        {"id": "slow", "name": "Slow", "transformations": [transformation("slow-sql", SLOW_SQL)]},
    ],
    "data_models": [{"id": "m", "name": "Orders model", "tables": ["big_orders", {"id": "rt", "name": "region_totals"}]}],
}  # fmt: skip
PYCELONIS_BODY = {
    "mode": "DELTA",
    "executeOnlySubsetOfTransformations": False,
    "transformations": [],
    "executeOnlySubsetOfExtractions": False,
    "extractions": [],
    "loadOnlySubsetOfDataModels": False,
    "dataModels": [],
}


@pytest.fixture
def emu(celonis_emulator_factory: Callable[..., EmulatorServer], tmp_path: Path) -> EmulatorServer:
    config = write_config(tmp_path, {POOL: CONFIG})
    return celonis_emulator_factory(
        integration_config=config, integration_duration=0, integration_status_lag=0
    )


@pytest.fixture
def api(emu: EmulatorServer) -> Integration:
    orders = {"id": [1, 2, 3], "amount": [10.0, 20.0, 30.0], "region": ["eu", "us", "eu"]}
    assert Api(emu, POOL).push("orders", "REPLACE", [parquet_bytes(orders)])["status"] == "DONE"
    return Integration(emu, POOL)


def statuses(execution: dict[str, Any]) -> dict[str, str]:
    return {t["taskId"]: t["status"] for t in execution["tasks"]}


def test_jobs_tasks_and_data_model_executions_are_listed(api: Integration) -> None:
    jobs = api.get("jobs")
    assert [(j["id"], j["name"], j["dataPoolId"], j["status"]) for j in jobs] == [
        ("build", "Build orders", POOL, None),
        ("broken", "Broken", POOL, None),
        ("slow", "Slow", POOL, None),
    ]
    assert jobs[0]["dataSourceId"] is None
    assert api.get("jobs/build")["name"] == "Build orders"
    tasks = api.get("jobs/build/tasks/")
    assert [(t["id"], t["taskId"], t["taskType"], t["executionOrder"], t["disabled"]) for t in tasks] == [
        ("t1", "t1", "TRANSFORMATION", 1, False),
        ("t2", "t2", "TRANSFORMATION", 2, False),
    ]
    assert {t["jobId"] for t in tasks} | {t["poolId"] for t in tasks} == {"build", POOL}
    assert api.get("jobs/build/loads") == [
        {
            "id": "load-m",
            "dataModelId": "m",
            "jobId": "build",
            "disabled": False,
            "dataModelName": "Orders model",
            "tables": [
                {"id": table_id("m", "big_orders"), "aliasOrName": "big_orders", "selected": True},
                {"id": "rt", "aliasOrName": "region_totals", "selected": True},
            ],
            "partialLoad": False,
        }
    ]
    assert api.get("logs/status") == [
        {"id": job, "status": None, "lastExecutionStartDate": None} for job in ("build", "broken", "slow")
    ]


def test_an_execution_runs_every_transformation_then_loads_the_data_model(api: Integration) -> None:
    r = api.execute("build", **PYCELONIS_BODY)
    assert r.status_code == 200
    assert r.content == b""
    execution = api.wait_execution("build")
    assert [h["status"] for h in execution["history"]] == ["QUEUED", "RUNNING", "SUCCESS"]
    assert statuses(execution) == {"t1": "SUCCESS", "t2": "SUCCESS"}
    assert execution["configuration"] == {"poolId": POOL, "jobId": "build", **PYCELONIS_BODY}
    assert api.rows("big_orders", "id") == [{"id": 2, "amount": 20.0}, {"id": 3, "amount": 30.0}]
    assert api.rows("region_totals", "region") == [
        {"region": "eu", "total": 40.0},
        {"region": "us", "total": 20.0},
    ]
    assert api.rows("order_count", "n") == [{"n": 2, "sep": ";"}]
    assert api.status("build") == {
        "id": "build",
        "status": "SUCCESS",
        "lastExecutionStartDate": execution["start"],
    }
    load = api.wait_load("m")
    assert (load["status"], load["type"], load["executionId"]) == (
        "SUCCESS",
        "COMPLETE",
        execution["executionId"],
    )
    loaded = sorted(api.model("m")["tables"]["region_totals"], key=lambda row: str(row["region"]))
    assert loaded == api.rows("region_totals", "region")


def test_execution_logs_list_the_job_its_tasks_and_their_messages(api: Integration) -> None:
    assert api.execute("build").status_code == 200
    execution = api.wait_execution("build")
    items = api.get("logs/build/executions")
    assert items["numOfPages"] == 1
    (item,) = items["executionItems"]
    assert (item["executionId"], item["jobId"], item["type"], item["status"], item["poolId"]) == (
        execution["executionId"], "build", "JOB", "SUCCESS", POOL,
    )  # fmt: skip
    assert (item["startDate"], item["endDate"]) == (execution["start"], execution["end"])
    tasks = api.get("logs/executions", executionId=item["executionId"], type="TASK", id="build")
    assert [(t["taskId"], t["type"], t["status"], t["executionId"]) for t in tasks] == [
        ("t1", "TASK", "SUCCESS", item["executionId"]),
        ("t2", "TASK", "SUCCESS", item["executionId"]),
    ]
    assert all(isinstance(t["startDate"], int) and t["endDate"] >= t["startDate"] for t in tasks)
    detail = api.get("logs/executions/detail", executionId=item["executionId"], id="t2", type="TASK")
    assert [m["logMessage"] for m in detail["logMessages"]] == ["2 statement(s) executed"]
    assert detail["logMessages"][0]["executionItemId"] == tasks[1]["id"]


def test_only_the_requested_transformations_and_data_models_run(api: Integration) -> None:
    r = api.execute(
        "build",
        executeOnlySubsetOfTransformations=True,
        transformations=["t1"],
        loadOnlySubsetOfDataModels=True,
        dataModels=[],
    )
    assert r.status_code == 200
    execution = api.wait_execution("build")
    assert execution["status"] == "SUCCESS"
    assert statuses(execution) == {"t1": "SUCCESS"}
    assert set(Api(api.emu, POOL).tables()) == {"orders", "big_orders"}
    assert execution["loads"] == []
    assert api.model("m")["loads"] == []


def test_a_data_model_load_step_can_load_a_subset_of_its_tables(api: Integration) -> None:
    selection = [{"dataModelExecutionId": "load-m", "tables": ["rt"]}]
    assert api.execute("build", loadOnlySubsetOfDataModels=True, dataModels=selection).status_code == 200
    assert api.wait_execution("build")["status"] == "SUCCESS"
    load = api.wait_load("m")
    assert (load["status"], load["type"], load["tables"]) == ("SUCCESS", "PARTIAL", ["region_totals"])
    assert set(api.model("m")["tables"]) == {"region_totals"}


def test_a_failing_statement_fails_its_task_skips_the_rest_and_loads_nothing(api: Integration) -> None:
    assert api.execute("broken").status_code == 200
    execution = api.wait_execution("broken")
    assert execution["status"] == "FAIL"
    assert statuses(execution) == {"ok": "SUCCESS", "bad": "FAIL", "after": "SKIPPED"}
    assert api.status("broken")["status"] == "FAIL"
    detail = api.get("logs/executions/detail", executionId=execution["executionId"], id="bad", type="TASK")
    message = detail["logMessages"][0]
    assert message["level"] == "ERROR"
    assert message["logMessage"].startswith(
        "Statement 2 of 2 failed: Catalog Error: Table with name no_such_table"
    )
    assert set(Api(api.emu, POOL).tables()) == {"orders", "ok_1", "ok_2"}
    assert execution["loads"] == []
    assert api.model("m")["loads"] == []


@pytest.mark.parametrize(
    ("config", "named"),
    [
        (
            {"executeOnlySubsetOfTransformations": True, "transformations": ["t1", "nope"]},
            "Transformation nope",
        ),
        (
            {"loadOnlySubsetOfDataModels": True, "dataModels": [{"dataModelExecutionId": "x9"}]},
            "execution x9",
        ),
        ({"dataModels": [{"dataModelExecutionId": "load-m", "tables": ["t-unknown"]}]}, "Table t-unknown"),
        ({"executeOnlySubsetOfExtractions": True, "extractions": [{"extractionId": "e1"}]}, "Extraction e1"),
        ({"jobId": "other"}, "jobId 'other'"),
        ({"mode": "SOMETIMES"}, "mode must be one of DELTA, FULL"),
        ({"transformations": "t1"}, "transformations must be a list"),
    ],
)
def test_a_bad_configuration_is_refused_naming_what_is_wrong(
    api: Integration, config: dict[str, Any], named: str
) -> None:
    r = api.execute("build", **config)
    assert r.status_code == 400
    assert named in r.text
    assert api.executions("build") == []


def test_a_body_that_is_no_configuration_is_refused(api: Integration) -> None:
    url = f"{api.base}/jobs/build/execute"
    assert api.session.post(url, json=["t1"]).status_code == 400
    assert (
        api.session.post(url, data=b"{not json", headers={"Content-Type": "application/json"}).status_code
        == 400
    )
    assert api.session.post(url).status_code == 400
    assert api.executions("build") == []


def test_execute_while_running_is_409_and_cancel_ends_the_execution(api: Integration) -> None:
    api.emu.settings.integration_duration = 60
    assert api.execute("build").status_code == 200
    first = api.wait_execution("build", statuses={"RUNNING"})
    again = api.execute("build")
    assert again.status_code == 409
    assert f"Data job build is already RUNNING (execution {first['executionId']})" in again.json()["message"]
    assert api.cancel("build").status_code == 200
    canceled = api.wait_execution("build")
    assert canceled["status"] == "CANCEL"
    assert statuses(canceled) == {"t1": "SKIPPED", "t2": "SKIPPED"}
    assert api.status("build")["status"] == "CANCEL"
    assert api.cancel("build").status_code == 200  # nothing to cancel: 200 as well
    api.emu.settings.integration_duration = 0
    assert api.execute("build").status_code == 200
    assert api.wait_execution("build")["status"] == "SUCCESS"
    assert [e["status"] for e in api.executions("build")] == ["CANCEL", "SUCCESS"]
    assert api.wait_load("m")["executionId"] == api.executions("build")[1]["executionId"]


def test_cancel_interrupts_the_running_statement(api: Integration) -> None:
    assert api.execute("slow").status_code == 200
    api.wait_task("slow", "slow-sql", "RUNNING")
    assert api.cancel("slow").status_code == 200
    execution = api.wait_execution("slow")
    assert execution["status"] == "CANCEL"
    assert execution["tasks"][0]["messages"] == ["Canceled by user"]
    assert api.execute("build").status_code == 200  # the runner is free again: the statement was interrupted
    assert api.wait_execution("build")["status"] == "SUCCESS"


def test_execution_items_are_paged_newest_first(api: Integration) -> None:
    for _ in range(2):
        assert api.execute("build", loadOnlySubsetOfDataModels=True).status_code == 200
        api.wait_execution("build")
    first, second = (e["executionId"] for e in api.executions("build"))
    newest = api.get("logs/build/executions", limit=1, page=0)
    assert newest["numOfPages"] == 2
    assert [i["executionId"] for i in newest["executionItems"]] == [second]
    assert [
        i["executionId"] for i in api.get("logs/build/executions", limit=1, page=1)["executionItems"]
    ] == [first]
