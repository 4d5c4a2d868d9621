"""``celonis-emulator`` / ``python -m airflow_provider_celonis.emulator``: run the emulator in the foreground."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from .server import EmulatorServer
from .settings import (
    CHUNK_CHECKSUMS,
    DEFAULT_REGION,
    PROFILES,
    ConnectionSpec,
    EmulatorSettings,
    IngestionKeySpec,
    IngestionTableSpec,
    KeySpec,
    OAuthClientSpec,
    parse_size,
)


def parse_args(argv: Sequence[str] | None = None) -> EmulatorSettings:
    p = argparse.ArgumentParser(
        prog="celonis-emulator",
        description="A local Celonis emulator: the Data Push API, the Standard Data Ingestion (S3) API and the "
        "Integration API's data jobs and data model loads.",
    )
    p.add_argument(
        "--profile",
        choices=PROFILES,
        default="documented",
        help="documented: answer only what the Celonis docs promise; lenient: add the old extras",
    )
    p.add_argument(
        "--chunk-checksum",
        choices=CHUNK_CHECKSUMS,
        help="the chunk listing's checksum (default: opaque when documented, md5 when lenient)",
    )
    p.add_argument("--region", default=DEFAULT_REGION, help="the team's S3 region for the ingestion API")
    p.add_argument(
        "--connection",
        action="append",
        default=[],
        metavar="ID[=POOL]",
        help="known data connections (connectionId of jobs; default: any)",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    p.add_argument("--data-dir", type=Path, help="persistent state (default: a fresh temporary folder)")
    p.add_argument("--app-key", action="append", default=[], metavar="KEY[=POOL,...]")
    p.add_argument("--api-key", action="append", default=[], metavar="KEY[=POOL,...]")
    p.add_argument("--oauth-client", action="append", default=[], metavar="ID:SECRET[:SCOPES]")
    p.add_argument("--pool", action="append", default=[], metavar="ID", help="known pools (default: any)")
    p.add_argument("--execute-per-second", type=int, default=10)
    p.add_argument("--execute-per-hour", type=int, default=250, help="executes per quota window")
    p.add_argument("--max-chunk-bytes", type=parse_size, default=parse_size("1GiB"), help="e.g. 1GB, 10MB")
    p.add_argument("--token-ttl", type=float, default=899, help="OAuth token lifetime in seconds")
    p.add_argument("--quota-window-seconds", type=float, default=3600, help="the 'hourly' window")
    p.add_argument("--job-duration", type=float, default=0.0, help="minimum seconds a job stays RUNNING")
    p.add_argument(
        "--ingestion-key",
        action="append",
        default=[],
        metavar="ACCESS:SECRET:CONNECTION_ID[:POOL_ID]",
        help="S3 key of a Standard Data Ingestion data connection (pool defaults to the connection id)",
    )
    p.add_argument(
        "--ingestion-table",
        action="append",
        default=[],
        metavar="CONNECTION_ID:TABLE:PK1,PK2[:AGE_COLUMN]",
        help="primary keys (and age column) of an ingestion table, as configured in the Celonis UI",
    )
    p.add_argument(
        "--ingestion-config",
        type=Path,
        help="JSON file of ingestion tables, their primary keys and child tables (see docs/emulator.md)",
    )
    p.add_argument(
        "--integration-config",
        type=Path,
        help="JSON file of each pool's data jobs (SQL transformations) and data models (see docs/emulator.md)",
    )
    p.add_argument(
        "--integration-duration",
        type=float,
        default=1.0,
        help="minimum seconds a data job execution or data model load stays in progress",
    )
    p.add_argument(
        "--integration-status-lag",
        type=float,
        help="seconds logs/status and a model's current load keep showing the previous one "
        "(default: 1 when documented, 0 when lenient)",
    )
    p.add_argument(
        "--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"]
    )
    a = p.parse_args(argv)
    try:
        return EmulatorSettings(
            host=a.host,
            port=a.port,
            data_dir=a.data_dir,
            app_keys=tuple(KeySpec.parse(k) for k in a.app_key),
            api_keys=tuple(KeySpec.parse(k) for k in a.api_key),
            oauth_clients=tuple(OAuthClientSpec.parse(c) for c in a.oauth_client),
            pools=tuple(a.pool),
            execute_per_second=a.execute_per_second,
            execute_per_hour=a.execute_per_hour,
            max_chunk_bytes=a.max_chunk_bytes,
            token_ttl=a.token_ttl,
            quota_window_seconds=a.quota_window_seconds,
            job_duration=a.job_duration,
            log_level=a.log_level,
            ingestion_keys=tuple(IngestionKeySpec.parse(k) for k in a.ingestion_key),
            ingestion_tables=tuple(IngestionTableSpec.parse(t) for t in a.ingestion_table),
            ingestion_config=a.ingestion_config,
            connections=tuple(ConnectionSpec.parse(c) for c in a.connection),
            profile=a.profile,
            chunk_checksum=a.chunk_checksum,
            region=a.region,
            integration_config=a.integration_config,
            integration_duration=a.integration_duration,
            integration_status_lag=a.integration_status_lag,
        )
    except ValueError as exc:
        p.error(str(exc))
        raise  # unreachable: p.error exits


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    server = EmulatorServer(settings)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    if settings.generated_app_key:
        print(f"Generated application key: {server.app_key}  (use: Authorization: AppKey <key>)", flush=True)
    print(
        f"Celonis emulator listening on {server.url} (profile {settings.profile}, data dir {server.data_dir})",
        flush=True,
    )
    while not stop.wait(0.5):
        if not server.running:
            print("Celonis emulator stopped unexpectedly", file=sys.stderr)
            server.close()
            return 1
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
