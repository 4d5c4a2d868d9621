"""A real Airflow 3 on loopback for the end-to-end tests: PostgreSQL, api-server, scheduler, dag-processor,
triggerer, LocalExecutor or CeleryExecutor (Redis broker, two workers), and Celonis emulators.

Every process runs in its own process group and is killed with it at teardown; every log lands under
``tests/output/e2e/<executor>/``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.local_servers import free_port, postgres_bin_dir

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "tests" / "output"
VENV_BIN = Path(sys.executable).parent
AIRFLOW = str(VENV_BIN / "airflow")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(what: str) -> None:
    """Fail in CI (a missing install must not pass silently), skip on a developer's machine."""
    import pytest

    message = f"{what} not found; run `bash .ci/install-e2e-deps.sh`"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    """Poll ``check`` until it returns something truthy; bounded by ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (requests.RequestException, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f}s (last: {last!r})")


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM the process group; SIGKILL it after ``grace`` seconds."""
        if self.terminate():
            self.finish(grace)

    def terminate(self) -> bool:
        """SIGTERM the process group; False if the process had already ended."""
        if self.popen.poll() is not None:
            return False
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        return True

    def finish(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for the process after ``terminate()``; then SIGKILL its group."""
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)
        # children that outlived their leader (task runners) are in the same group
        with suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)


@dataclass
class Processes:
    log_dir: Path
    procs: list[Proc] = field(default_factory=list)

    def start(self, name: str, args: list[str], env: dict[str, str], cwd: Path | None = None) -> Proc:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        handle = log.open("ab")
        popen = subprocess.Popen(
            args,
            env=env,
            cwd=cwd,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        handle.close()
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def stop_all(self, grace: float = 15.0) -> None:
        """SIGTERM every component at once, then SIGKILL what is still running ``grace`` seconds later
        (one after the other, they took up to 20 s)."""
        stopping = [proc for proc in reversed(self.procs) if proc.terminate()]
        deadline = time.monotonic() + grace
        for proc in stopping:
            proc.finish(max(deadline - time.monotonic(), 0.0))

    def dead(self) -> list[str]:
        return [f"{p.name} (exit {p.popen.returncode})" for p in self.procs if not p.alive()]

    def tails(self, lines: int = 40) -> str:
        out = []
        for proc in self.procs:
            text = proc.log.read_text(errors="replace").splitlines() if proc.log.exists() else []
            out.append(f"===== {proc.name} ({proc.log}) =====\n" + "\n".join(text[-lines:]))
        return "\n".join(out)


# -- PostgreSQL ---------------------------------------------------------------------------------------


@dataclass
class Postgres:
    port: int
    root: Path
    bin_dir: Path
    run_as: str | None

    def url(self, db: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{db}"

    def sql(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", autocommit=True) as conn:
            conn.execute(statement)

    def stop(self) -> None:
        subprocess.run(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            user=self.run_as,
            cwd=self.root,
        )
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def postgres_server(root: Path) -> Iterator[Postgres]:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        missing("PostgreSQL server (initdb, pg_ctl)")
        raise AssertionError("unreachable")
    run_as = "postgres" if os.geteuid() == 0 else None
    root.mkdir(parents=True, exist_ok=True)
    if run_as:
        shutil.chown(root, run_as, run_as)
    port = free_port()
    pg = Postgres(port, root, bin_dir, run_as)

    def run(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, user=run_as, cwd=root)

    run(str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", "postgres", "-A", "trust", "--no-sync")
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -F -c fsync=off -c full_page_writes=off "
        "-c synchronous_commit=off -c max_connections=300"
    )
    run(
        str(bin_dir / "pg_ctl"),
        "-D",
        str(root / "data"),
        "-l",
        str(root / "server.log"),
        "-o",
        options,
        "-w",
        "-t",
        "60",
        "start",
    )
    try:
        yield pg
    finally:
        pg.stop()


# -- Airflow ------------------------------------------------------------------------------------------


def airflow_env(
    home: Path, db_url: str, executor: str, api_port: int, extra: dict[str, str]
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "PATH": f"{VENV_BIN}:{env.get('PATH', '')}",
            "PYTHONPATH": str(REPO),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__CORE__PARALLELISM": "6",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__CORE__FERNET_KEY": "xQ5M0bJ4o5m6tK1pY8Y0qk9hC0N9V1Jx4Z0uJ2uJ1a0=",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": "celonis-e2e-secret-key",
            "AIRFLOW__API_AUTH__JWT_SECRET": "celonis-e2e-jwt-secret-0123456789abcdef",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "600",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "600",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__OPENLINEAGE__DISABLED": "True",
            "AIRFLOW__CELONIS__TRIGGER_REQUESTS_PER_SECOND": "50",
        }
    )
    env.update(extra)
    return env


class AirflowApi:
    """The REST API of the api-server (simple auth manager, all admins: no token needed)."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")
        self.session = requests.Session()

    def get(self, path: str, **params: Any) -> Any:
        r = self.session.get(f"{self.base}/api/v2{path}", params=params, timeout=30)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: Any) -> Any:
        r = self.session.post(f"{self.base}/api/v2{path}", json=body, timeout=60)
        if r.status_code >= 400:
            raise AssertionError(f"POST {path} -> {r.status_code}: {r.text}")
        return r.json() if r.content else None

    def patch(self, path: str, body: Any) -> Any:
        r = self.session.patch(f"{self.base}/api/v2{path}", json=body, timeout=30)
        if r.status_code >= 400:
            raise AssertionError(f"PATCH {path} -> {r.status_code}: {r.text}")
        return r.json()

    def healthy(self) -> bool:
        r = self.session.get(f"{self.base}/api/v2/monitor/health", timeout=5)
        return r.status_code == 200

    def dag_runs(self, *dag_ids: str) -> dict[str, list[dict[str, Any]]]:
        """The runs of each DAG, in one request (the batch endpoint ``POST /dags/~/dagRuns/list``): the
        tests poll this every second, and one request per DAG was half the api-server's CPU."""
        r = self.session.post(
            f"{self.base}/api/v2/dags/~/dagRuns/list",
            json={"dag_ids": list(dag_ids), "page_limit": 100},
            timeout=30,
        )
        r.raise_for_status()
        body = r.json()
        assert body["total_entries"] == len(body["dag_runs"]), body["total_entries"]  # all on one page
        runs: dict[str, list[dict[str, Any]]] = {dag_id: [] for dag_id in dag_ids}
        for run in body["dag_runs"]:
            runs[run["dag_id"]].append(run)
        return runs

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return list(self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)["task_instances"])


def emulator_args(port: int, data_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "airflow_provider_celonis.emulator",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--log-level",
        "warning",
        *extra,
    ]


def conn_json(url: str, key: str, pool: str) -> str:
    return json.dumps({"conn_type": "celonis", "host": url, "password": key, "extra": {"data_pool_id": pool}})
