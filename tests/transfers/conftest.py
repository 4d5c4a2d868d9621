"""A real PostgreSQL server for the transfer tests: a throwaway cluster on a free port, started once.

The server binaries come from the OS package (``.ci/install-postgres.sh`` installs it in CI). Without
them the PostgreSQL tests fail in CI (``CI=true``), so a missing install never passes silently, and are
skipped on a developer's machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.local_servers import free_port, postgres_bin_dir


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    dbname: str

    def connect(self) -> Any:
        import psycopg

        return psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname=self.dbname, autocommit=True
        )

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall()) if cur.description else []

    def other_backends(self) -> int:
        """Client connections to our database other than the one asking (leaked connections show here)."""
        rows = self.execute(
            f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{self.dbname}' AND pid <> pg_backend_pid()"
        )
        return int(rows[0][0])

    def conn_fields(self) -> dict[str, Any]:
        """An Airflow ``postgres`` connection to this server, as keywords of the ``airflow_conn`` fixture."""
        return {
            "conn_type": "postgres",
            "host": self.host,
            "port": self.port,
            "login": self.user,
            "schema": self.dbname,
        }


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        message = "PostgreSQL server binaries (initdb, pg_ctl) not found; run .ci/install-postgres.sh"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    # initdb refuses to run as root: run the server as the OS package's `postgres` user then.
    run_as = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="celonis-pg-"))
    if run_as:
        shutil.chown(root, run_as, run_as)
    data, log = root / "data", root / "server.log"
    port = free_port()

    def run(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, user=run_as, cwd=root)

    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -F -c fsync=off -c full_page_writes=off"
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
    try:
        yield PostgresServer("127.0.0.1", port, "postgres", "postgres")
    finally:
        subprocess.run(
            [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            user=run_as,
            cwd=root,
        )
        shutil.rmtree(root, ignore_errors=True)
