"""End to end: a push survives its worker being killed, and its triggerer being restarted (issue 6.4).

The real-process versions of ``tests/reliability/test_scenarios.py``: one Airflow 3 stack (LocalExecutor,
PostgreSQL, api-server, scheduler, dag-processor, triggerer) and one Celonis emulator per scenario.

1. **Worker killed mid-upload**: chunk uploads are slowed by an emulator ``delay`` fault; once the job is
   NEW with a chunk, the task's processes are SIGKILLed. The scheduler notices the missing heartbeat and
   retries; the retry deletes the NEW job and pushes anew.
2. **Worker killed while waiting (sync)**: the job runs 40 s (``--job-duration``); the task's processes are
   SIGKILLed once the job is QUEUED/RUNNING. The retry waits for that job instead of pushing again.
3. **Triggerer restarted while a job runs**: once the deferred push's trigger runs in the triggerer (its
   trigger log says so, and it has polled the job), the triggerer gets SIGTERM (SIGKILL after a grace
   period) and a new triggerer is started; the trigger resumes there, nothing is cancelled.

What is killed in 1 and 2, and why: with the LocalExecutor a task runs in two processes. The executor's
worker process (``airflow worker -- LocalExecutor: ...``, a child of the scheduler) is the *supervisor*: it
heartbeats the task instance to the api-server and reports its end. It forks the *task runner*
(``airflow worker -- <task instance id>``), which runs ``execute()`` in a process group of its own. A
worker dying means both go at once: SIGKILL the supervisor first (so it cannot report the runner's death as
a failure: the scheduler has to find the task by its missing heartbeat), then the runner's process group.

The heartbeat settings are low for this stack (timeout 12 s, checked every second, heartbeats every second)
so the scheduler finds the dead task within seconds. Component logs and Airflow's task logs are kept under
``tests/output/e2e/kill-and-restart/``; on a failure the tails of every component log are printed.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from tests.e2e.stack import (
    AIRFLOW,
    OUTPUT,
    AirflowApi,
    Proc,
    Processes,
    airflow_env,
    conn_json,
    emulator_args,
    postgres_server,
    wait_for,
)
from tests.local_servers import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

KEY = "e2e-app-key-0123456789"
DATA_POOL = "pool-1"
UPLOAD_ROWS = 20_000  # ~1.5 MB of parquet with incompressible labels: many 64 KiB chunks
SMALL_ROWS = 300
# the create-job route, under either API base path the emulator serves
CREATE_JOB = r"POST /[a-z-]+/api/v1/data-push/\{pool_id\}/jobs/?"
# a status poll of the provider (the test's own look-ups use the other base path, /integration)
TRIGGER_POLL = r"GET /data-ingestion/api/v1/data-push/\{pool_id\}/jobs/.*"
RUN_TIMEOUT = 180.0
# scenario -> (DAG id = table = connection id, emulator options)
SCENARIOS: dict[str, tuple[str, ...]] = {
    "kill_upload": ("--job-duration", "1"),
    "kill_wait": ("--job-duration", "40"),
    "triggerer_restart": ("--job-duration", "30"),
    "cleared": (),
}

DAGS = """
import datetime
from pathlib import Path

from airflow.sdk import DAG

from airflow_provider_celonis.operators.data_push import DataPushOperator

DATA = Path(__file__).parent / "data"


def push_dag(name, rows_file, **kwargs):
    with DAG(name, schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as dag:
        DataPushOperator(
            task_id="push",
            source=str(DATA / rows_file),
            target_table=name,
            keys=["id"],
            celonis_conn_id=name,
            poll_interval=1,
            retries=1,
            retry_delay=datetime.timedelta(seconds=1),
            **kwargs,
        )
    return dag


push_dag("kill_upload", "upload.csv", chunk_size_bytes=64 * 1024)
push_dag("kill_wait", "small.csv")
push_dag("triggerer_restart", "small.csv", deferrable=True)
push_dag("cleared", "cleared.csv")
"""


def _row(i: int) -> dict[str, Any]:
    return {"id": i, "label": hashlib.sha256(str(i).encode()).hexdigest(), "amount": i * 0.25}


def _write_rows(path: Path, count: int) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "label", "amount"])
        writer.writeheader()
        writer.writerows(_row(i) for i in range(count))


@dataclass
class Emulator:
    url: str

    def _get(self, path: str) -> Any:
        r = requests.get(f"{self.url}{path}", headers={"Authorization": f"AppKey {KEY}"}, timeout=30)
        r.raise_for_status()
        return r.json()

    def healthy(self) -> bool:
        return requests.get(f"{self.url}/emulator/health", timeout=5).ok

    def jobs(self) -> list[dict[str, Any]]:
        return list(self._get(f"/integration/api/v1/data-push/{DATA_POOL}/jobs/"))

    def job_status(self, job_id: str) -> str | None:
        r = requests.get(
            f"{self.url}/integration/api/v1/data-push/{DATA_POOL}/jobs/{job_id}",
            headers={"Authorization": f"AppKey {KEY}"},
            timeout=30,
        )
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return str(r.json()["status"])

    def chunks(self, job_id: str) -> list[dict[str, Any]]:
        return list(self._get(f"/integration/api/v1/data-push/{DATA_POOL}/jobs/{job_id}/chunks"))

    def rows(self, table: str) -> list[dict[str, Any]]:
        rows = self._get(f"/emulator/api/pools/{DATA_POOL}/tables/{table}.json")
        return sorted(rows, key=lambda r: int(r["id"]))

    def stats(self) -> dict[str, Any]:
        return dict(self._get("/emulator/api/stats"))

    def requests_matching(self, pattern: str) -> int:
        """How many requests the emulator served whose ``"<METHOD> <route template>"`` matches ``pattern``."""
        return sum(n for route, n in self.stats()["requests"].items() if re.fullmatch(pattern, route))

    def faults(self, method: str, body: dict[str, Any] | None = None) -> None:
        r = requests.request(
            method,
            f"{self.url}/emulator/api/faults",
            json=body,
            headers={"Authorization": f"AppKey {KEY}"},
            timeout=30,
        )
        r.raise_for_status()


@dataclass
class Stack:
    home: Path
    out: Path
    api: AirflowApi
    procs: Processes
    env: dict[str, str]
    emulators: dict[str, Emulator]

    def proc(self, name: str) -> Proc:
        return next(p for p in self.procs.procs if p.name == name)

    def check_alive(self) -> None:
        dead = [d for d in self.procs.dead() if not d.startswith("triggerer ")]
        assert not dead, f"components died: {dead}"

    def trigger(self, dag_id: str) -> str:
        wait_for(f"DAG {dag_id} to be parsed", lambda: self.api.get(f"/dags/{dag_id}"), 120, 1)
        self.api.patch(f"/dags/{dag_id}", {"is_paused": False})
        return str(self.api.post(f"/dags/{dag_id}/dagRuns", {"logical_date": None})["dag_run_id"])

    def task(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.api.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/push"))

    def finished(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """Wait for the run to end; return its task instance."""

        def done() -> dict[str, Any] | None:
            self.check_alive()
            run = self.api.get(f"/dags/{dag_id}/dagRuns/{run_id}")
            return run if run["state"] in ("success", "failed") else None

        wait_for(f"{dag_id} to finish", done, RUN_TIMEOUT, 0.5)
        return self.task(dag_id, run_id)

    def task_log(self, dag_id: str, attempt: int) -> str:
        logs = list(
            (self.home / "logs" / f"dag_id={dag_id}").glob(f"run_id=*/task_id=push/attempt={attempt}.log")
        )
        assert len(logs) == 1, logs
        return logs[0].read_text(errors="replace")


def _descendants(procs: Processes) -> list[psutil.Process]:
    """Every live process under the components, task runners (own process groups) included."""
    found: list[psutil.Process] = []
    for proc in procs.procs:
        if proc.alive():
            with suppress(psutil.NoSuchProcess):
                found += psutil.Process(proc.popen.pid).children(recursive=True)
    return found


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    started = time.monotonic()
    out = OUTPUT / "e2e" / "kill-and-restart"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    home = Path(tempfile.mkdtemp(prefix="celonis-e2e-kill-"))
    dags = home / "dags"
    (dags / "data").mkdir(parents=True)
    (dags / "kill_and_restart.py").write_text(textwrap.dedent(DAGS))
    (dags / ".airflowignore").write_text("data/\n")
    _write_rows(dags / "data" / "upload.csv", UPLOAD_ROWS)
    _write_rows(dags / "data" / "small.csv", SMALL_ROWS)
    _write_rows(dags / "data" / "cleared.csv", SMALL_ROWS)
    procs = Processes(out)
    leftovers: list[psutil.Process] = []
    with postgres_server(Path(tempfile.mkdtemp(prefix="celonis-e2e-kill-pg-"))) as pg:
        try:
            pg.sql("CREATE DATABASE airflow")
            api_port = free_port()
            emulators = {name: Emulator(f"http://127.0.0.1:{free_port()}") for name in SCENARIOS}
            extra = {
                f"AIRFLOW_CONN_{name.upper()}": conn_json(emu.url, KEY, DATA_POOL)
                for name, emu in emulators.items()
            }
            extra.update(
                {
                    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                    # find a dead task within seconds: heartbeat every second, 12 s without one is death
                    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "12",
                    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "1",
                    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_SEC": "1",
                    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
                    # a triggerer that had to be SIGKILLed gives its triggers up after 10 s, not 30
                    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
                }
            )
            env = airflow_env(home, pg.url("airflow"), "LocalExecutor", api_port, extra)
            log = out / "db-migrate.log"
            with log.open("wb") as handle:
                done = subprocess.run(
                    [AIRFLOW, "db", "migrate"], env=env, stdout=handle, stderr=subprocess.STDOUT, timeout=300
                )
            assert done.returncode == 0, log.read_text()[-4000:]
            for name, emu in emulators.items():
                port = emu.url.rsplit(":", 1)[1]
                args = emulator_args(int(port), home / f"emu-{name}", "--app-key", KEY, *SCENARIOS[name])
                procs.start(f"emulator-{name}", args, env)
            procs.start("api-server", [AIRFLOW, "api-server", "--port", str(api_port)], env)
            procs.start("dag-processor", [AIRFLOW, "dag-processor"], env)
            procs.start("scheduler", [AIRFLOW, "scheduler"], env)
            procs.start("triggerer", [AIRFLOW, "triggerer"], env)
            api = AirflowApi(f"http://127.0.0.1:{api_port}")
            for emu in emulators.values():
                wait_for(f"emulator {emu.url}", emu.healthy, 60)
            wait_for("the api-server", api.healthy, 180)
            print(f"[e2e kill-and-restart] stack up in {time.monotonic() - started:.0f}s", file=sys.stderr)
            yield Stack(home, out, api, procs, env, emulators)
        except BaseException:
            print(procs.tails(60), file=sys.stderr)
            raise
        finally:
            leftovers = _descendants(procs)
            procs.stop_all()
            for child in leftovers:  # task runners live in process groups of their own
                with suppress(psutil.NoSuchProcess):
                    child.kill()  # psutil checks the process is still the one found (no pid reuse)
            if (home / "logs").exists():
                shutil.copytree(home / "logs", out / "airflow-logs", dirs_exist_ok=True)
            shutil.rmtree(home, ignore_errors=True)
            print(f"[e2e kill-and-restart] module took {time.monotonic() - started:.0f}s", file=sys.stderr)


@pytest.fixture
def tails_on_failure(stack: Stack, request: pytest.FixtureRequest) -> Iterator[None]:
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed > failed_before:
        print(stack.procs.tails(60), file=sys.stderr)


def _kill_task(stack: Stack, dag_id: str, run_id: str) -> tuple[int, int]:
    """SIGKILL the running task's supervisor (the LocalExecutor worker) and its task runner's process group."""
    ti = stack.task(dag_id, run_id)
    assert ti["state"] == "running", ti
    runners = [
        p
        for p in psutil.process_iter(["cmdline"])
        if p.info["cmdline"] and f"airflow worker -- {ti['id']}" in " ".join(p.info["cmdline"])
    ]
    assert len(runners) == 1, f"no single task runner for {ti['id']}: {runners}"
    runner = runners[0]
    supervisor = runner.parent()
    assert supervisor is not None
    assert "LocalExecutor" in " ".join(supervisor.cmdline()), supervisor.cmdline()
    scheduler_pid = stack.proc("scheduler").popen.pid
    assert scheduler_pid in [p.pid for p in supervisor.parents()], "the supervisor is not the scheduler's"
    os.kill(supervisor.pid, signal.SIGKILL)
    if os.getpgid(runner.pid) == runner.pid:  # its own group (never the scheduler's)
        os.killpg(runner.pid, signal.SIGKILL)
    else:
        os.kill(runner.pid, signal.SIGKILL)
    psutil.wait_procs([supervisor, runner], timeout=10)
    assert not runner.is_running()
    assert not supervisor.is_running()
    return supervisor.pid, runner.pid


def _trigger_logs(stack: Stack, dag_id: str) -> list[Path]:
    return sorted(
        (stack.home / "logs" / f"dag_id={dag_id}").glob("run_id=*/task_id=push/attempt=*.log.trigger.*.log")
    )


def _assert_one_done_job(emu: Emulator, table: str) -> dict[str, Any]:
    jobs = emu.jobs()
    assert [(j["targetName"], j["status"]) for j in jobs] == [(table, "DONE")], jobs
    stats = emu.stats()
    assert stats["open_jobs"] == 0, stats
    assert stats["jobs_by_status"]["NEW"] == 0, stats
    return jobs[0]


@pytest.mark.usefixtures("tails_on_failure")
def test_worker_killed_mid_upload_is_retried(
    stack: Stack,
) -> None:
    dag_id = "kill_upload"
    emu = stack.emulators[dag_id]
    emu.faults(
        "POST",
        {
            "method": "POST",
            "path": "/chunks/upserted$",
            "count": 1000,
            "action": "delay",
            "delay_seconds": 1.5,
        },
    )
    run_id = stack.trigger(dag_id)

    def new_job_with_a_chunk() -> dict[str, Any] | None:
        stack.check_alive()
        new = [j for j in emu.jobs() if j["status"] == "NEW"]
        return new[0] if new and emu.chunks(new[0]["id"]) else None

    killed_job = wait_for("a NEW job with a chunk", new_job_with_a_chunk, 120, 0.2)
    supervisor, runner = _kill_task(stack, dag_id, run_id)
    print(f"[e2e] killed supervisor {supervisor} and task runner {runner} mid-upload", file=sys.stderr)
    uploaded = len(emu.chunks(killed_job["id"]))
    assert emu.job_status(killed_job["id"]) == "NEW"
    emu.faults("DELETE")  # the retry uploads at full speed

    ti = stack.finished(dag_id, run_id)
    assert (ti["state"], ti["try_number"]) == ("success", 2), ti
    retry_log = stack.task_log(dag_id, 2)
    assert "was never executed; deleting it and pushing anew" in retry_log, retry_log[-3000:]
    assert killed_job["id"] in retry_log
    assert "Celonis push DONE" in retry_log
    assert emu.job_status(killed_job["id"]) is None  # deleted, not left behind
    job = _assert_one_done_job(emu, dag_id)
    chunks = len(emu.chunks(job["id"]))
    assert chunks > uploaded, (chunks, uploaded)  # the kill did come mid-upload
    assert emu.rows(dag_id) == [_row(i) for i in range(UPLOAD_ROWS)]


@pytest.mark.usefixtures("tails_on_failure")
def test_worker_killed_while_waiting_is_retried(
    stack: Stack,
) -> None:
    dag_id = "kill_wait"
    emu = stack.emulators[dag_id]
    run_id = stack.trigger(dag_id)

    def submitted_job() -> dict[str, Any] | None:
        stack.check_alive()
        return next((j for j in emu.jobs() if j["status"] in ("QUEUED", "RUNNING")), None)

    job = wait_for("a QUEUED or RUNNING job", submitted_job, 120, 0.2)
    supervisor, runner = _kill_task(stack, dag_id, run_id)
    print(f"[e2e] killed supervisor {supervisor} and task runner {runner} while waiting", file=sys.stderr)

    ti = stack.finished(dag_id, run_id)
    assert (ti["state"], ti["try_number"]) == ("success", 2), ti
    retry_log = stack.task_log(dag_id, 2)
    assert "waiting for it instead of pushing again" in retry_log, retry_log[-3000:]
    assert job["id"] in retry_log
    assert "Celonis push DONE" in retry_log
    assert _assert_one_done_job(emu, dag_id)["id"] == job["id"]
    assert emu.requests_matching(CREATE_JOB) == 1, emu.stats()
    assert emu.requests_matching(r"POST .*/chunks/upserted") == len(emu.chunks(job["id"]))
    assert emu.rows(dag_id) == [_row(i) for i in range(SMALL_ROWS)]


@pytest.mark.usefixtures("tails_on_failure")
def test_triggerer_restarted_while_job_runs(
    stack: Stack,
) -> None:
    dag_id = "triggerer_restart"
    emu = stack.emulators[dag_id]
    run_id = stack.trigger(dag_id)

    def deferred() -> bool:
        stack.check_alive()
        return bool(stack.task(dag_id, run_id)["state"] == "deferred")

    wait_for("the push to be deferred", deferred, 120, 0.3)

    def polling_trigger_log() -> Path | None:
        # the triggerer writes each trigger's log next to its task's log: <task log>.trigger.<triggerer>.log
        stack.check_alive()
        found = [p for p in _trigger_logs(stack, dag_id) if "starting" in p.read_text(errors="replace")]
        return found[0] if found else None

    first_log = wait_for("the triggerer to run the trigger", polling_trigger_log, 60, 0.3)
    polls = emu.requests_matching(TRIGGER_POLL)
    wait_for("the trigger to poll the job", lambda: emu.requests_matching(TRIGGER_POLL) > polls, 30, 0.3)
    old = stack.proc("triggerer")
    old.stop(grace=20)  # SIGTERM, SIGKILL after 20 s
    print(f"[e2e] triggerer stopped (exit {old.popen.returncode})", file=sys.stderr)
    [job] = emu.jobs()
    assert job["status"] in ("QUEUED", "RUNNING"), job  # the restart does come while the job runs
    assert stack.task(dag_id, run_id)["state"] == "deferred"
    stack.procs.start(
        "triggerer-2",
        [AIRFLOW, "triggerer"],
        {**stack.env, "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port())},
    )

    ti = stack.finished(dag_id, run_id)
    assert ti["state"] == "success", ti
    log = stack.task_log(dag_id, ti["try_number"])
    assert f"Celonis push DONE: job {job['id']}" in log, log[-3000:]
    assert _assert_one_done_job(emu, dag_id)["id"] == job["id"]
    assert emu.requests_matching(r"POST .*/cancel") == 0, emu.stats()
    assert emu.requests_matching(CREATE_JOB) == 1, emu.stats()
    assert emu.rows(dag_id) == [_row(i) for i in range(SMALL_ROWS)]
    # the trigger ran in both triggerers; the second one fired it
    [second_log] = [p for p in _trigger_logs(stack, dag_id) if p != first_log]
    assert "Trigger fired event" not in first_log.read_text(errors="replace")
    assert "Trigger fired event" in second_log.read_text(errors="replace")
    assert "'job_status': 'DONE'" in second_log.read_text(errors="replace")


@pytest.mark.usefixtures("tails_on_failure")
def test_a_task_cleared_after_success_pushes_anew(stack: Stack) -> None:
    """The job id a try keeps for its retries outlives its success (``[state_store] clear_on_success`` is
    off by default): the cleared task must push the file as it is now, not take the earlier job as done."""
    dag_id = "cleared"
    emu = stack.emulators[dag_id]
    run_id = stack.trigger(dag_id)
    ti = stack.finished(dag_id, run_id)
    assert (ti["state"], ti["try_number"]) == ("success", 1), ti
    assert len(emu.rows(dag_id)) == SMALL_ROWS
    _write_rows(stack.home / "dags" / "data" / "cleared.csv", SMALL_ROWS + 50)
    stack.api.post(
        f"/dags/{dag_id}/clearTaskInstances",
        {"dry_run": False, "dag_run_id": run_id, "task_ids": ["push"], "only_failed": False},
    )
    wait_for("the cleared task to run", lambda: stack.task(dag_id, run_id)["try_number"] == 2, 60, 0.5)
    ti = stack.finished(dag_id, run_id)
    assert (ti["state"], ti["try_number"]) == ("success", 2), ti
    log = stack.task_log(dag_id, 2)
    assert "the task was cleared: pushing anew" in log, log[-3000:]
    assert [j["status"] for j in emu.jobs()] == ["DONE", "DONE"]
    assert emu.rows(dag_id) == [_row(i) for i in range(SMALL_ROWS + 50)]
