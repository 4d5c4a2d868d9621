"""Provider discovery: Airflow finds the package, the connection type, its form and the extra link."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from airflow_provider_celonis.get_provider_info import get_provider_info
from airflow_provider_celonis.hooks.celonis import CelonisHook


@pytest.mark.usefixtures("airflow_db")
def test_airflow_providers_list_shows_package() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "plain"],
        capture_output=True,
        text=True,
        timeout=180,
        env=os.environ.copy(),
        check=True,
    ).stdout
    assert "airflow-provider-celonis" in out


def test_connection_type_resolves_to_hook() -> None:
    from airflow.models.connection import Connection

    hook = Connection(
        conn_id="x", conn_type="celonis", host="https://t.eu-1.celonis.cloud", password="k"
    ).get_hook()
    assert isinstance(hook, CelonisHook)


def test_providers_manager_sees_form_and_link() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "airflow-provider-celonis" in manager.providers
    hook_info = manager.hooks["celonis"]
    assert hook_info is not None
    assert hook_info.hook_class_name.endswith("CelonisHook")
    widgets = manager.connection_form_widgets
    assert any(name.startswith("extra__celonis__auth_type") for name in widgets)
    behaviours = manager.field_behaviours
    assert behaviours["celonis"]["relabeling"]["host"] == "Team URL"
    assert set(behaviours["celonis"]["hidden_fields"]) == {"schema", "port"}
    assert {
        "airflow_provider_celonis.operators.data_push.CelonisDataPushJobLink",
        "airflow_provider_celonis.operators.links.CelonisDataJobLink",
        "airflow_provider_celonis.operators.links.CelonisDataModelLink",
    } <= set(manager.extra_links_class_names)


def test_provider_info_is_complete() -> None:
    info = get_provider_info()
    conn = info["connection-types"][0]
    assert conn["connection-type"] == "celonis"
    assert set(conn["conn-fields"]) >= {
        "auth_type",
        "data_pool_id",
        "oauth_scopes",
        "oauth_client_auth",
        "api_base_path",
        "verify",
        "timeout",
    }


def test_provider_info_follows_airflows_schema_and_declares_its_settings() -> None:
    """What ``airflow config list`` shows; a wrong key or type here breaks the providers manager."""
    import json
    from pathlib import Path

    import airflow
    import jsonschema

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    assert set(info["config"]["celonis"]["options"]) == {
        "trigger_requests_per_second",
        "status_log_interval",
        "reconcile_grace_seconds",
    }
