"""The Integration API's data models and pool tables over real HTTP: complete, from-cache and partial loads
into snapshots, load history, injected outcomes, a missing table; pool tables and their columns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_provider_celonis.emulator.integration.config import table_id
from airflow_provider_celonis.emulator.server import EmulatorServer
from tests.emulator.api_client import Api, parquet_bytes
from tests.emulator.integration_client import Integration, write_config

POOL = "pool-dm"
CONFIG = {
    "data_models": [
        {"id": "m", "name": "Sales", "tables": ["orders", {"id": "cust", "name": "customers", "alias": "Customers"}]},
        {"id": "broken", "name": "Broken", "tables": ["orders", "no_such_table"]},
    ]
}  # fmt: skip
ORDERS = table_id("m", "orders")


@pytest.fixture
def emu(celonis_emulator_factory: Callable[..., EmulatorServer], tmp_path: Path) -> EmulatorServer:
    config = write_config(tmp_path, {POOL: CONFIG})
    return celonis_emulator_factory(
        integration_config=config, integration_duration=0, integration_status_lag=0
    )


@pytest.fixture
def push(emu: EmulatorServer) -> Callable[[str, list[int]], None]:
    data_push = Api(emu, POOL)

    def push_ids(table: str, ids: list[int]) -> None:
        assert data_push.push(table, "REPLACE", [parquet_bytes({"id": ids})])["status"] == "DONE"

    return push_ids


@pytest.fixture
def api(emu: EmulatorServer, push: Callable[[str, list[int]], None]) -> Integration:
    push("orders", [1, 2])
    push("customers", [10])
    return Integration(emu, POOL)


def loaded(api: Integration, model: str = "m") -> dict[str, list[int]]:
    return {name: sorted(r["id"] for r in rows) for name, rows in api.model(model)["tables"].items()}


def test_data_models_and_their_tables_are_listed(api: Integration) -> None:
    models = api.get("data-models")
    assert [(m["id"], m["name"], m["poolId"]) for m in models] == [
        ("m", "Sales", POOL),
        ("broken", "Broken", POOL),
    ]
    assert api.get("data-models/m")["tables"] == models[0]["tables"]
    assert api.get("data-model/m/tables") == [
        {
            "id": ORDERS,
            "dataModelId": "m",
            "dataSourceId": None,
            "name": "orders",
            "alias": None,
            "aliasOrName": "orders",
            "augmentation": False,
            "useDirectStorage": False,
        },
        {
            "id": "cust",
            "dataModelId": "m",
            "dataSourceId": None,
            "name": "customers",
            "alias": "Customers",
            "aliasOrName": "Customers",
            "augmentation": False,
            "useDirectStorage": False,
        },
    ]


def test_a_model_never_loaded_has_no_current_load(api: Integration) -> None:
    assert api.load_info("m") == {
        "loadInfo": {"liveDataModel": None, "currentComputeLoad": None},
        "loadHistory": {"dataLoadHistory": [], "lastSuccessfulDataModel": None, "averageLoadTime": []},
    }
    assert api.model("m") == {"id": "m", "name": "Sales", "loads": [], "tables": {}}


def test_complete_from_cache_and_partial_loads_snapshot_the_pool_tables(
    api: Integration, push: Callable[[str, list[int]], None]
) -> None:
    r = api.reload("m", force_complete=True)
    assert r.status_code == 200
    assert r.content == b""
    complete = api.wait_load("m", 1)
    assert (complete["status"], complete["type"], complete["message"]) == ("SUCCESS", "COMPLETE", None)
    assert loaded(api) == {"orders": [1, 2], "customers": [10]}
    push("orders", [1, 2, 3])
    assert api.reload("m", force_complete=False).status_code == 200
    assert api.wait_load("m", 2)["type"] == "FROM_CACHE"
    assert loaded(api) == {"orders": [1, 2, 3], "customers": [10]}
    push("orders", [4])
    push("customers", [10, 11])
    assert api.partial("m", ["cust"]).status_code == 200
    partial = api.wait_load("m", 3)
    assert (partial["status"], partial["type"], partial["tables"]) == ("SUCCESS", "PARTIAL", ["customers"])
    assert loaded(api) == {"orders": [1, 2, 3], "customers": [10, 11]}
    info = api.load_info("m")
    history = info["loadHistory"]["dataLoadHistory"]
    assert [(h["loadType"], h["loadStatus"]) for h in history] == [
        ("PARTIAL", "SUCCESS"),
        ("FROM_CACHE", "SUCCESS"),
        ("COMPLETE", "SUCCESS"),
    ]
    assert [h["dataLoadId"] for h in history] == [
        partial["id"],
        api.model("m")["loads"][1]["id"],
        complete["id"],
    ]
    assert info["loadInfo"]["currentComputeLoad"] == history[0]
    assert (history[0]["startDate"], history[0]["endDate"]) == (partial["start"], partial["end"])
    assert info["loadInfo"]["liveDataModel"]["dataLoadId"] == partial["id"]
    assert info["loadHistory"]["lastSuccessfulDataModel"]["dataLoadId"] == partial["id"]


def test_a_load_while_one_runs_is_409(api: Integration) -> None:
    api.emu.settings.integration_duration = 60
    assert api.reload("m").status_code == 200
    running = api.load_info("m")["loadInfo"]["currentComputeLoad"]
    assert running["loadStatus"] == "RUNNING"
    assert running["endDate"] is None
    again = api.reload("m")
    assert again.status_code == 409
    assert again.json()["message"] == f"Data model m is already loading (load {running['dataLoadId']})"
    assert api.partial("m", [ORDERS]).status_code == 409
    assert len(api.model("m")["loads"]) == 1


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ([ORDERS, "nope"], "Table nope is not a table of data model m"),
        (["orders"], "Table orders is not"),  # ids, not names
        ([], "non-empty JSON list"),
        ({"tables": [ORDERS]}, "non-empty JSON list"),
    ],
)
def test_a_partial_load_names_what_is_wrong(api: Integration, body: object, named: str) -> None:
    r = api.partial("m", body)
    assert r.status_code == 400
    assert named in r.text
    assert api.model("m")["loads"] == []


def test_a_bad_force_complete_is_400(api: Integration) -> None:
    r = api.session.post(f"{api.base}/data-models/m/reload", params={"forceComplete": "yes"})
    assert r.status_code == 400
    assert "forceComplete must be true or false" in r.text


def test_a_missing_pool_table_ends_the_load_in_error_naming_it(api: Integration) -> None:
    assert api.reload("broken").status_code == 200
    load = api.wait_load("broken")
    assert load["status"] == "ERROR"
    assert (
        load["message"]
        == "Table 'no_such_table' of data model 'Broken' does not exist in data pool 'pool-dm'"
    )
    assert api.model("broken")["tables"] == {}  # nothing of the load is kept, not even orders
    info = api.load_info("broken")["loadInfo"]
    assert (info["currentComputeLoad"]["loadStatus"], info["liveDataModel"]) == ("ERROR", None)


def test_injected_load_outcomes(api: Integration, push: Callable[[str, list[int]], None]) -> None:
    api.next_load_status("m", "ERROR", "Out of memory in the compute engine")
    assert api.reload("m").status_code == 200
    error = api.wait_load("m", 1)
    assert (error["status"], error["message"]) == ("ERROR", "Out of memory in the compute engine")
    assert loaded(api) == {}
    api.next_load_status("m", "WARNING", "Foreign key orders.customer has no match")
    assert api.reload("m").status_code == 200
    warning = api.wait_load("m", 2)
    assert (warning["status"], warning["message"]) == ("WARNING", "Foreign key orders.customer has no match")
    assert loaded(api) == {"orders": [1, 2], "customers": [10]}
    assert api.load_info("m")["loadInfo"]["liveDataModel"]["dataLoadId"] == warning["id"]
    api.next_load_status("m", "ERROR", "cleared before it applies")
    assert api.session.delete(f"{api.emu.url}/emulator/api/faults").status_code == 200
    push("orders", [7])
    assert api.reload("m").status_code == 200
    assert api.wait_load("m", 3)["status"] == "SUCCESS"
    assert loaded(api) == {"orders": [7], "customers": [10]}


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        (
            {"pool_id": POOL, "data_model_id": "m", "status": "SUCCESS", "message": "x"},
            400,
            "ERROR or WARNING",
        ),
        ({"pool_id": POOL, "data_model_id": "m", "status": "ERROR", "message": ""}, 400, "message"),
        (
            {"pool_id": POOL, "data_model_id": "nope", "status": "ERROR", "message": "x"},
            404,
            "Data model nope",
        ),
    ],
)
def test_next_load_status_is_checked(api: Integration, body: dict[str, str], status: int, named: str) -> None:
    r = api.session.post(f"{api.emu.url}/emulator/api/faults/next-load-status", json=body)
    assert r.status_code == status
    assert named in r.text


def test_pool_tables_and_columns(api: Integration, emu: EmulatorServer) -> None:
    table = pa.table(
        {
            "n": pa.array([1, 2], pa.int64()),
            "x": pa.array([1.5, None], pa.float64()),
            "d": pa.array([dt.datetime(2024, 1, 2), None], pa.timestamp("ms")),
            "s": pa.array(["abc", "hello"], pa.string()),
            "b": pa.array([True, False], pa.bool_()),
            "t": pa.array([dt.time(3, 4), None], pa.time64("us")),
        }
    )
    assert Api(emu, POOL).push("typed", "REPLACE", [parquet_bytes(table)])["status"] == "DONE"
    tables = api.get("tables")
    assert [t["name"] for t in tables] == ["customers", "orders", "typed"]
    assert tables[2] == {
        "name": "typed",
        "loaderSource": None,
        "available": True,
        "dataSourceId": None,
        "dataSourceName": None,
        "schemaName": POOL,
        "type": "TABLE",
    }
    assert api.get("columns", tableName="typed") == [
        {"name": "n", "length": 0, "type": "INTEGER"},
        {"name": "x", "length": 0, "type": "FLOAT"},
        {"name": "d", "length": 0, "type": "DATE"},
        {"name": "s", "length": 20, "type": "STRING"},
        {"name": "b", "length": 0, "type": "INTEGER"},
        {"name": "t", "length": 32, "type": "STRING"},
    ]
    assert api.get("columns", tableName="TYPED", schemaName=POOL)[0]["name"] == "n"
    for params, status in [
        ({"tableName": "nope"}, 404),
        ({"tableName": "typed", "schemaName": "x"}, 404),
        ({}, 400),
    ]:
        assert api.session.get(f"{api.base}/columns", params=params).status_code == status
