"""The Integration API's configuration file and command-line options: a bad file fails the start naming the
file and the entry."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_celonis.emulator.__main__ import parse_args
from airflow_provider_celonis.emulator.integration.config import load_integration_config, table_id
from airflow_provider_celonis.emulator.server import EmulatorServer
from airflow_provider_celonis.emulator.testing import build_settings, emulator_process
from tests.emulator.integration_client import transformation, write_config

JOB = {"id": "j", "name": "J", "transformations": [transformation("t", "SELECT 1")]}
MODEL = {"id": "m", "name": "M", "tables": ["orders"]}


@pytest.mark.parametrize(
    ("pools", "entry"),
    [
        ({"p": {"data_jobs": [{"name": "no id"}]}}, "pools.p.data_jobs[0] needs a non-empty string 'id'"),
        ({"p": {"data_jobs": [{"id": "j"}]}}, "pools.p.data_jobs[0] needs a non-empty string 'name'"),
        ({"p": {"data_jobs": [JOB, JOB]}}, "pools.p.data_jobs[1]: duplicate data job id 'j'"),
        (
            {"p": {"data_jobs": [{"id": "j", "name": "J", "transformations": [{"id": "t", "name": "T"}]}]}},
            "pools.p.data_jobs[0].transformations[0] needs a non-empty string 'sql'",
        ),
        (
            {
                "p": {
                    "data_jobs": [
                        {**JOB, "transformations": [transformation("t", "x"), transformation("t", "y")]}
                    ]
                }
            },
            "pools.p.data_jobs[0].transformations[1]: duplicate transformation id 't'",
        ),
        (
            {"p": {"data_jobs": [{**JOB, "data_model_executions": [{"id": "x", "data_model_id": "nope"}]}]}},
            "pools.p.data_jobs[0].data_model_executions[0]: data_model_id 'nope' is no data model of this pool",
        ),
        ({"p": {"data_models": [MODEL, MODEL]}}, "pools.p.data_models[1]: duplicate data model id 'm'"),
        (
            {"p": {"data_models": [{**MODEL, "tables": ["orders", "ORDERS"]}]}},
            "pools.p.data_models[0].tables[1]: duplicate table name 'ORDERS'",
        ),
        (
            {"p": {"data_models": [{**MODEL, "tables": [{"id": "x"}]}]}},
            "pools.p.data_models[0].tables[0] needs a non-empty string 'name'",
        ),
        (
            {"p": {"data_models": [{**MODEL, "tables": [3]}]}},
            "pools.p.data_models[0].tables[0] must be a pool table",
        ),
        ({"p": {"data_jobs": {"id": "j"}}}, "pools.p: 'data_jobs' must be a list"),
        ({"no pool!": {}}, "pools.no pool!: not a valid pool id"),
        ({"p": []}, "pools.p must be an object"),
    ],
)
def test_a_bad_entry_names_the_file_and_the_entry(tmp_path: Path, pools: dict[str, Any], entry: str) -> None:
    path = write_config(tmp_path, pools)
    with pytest.raises(ValueError, match=r"integration\.json") as raised:
        build_settings(integration_config=path)
    assert f"{path}: {entry}" in str(raised.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read the integration config"), ("{not json", "cannot read"), ("[]", "expected an object with 'pools'")],
)  # fmt: skip
def test_an_unreadable_file_is_refused(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "integration.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_integration_config(path)


def test_a_bad_config_fails_the_fixture_start(
    celonis_emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    path = write_config(tmp_path, {"p": {"data_jobs": [{"id": "j"}]}})
    with pytest.raises(ValueError, match=r"data_jobs\[0\] needs a non-empty string 'name'"):
        celonis_emulator_factory(integration_config=path)


def test_tables_named_by_string_get_deterministic_ids(tmp_path: Path) -> None:
    tables = ["orders", {"id": "cust", "name": "customers", "alias": "Customers"}]
    path = write_config(tmp_path, {"p": {"data_models": [{"id": "m", "name": "M", "tables": tables}]}})
    model = load_integration_config(path).pool("p").model("m")
    assert model is not None
    assert [(t.id, t.name, t.alias) for t in model.tables] == [
        (table_id("m", "orders"), "orders", None),
        ("cust", "customers", "Customers"),
    ]
    # the documented rule, so a client or test can compute a table id from the config
    assert table_id("m", "orders") == str(
        uuid.uuid5(uuid.NAMESPACE_URL, "celonis-emulator/data-models/m/tables/orders")
    )


def test_cli_options(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"p": {"data_jobs": [JOB], "data_models": [MODEL]}})
    s = parse_args(
        ["--integration-config", str(path), "--integration-duration", "0.5", "--integration-status-lag", "2"]
    )
    assert (s.integration_config, s.integration_duration, s.integration_status_lag) == (path, 0.5, 2.0)
    assert s.status_lag == 2.0
    assert [j.id for j in s.integration.pool("p").jobs] == ["j"]
    defaults = parse_args([])
    assert (defaults.integration_config, defaults.integration_duration, defaults.status_lag) == (
        None,
        1.0,
        1.0,
    )
    assert parse_args(["--profile", "lenient"]).status_lag == 0.0
    assert parse_args(["--profile", "lenient", "--integration-status-lag", "0.5"]).status_lag == 0.5


@pytest.mark.parametrize(
    "options",
    [
        ["--integration-duration", "-1"],
        ["--integration-status-lag", "-0.5"],
        ["--integration-duration", "soon"],
    ],
)
def test_cli_refuses_bad_numbers(options: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(options)


def test_cli_refuses_a_bad_config_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, {"p": {"data_models": [{"id": "m"}]}})
    with pytest.raises(SystemExit):
        parse_args(["--integration-config", str(path)])
    assert f"{path}: pools.p.data_models[0] needs a non-empty string 'name'" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_serves_the_configured_jobs(tmp_path: Path) -> None:
    path = tmp_path / "integration.json"
    path.write_text(json.dumps({"pools": {"p": {"data_jobs": [JOB]}}}), encoding="utf-8")
    with emulator_process("--app-key", "k", "--integration-config", str(path)) as (_, url):
        r = requests.get(
            f"{url}/integration/api/pools/p/jobs", headers={"Authorization": "AppKey k"}, timeout=10
        )
        assert [j["id"] for j in r.json()] == ["j"]
