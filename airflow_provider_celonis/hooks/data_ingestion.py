"""``CelonisDataIngestionHook``: the Standard Data Ingestion API, which is S3-compatible, through boto3.

Celonis' endpoint is ``<team URL>/api/data-ingestion``, path-style, bucket ``continuous``, object keys
``connection/<connectionId>/<table>/<file>.parquet``; the SigV4 region "depends on where the team is
based" (the extra ``region``; derived only for clusters whose region Celonis documents); the credentials
are the S3 access key and secret created with the data connection. boto3 is an optional dependency
(``airflow-provider-celonis[ingestion]``) and is imported only when a client is needed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from airflow_provider_celonis.hooks.connection import (
    DEFAULT_TIMEOUT,
    _base_url,
    _extras,
    _retries,
    _timeout,
    _verify,
)
from airflow_provider_celonis.hooks.errors import CelonisApiError, CelonisAuthError, CelonisConfigError

DEFAULT_ENDPOINT_PATH = "/api/data-ingestion"
DEFAULT_BUCKET = "continuous"
#: Team clusters whose S3 region Celonis documents (standard-data-ingestion-api.txt: "In my case, US one.
#: So the default region is US east one"). Any other cluster needs the extra ``region``.
CLUSTER_REGIONS = {"us-1": "us-east-1"}
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
#: boto3 switches to multipart above this size; parts are this large (S3's minimum is 5 MiB).
MULTIPART_THRESHOLD = 64 * 1024 * 1024
MULTIPART_CHUNK = 16 * 1024 * 1024
#: Parts sent at once: one TCP stream rarely fills a long-distance link (benchmarks/push_over_link.py).
MULTIPART_CONCURRENCY = 4
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
FILE_RE = re.compile(r"^[A-Za-z0-9_.=-]{1,200}$")
AUTH_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken", "RequestTimeTooSkewed"}
)


def _boto3() -> Any:
    try:
        import boto3
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise CelonisConfigError(
            "The Standard Data Ingestion API needs boto3: pip install 'airflow-provider-celonis[ingestion]'"
        ) from exc
    return boto3


@dataclass(frozen=True)
class IngestionConnectionConfig:
    """A ``celonis_data_ingestion`` connection, checked; the secret is never part of ``repr``."""

    endpoint_url: str
    access_key: str
    secret_key: str = field(repr=False)
    connection_id: str = ""
    bucket: str = DEFAULT_BUCKET
    region: str = CLUSTER_REGIONS["us-1"]
    verify: bool | str = True
    timeout: float = DEFAULT_TIMEOUT
    retries: int = 5

    @classmethod
    def from_connection(cls, conn: Any) -> IngestionConnectionConfig:
        extras = _extras(conn)
        conn_id = getattr(conn, "conn_id", None) or "celonis_data_ingestion"
        host = (conn.host or "").strip()
        endpoint_path = str(extras.get("endpoint_path") or "").strip()
        parts = urlsplit(host if "://" in host else f"//{host}")
        if parts.path not in ("", "/"):  # the full endpoint URL pasted as host: split the path off
            endpoint_path = endpoint_path or parts.path
            host = f"{parts.scheme}://{parts.netloc}" if parts.scheme else parts.netloc
        base = _base_url(host, getattr(conn, "port", None), conn_id, allow_insecure_http=False)
        if not conn.login or not conn.password:
            raise CelonisConfigError(
                f"Connection '{conn_id}': login (access key) and password (secret key) must both be set; "
                "create them with the data connection in Celonis"
            )
        connection_id = str(extras.get("connection_id") or "").strip()
        if not connection_id or "/" in connection_id:
            raise CelonisConfigError(
                f"Connection '{conn_id}': the extra 'connection_id' must be the Celonis data connection id "
                "(from the data connection's URL)"
            )
        path = "/" + (endpoint_path or DEFAULT_ENDPOINT_PATH).strip().strip("/")
        return cls(
            endpoint_url=f"{base}{path}",
            access_key=conn.login,
            secret_key=conn.password,
            connection_id=connection_id,
            bucket=str(extras.get("bucket") or DEFAULT_BUCKET),
            region=_region(extras.get("region"), base, conn_id),
            verify=_verify(extras.get("verify", True)),
            timeout=_timeout(extras.get("timeout"), conn_id),
            retries=_retries(extras.get("retries"), conn_id),
        )


def _cluster(base_url: str) -> str | None:
    """``eu-1`` of ``https://team.eu-1.celonis.cloud``; None for any other host."""
    host = (urlsplit(base_url).hostname or "").lower()
    labels = host.split(".")
    if len(labels) == 4 and host.endswith(".celonis.cloud"):
        return labels[1]
    return None


def _region(value: Any, base_url: str, conn_id: str) -> str:
    """The extra ``region``, else the documented region of the team's cluster, else a clear error."""
    region = str(value or "").strip().lower()
    if region:
        if not REGION_RE.match(region):
            raise CelonisConfigError(
                f"Connection '{conn_id}': extra 'region' {value!r} is not an AWS-style region (e.g. us-east-1)"
            )
        return region
    cluster = _cluster(base_url)
    if cluster in CLUSTER_REGIONS:
        return CLUSTER_REGIONS[cluster]
    where = f"cluster {cluster!r}" if cluster else f"host {urlsplit(base_url).hostname!r}"
    raise CelonisConfigError(
        f"Connection '{conn_id}': set the extra 'region' (the S3 signing region of your Celonis team). "
        f"Celonis documents it only for the US-1 cluster (us-east-1), so it cannot be derived for {where}"
    )


def check_table_name(table: str) -> str:
    if not isinstance(table, str) or not NAME_RE.match(table):
        raise CelonisConfigError(
            f"target_table {table!r} must be 1-128 letters, digits, '_' or '-' (it is part of the object key)"
        )
    return table


class CelonisDataIngestionHook(BaseHook):
    """Uploads parquet files to a Celonis data connection through the S3-compatible ingestion API.

    A successful upload only means Celonis has the file: ingestion happens afterwards and its failures
    show on the data connection's monitoring page, not here.

    :param celonis_data_ingestion_conn_id: the ``celonis_data_ingestion`` connection.
    """

    conn_name_attr = "celonis_data_ingestion_conn_id"
    default_conn_name = "celonis_data_ingestion_default"
    conn_type = "celonis_data_ingestion"
    hook_name = "Celonis Data Ingestion"

    def __init__(self, celonis_data_ingestion_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.celonis_data_ingestion_conn_id = celonis_data_ingestion_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Labels for the classic connection form (the declarative one lives in get_provider_info)."""
        from airflow_provider_celonis.get_provider_info import INGESTION_UI_FIELD_BEHAVIOUR

        return INGESTION_UI_FIELD_BEHAVIOUR

    @cached_property
    def config(self) -> IngestionConnectionConfig:
        conn = self.get_connection(self.celonis_data_ingestion_conn_id)
        if conn.password:
            from airflow.sdk.log import mask_secret

            mask_secret(conn.password)
        return IngestionConnectionConfig.from_connection(conn)

    def get_conn(self) -> Any:
        return self.client

    @cached_property
    def client(self) -> Any:
        """A boto3 S3 client with path-style addressing and SigV4, as the ingestion API expects."""
        from botocore.config import Config

        cfg = self.config
        return (
            _boto3()
            .session.Session()
            .client(
                "s3",
                endpoint_url=cfg.endpoint_url,
                aws_access_key_id=cfg.access_key,
                aws_secret_access_key=cfg.secret_key,
                region_name=cfg.region,
                verify=cfg.verify,
                config=Config(
                    s3={"addressing_style": "path"},
                    signature_version="s3v4",
                    connect_timeout=10,
                    read_timeout=cfg.timeout,
                    retries={"max_attempts": cfg.retries + 1, "mode": "standard"},
                    user_agent_extra="airflow-provider-celonis",
                ),
            )
        )

    def object_key(self, table: str, file_name: str) -> str:
        """``connection/<connectionId>/<table>/<file>``: where Celonis picks a table's files up."""
        if not FILE_RE.match(file_name):
            raise CelonisConfigError(f"file name {file_name!r} must be letters, digits, '_', '-', '.', '='")
        return f"connection/{self.config.connection_id}/{check_table_name(table)}/{file_name}"

    def upload_file(
        self,
        path: str | Path,
        table: str,
        file_name: str | None = None,
        metadata: Mapping[str, str] | None = None,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        multipart_chunksize: int = MULTIPART_CHUNK,
        max_concurrency: int = MULTIPART_CONCURRENCY,
    ) -> str:
        """Upload one file (multipart above ``multipart_threshold``); returns the object key."""
        from boto3.s3.transfer import TransferConfig

        key = self.object_key(table, file_name or Path(path).name)
        transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=max(multipart_chunksize, 5 * 1024 * 1024),
            max_concurrency=max(1, max_concurrency),
        )
        extra = {"Metadata": dict(metadata)} if metadata else None
        self._call(
            f"upload {key}",
            lambda: self.client.upload_file(
                str(path), self.config.bucket, key, ExtraArgs=extra, Config=transfer
            ),
        )
        return key

    def list_keys(self, table: str | None = None) -> list[str]:
        """Object keys of the data connection (of one table when given)."""
        prefix = f"connection/{self.config.connection_id}/" + (f"{check_table_name(table)}/" if table else "")
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.config.bucket, Prefix=prefix
        )
        keys: list[str] = self._call(
            f"list {prefix}", lambda: [o["Key"] for page in pages for o in page.get("Contents", [])]
        )
        return keys

    def delete_object(self, key: str) -> None:
        self._call(f"delete {key}", lambda: self.client.delete_object(Bucket=self.config.bucket, Key=key))

    def test_connection(self) -> tuple[bool, str]:
        """HeadBucket, then a listing of the connection's prefix: proves endpoint, key and connection id."""
        try:
            self._call("head bucket", lambda: self.client.head_bucket(Bucket=self.config.bucket))
            count = len(self.list_keys())
        except Exception as exc:  # noqa: BLE001 - test_connection reports every failure as its message
            return False, str(exc)
        return True, f"Connected to {self.config.endpoint_url}; {count} object(s) under the data connection"

    def _call(self, what: str, action: Callable[[], Any]) -> Any:
        """Run a boto3 call; S3 errors become Celonis errors naming the call, status and S3 code.

        ``upload_file`` wraps the S3 error in its own exception, so the cause chain is searched too; the
        error raised carries no chain (one clear message, not three tracebacks).
        """
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return action()
        except Exception as exc:
            found = next(
                (e for e in (exc, exc.__cause__, exc.__context__) if isinstance(e, ClientError)), None
            )
            if found is not None:
                error = found.response.get("Error", {})
                code = str(error.get("Code", ""))
                status = found.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                cls = CelonisAuthError if code in AUTH_CODES or status in (401, 403) else CelonisApiError
                # The S3 code and message say it all: boto3's two wrapped tracebacks would only bury them.
                raise cls(f"data ingestion {what}", status, f"{code}: {error.get('Message')}") from None
            if isinstance(exc, BotoCoreError) or type(exc).__module__.startswith(("boto3", "s3transfer")):
                raise CelonisApiError(f"data ingestion {what}", None, str(exc)) from None
            raise
