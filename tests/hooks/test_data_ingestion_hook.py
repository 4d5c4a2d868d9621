"""CelonisDataIngestionHook: the SigV4 region from the connection, and one clear error for a wrong secret."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_celonis.hooks.data_ingestion import (
    CelonisDataIngestionHook,
    IngestionConnectionConfig,
)
from airflow_provider_celonis.hooks.errors import CelonisAuthError, CelonisConfigError

ACCESS, SECRET = "AKIAHOOK0001", "hook-secret-0123456789"


class _Conn:
    def __init__(self, host: str, **extra: Any) -> None:
        self.conn_id, self.host, self.port = "c", host, None
        self.login, self.password, self.extra_dejson = "AK", "SK", {"connection_id": "x", **extra}


@pytest.mark.parametrize(
    ("host", "extra", "region"),
    [
        ("https://team.us-1.celonis.cloud", {}, "us-east-1"),  # the one region Celonis documents
        ("https://team.eu-1.celonis.cloud", {"region": "eu-central-1"}, "eu-central-1"),
        ("https://team.us-1.celonis.cloud", {"region": "US-West-2 "}, "us-west-2"),  # explicit wins
    ],
)
def test_region_from_extra_or_documented_cluster(host: str, extra: dict[str, Any], region: str) -> None:
    assert IngestionConnectionConfig.from_connection(_Conn(host, **extra)).region == region


@pytest.mark.parametrize(
    ("host", "where"),
    [("https://team.eu-1.celonis.cloud", "cluster 'eu-1'"), ("https://celonis.example.com", "host")],
)
def test_region_required_where_not_documented(host: str, where: str) -> None:
    with pytest.raises(CelonisConfigError, match=f"set the extra 'region'.*{where}"):
        IngestionConnectionConfig.from_connection(_Conn(host))


def test_region_must_look_like_one() -> None:
    with pytest.raises(CelonisConfigError, match="not an AWS-style region"):
        IngestionConnectionConfig.from_connection(_Conn("https://t.us-1.celonis.cloud", region="eu 1"))


def test_wrong_secret_is_one_clear_error(
    celonis_emulator_factory: Any, airflow_conn: Callable[..., str], tmp_path: Any
) -> None:
    """Before: the error was chained to boto3's two wrapped errors, three tracebacks in the task log."""
    emu = celonis_emulator_factory(app_keys=("k",), ingestion_keys=(f"{ACCESS}:{SECRET}:conn-1",))
    airflow_conn(
        "ing",
        "celonis_data_ingestion",
        host=emu.url,
        login=ACCESS,
        password="wrong-secret-0123456789",
        connection_id="conn-1",
        region="us-east-1",
        retries=0,
    )
    path = tmp_path / "f.parquet"
    path.write_bytes(b"PAR1")
    hook = CelonisDataIngestionHook("ing")
    with pytest.raises(CelonisAuthError, match="SignatureDoesNotMatch") as err:
        hook.upload_file(path, "orders")
    assert err.value.__cause__ is None
    assert err.value.__suppress_context__
    assert "wrong-secret" not in str(err.value)
