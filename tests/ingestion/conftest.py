"""Fixtures for the Standard Data Ingestion tests: an emulator with S3 keys, clients, and bounded waits."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from tests.helpers import ADMIN_KEY, EmulatorClient

ACCESS, SECRET, CONN = "AKIAINGEST0001", "ingest-secret-0123456789", "conn-1"
OTHER = "AKIAOTHER0002:other-secret-0123456789:conn-2:pool-9"
KEY_PREFIX = f"connection/{CONN}/"
#: The tables configured on conn-1 (in Celonis: in the data connection's UI), keyed by ``id`` unless named;
#: ``orders`` is the nested example's parent and ``orders_line_items`` its child table. The documented
#: profile refuses files for a table not listed here (add yours, or use the ``configure`` fixture).
TABLES = (
    *(
        f"{CONN}:{t}:id"
        for t in ("wide", "retried", "u", "t", "flat", "big", "chunked", "objects", "sales", "enc")
    ),
    f"{CONN}:orders:order_id",
    f"{CONN}:orders_line_items:line_id",
    "conn-2:configured:id:version",
)


@pytest.fixture
def emulator(celonis_emulator_factory: Callable[..., Any]) -> Any:
    """An emulator with two ingestion keys (conn-1 into pool conn-1, conn-2 into pool-9) and their tables."""
    return celonis_emulator_factory(
        app_keys=("app-key-0123456789=pool-1,pool-2,p", ADMIN_KEY),
        ingestion_keys=(f"{ACCESS}:{SECRET}:{CONN}", OTHER),
        ingestion_tables=TABLES,
        profile="documented",
    )


@pytest.fixture
def configure(emulator: Any) -> Callable[..., None]:
    """``configure(table, "k1,k2", age=None)``: (re)configure a conn-1 table on the running emulator.

    Keys are looked up when a file arrives, so a change applies to the files uploaded after it.
    """
    from airflow_provider_celonis.emulator.settings import IngestionTableSpec

    def _configure(table: str, keys: str, age: str | None = None) -> None:
        spec = IngestionTableSpec.parse(f"{CONN}:{table}:{keys}" + (f":{age}" if age else ""))
        kept = [t for t in emulator.settings.ingestion_tables if (t.connection_id, t.table) != (CONN, table)]
        emulator.settings.ingestion_tables = (*kept, spec)

    return _configure


def s3_client(emu: Any, access: str = ACCESS, secret: str = SECRET, region: str = "us-east-1") -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=f"{emu.url}/api/data-ingestion",
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name=region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


@pytest.fixture
def s3(emulator: Any) -> Any:
    return s3_client(emulator)


def parquet(columns: dict[str, list[Any]] | pa.Table, compression: str = "NONE") -> bytes:
    table = columns if isinstance(columns, pa.Table) else pa.table(columns)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression=compression)
    return buf.getvalue()


class Ingestion(EmulatorClient):
    """Inspection of the ingestion side: bounded waits for the FIFO queue, errors and landed tables."""

    def status(self) -> dict[str, Any]:
        r = self.session.get(f"{self.emu.url}/emulator/api/ingestion/status", timeout=30)
        r.raise_for_status()
        return dict(r.json())

    def errors(self) -> list[dict[str, Any]]:
        r = self.session.get(f"{self.emu.url}/emulator/api/ingestion/errors", timeout=30)
        r.raise_for_status()
        return list(r.json())

    def wait(self, files: int, timeout: float = 20) -> dict[str, Any]:
        """Until ``files`` files were received and none is pending (never sleeps blindly)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if status["pending"] == 0 and len(status["files"]) >= files:
                return status
            assert time.monotonic() < deadline, f"ingestion did not finish: {status}"
            time.sleep(0.02)

    def sorted_rows(self, table: str, key: str, pool: str = CONN) -> list[dict[str, Any]]:
        return sorted(self.rows(table, pool), key=lambda r: r[key])


@pytest.fixture
def ingestion(emulator: Any) -> Ingestion:
    return Ingestion(emulator, ADMIN_KEY)


@pytest.fixture
def put(s3: Any) -> Callable[..., Any]:
    """``put(table, name, data, keys="id", age=None)``: PutObject with key metadata (only the lenient
    profile reads it; the documented one takes keys from the configured table, as Celonis does)."""

    def _put(table: str, name: str, data: bytes, keys: str | None = "id", age: str | None = None) -> Any:
        meta = {"primary-keys": keys} if keys else {}
        if age:
            meta["age-column"] = age
        return s3.put_object(Bucket="continuous", Key=f"{KEY_PREFIX}{table}/{name}", Body=data, Metadata=meta)

    return _put


@pytest.fixture
def ingestion_conn(emulator: Any, airflow_conn: Callable[..., str]) -> Callable[..., str]:
    """Register a ``celonis_data_ingestion`` connection to the emulator (env var); returns its id."""

    def make(conn_id: str = "celonis_data_ingestion_default", secret: str = SECRET, **extra: Any) -> str:
        extra.setdefault("connection_id", CONN)
        extra.setdefault("region", "us-east-1")  # the emulator's host has no documented region to derive
        return airflow_conn(
            conn_id, "celonis_data_ingestion", host=emulator.url, login=ACCESS, password=secret, **extra
        )

    make()
    return make


def raw_status(emu: Any) -> requests.Response:
    return requests.get(f"{emu.url}/emulator/api/ingestion/status", timeout=30)
