"""Secrets never leak: every example DAG runs with distinctive credentials, which must not appear anywhere."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import task_states

APP_KEY = "SECRET-APPKEY-7f3a9c51"
CLIENT_SECRET = "SECRET-OAUTH-b81d42e6"
WRONG_KEY = "SECRET-WRONGKEY-0c9e77"


def stored_texts(dag_id: str) -> str:
    """XComs, rendered template fields and trigger rows of a DAG, as stored in the metadata DB."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.trigger import Trigger
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        xcoms = [str(row.value) for row in session.query(XComModel).filter_by(dag_id=dag_id)]
        rendered = [
            json.dumps(row.rendered_fields, default=str)
            for row in session.query(RenderedTaskInstanceFields).filter_by(dag_id=dag_id)
        ]
        triggers = [str(row.kwargs) for row in session.query(Trigger)]
    return "\n".join(xcoms + rendered + triggers)


@pytest.fixture
def secret_emulator(celonis_emulator_factory: Any) -> Any:
    return celonis_emulator_factory(
        app_keys=(APP_KEY,),
        oauth_clients=(f"client-42:{CLIENT_SECRET}",),
        job_duration=0.3,
    )


@pytest.mark.parametrize(
    "auth",
    [
        {"password": APP_KEY},
        {"login": "client-42", "password": CLIENT_SECRET, "extra": {"auth_type": "oauth"}},
    ],
    ids=["app_key", "oauth"],
)
@pytest.mark.parametrize(
    "example", ["example_celonis_csv_delta", "example_celonis_daily_replace", "example_celonis_sensor"]
)
def test_examples_do_not_leak_credentials(
    example: str,
    auth: dict[str, Any],
    secret_emulator: Any,
    airflow_conn: Callable[..., str],
    example_dag: Callable[[str], Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    extra = {"data_pool_id": "pool-s", **auth.get("extra", {})}
    airflow_conn(
        "celonis_default",
        host=secret_emulator.url,
        login=auth.get("login"),
        password=auth["password"],
        **extra,
    )
    run = example_dag(example).test()
    assert set(task_states(run).values()) == {"success"}
    output = capsys.readouterr()
    everything = output.out + output.err + stored_texts(example)
    for secret in (APP_KEY, CLIENT_SECRET):
        assert secret not in everything
    assert "Bearer ey" not in everything
    assert "AppKey " + APP_KEY[:6] not in everything


def test_failure_messages_do_not_leak_the_key(
    secret_emulator: Any,
    make_dag: Callable[..., Any],
    airflow_conn: Callable[..., str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    airflow_conn("celonis_default", host=secret_emulator.url, password=WRONG_KEY, data_pool_id="p")
    src = tmp_path / "a.csv"
    src.write_text("id\n1\n")
    run = make_dag(source=str(src), target_table="t").test()
    assert task_states(run) == {"push": "failed"}
    output = capsys.readouterr().out
    assert "HTTP 401" in output
    assert WRONG_KEY not in output


def test_connection_repr_and_hook_config_hide_secret() -> None:
    from airflow_provider_celonis.hooks.connection import CelonisConnectionConfig

    class Conn:
        conn_id = "c"
        host = "https://team.eu-1.celonis.cloud"
        port = None
        login = None
        password = APP_KEY
        extra_dejson: dict[str, Any] = {}

    config = CelonisConnectionConfig.from_connection(Conn())
    assert APP_KEY not in repr(config)
    assert APP_KEY not in str(config)
