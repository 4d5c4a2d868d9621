"""A small push end to end: ``DataPushOperator`` inside a real task (``dag.test()``) against ten lines of
``requests``, both against the same emulator, and where the difference goes.

* ``plain``: a script with ``requests`` and pandas: read the CSV, write it as parquet in memory, create the job,
  upload the chunk, execute, poll as pycelonis does (0.1, 0.3, 0.9, then every 2 s) until DONE;
* ``task``: a DAG file with a no-op ``warm_up`` task, then one ``DataPushOperator`` (defaults, but
  ``job_type="REPLACE"``), run with ``dag.test()`` on a migrated SQLite DB in a temporary ``AIRFLOW_HOME``, in a
  fresh process. The process' first task instance builds ``dag.test()``'s in-process execution API (seconds,
  for any operator: ``warm_up_task_instance_s``); the push runs second, as it would on a running deployment.

Each runs ``--repeat`` times in a fresh process (the median is reported). For each: the process' wall time
from the interpreter's start (``process_s``), the imports (``import_s``), the push itself (``push_s``: from
before the first request to DONE). For the task: the push's task instance, start to end as Airflow records
it (``task_instance_s``, the duration its UI shows), against the script's push (``task_instance_vs_plain_push``)
and against its imports and push (``task_instance_vs_plain_script``); what the task instance spends before
the first request, pushing, and after DONE (``task_instance_phases_s``); ``dag.test()`` as a whole
(``dag_test_s``) and its phases from the hook's calls: before the first request (the run, the warm-up, the
push's task instance up to the operator), ``connection`` (the first call, ``list_jobs`` of ``check_access``, beside the first look),
``convert`` (CSV to the first chunk), ``create`` (the job), ``upload``, ``execute``, ``wait`` (polling until
DONE) and after (XCom, the run's end). The last line is one JSON object.

    python benchmarks/small_push.py --rows 1000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import APP_KEY, OUT, POOL, EmulatorProcess  # noqa: E402 - after the clock starts

#: pycelonis' poll delays (celonis-api-facts.md), then every 2 s.
PLAIN_POLLS = (0.1, 0.3, 0.9)


def interpreter_start() -> float:
    """Seconds from this process' creation to now (its interpreter's start-up included), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    with open("/proc/self/stat") as handle:
        start_ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as handle:
        uptime = float(handle.read().split()[0])
    return uptime - start_ticks / ticks


def write_csv(path: Path, rows: int) -> Path:
    lines = ["id,name,amount,created_at"]
    lines += [f"{n},name {n},{n * 1.25},2024-01-{n % 28 + 1:02d} 10:00:00" for n in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


# -- the plain script --------------------------------------------------------------------------------


def run_plain(csv: Path, url: str) -> dict[str, Any]:
    before_imports = time.perf_counter()
    import io

    import pandas as pd
    import requests

    imported = time.perf_counter()
    session = requests.Session()
    session.headers["Authorization"] = f"AppKey {APP_KEY}"
    jobs = f"{url}/data-ingestion/api/v1/data-push/{POOL}/jobs/"
    buffer = io.BytesIO()
    pd.read_csv(csv).to_parquet(buffer, index=False)
    job = session.post(jobs, json={"targetName": "plain", "type": "REPLACE", "fileType": "PARQUET"})
    job.raise_for_status()
    job_id = job.json()["id"]
    session.post(f"{jobs}{job_id}/chunks/upserted", files={"file": ("c.parquet", buffer.getvalue())})
    session.post(f"{jobs}{job_id}").raise_for_status()
    polls = list(PLAIN_POLLS)
    while session.get(f"{jobs}{job_id}").json()["status"] not in ("DONE", "ERROR", "CANCELED"):
        time.sleep(polls.pop(0) if polls else 2.0)
    done = time.perf_counter()
    return {
        "import_s": imported - before_imports,
        "push_s": done - imported,
        "imports_and_push_s": done - before_imports,
        "script_s": done - STARTED,
    }


# -- the Airflow task ----------------------------------------------------------------------------------

DAG_FILE = """\
\"\"\"The DAG of benchmarks/small_push.py: a no-op task, then the push.

The first task instance of a ``dag.test()`` process builds Airflow's in-process execution API (seconds, for any
operator); the no-op pays that, so the push's task instance costs what it would in a running deployment.
\"\"\"

import datetime

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from airflow_provider_celonis.operators.data_push import DataPushOperator

with DAG("small_push", schedule=None, start_date=datetime.datetime(2024, 1, 1), catchup=False) as dag:
    warm_up = PythonOperator(task_id="warm_up", python_callable=lambda: None)
    warm_up >> DataPushOperator(task_id="push", source={csv!r}, target_table="small", job_type="REPLACE")
"""


def airflow_env(home: Path, url: str) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW_CONN_CELONIS_DEFAULT": json.dumps(
            {"conn_type": "celonis", "host": url, "password": APP_KEY, "extra": {"data_pool_id": POOL}}
        ),
    }


def set_up_airflow(home: Path, csv: Path, url: str) -> None:
    """The DAG file, and the metadata DB migrated once (not timed)."""
    (home / "dags").mkdir(parents=True, exist_ok=True)
    (home / "dags" / "small_push.py").write_text(DAG_FILE.format(csv=str(csv)))
    code = "from airflow.utils import db; db.initdb()"
    subprocess.run([sys.executable, "-c", code], env={**os.environ, **airflow_env(home, url)}, check=True)


class Marks:
    """Timestamps of the hook's calls inside the task (the same process: ``dag.test()`` runs it here)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float]] = []

    def wrap(self, cls: Any, name: str) -> None:
        original = getattr(cls, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.calls.append((name, started, time.perf_counter()))

        setattr(cls, name, timed)

    def first(self, name: str) -> tuple[float, float]:
        return next((s, e) for n, s, e in self.calls if n == name)

    def last(self, name: str) -> tuple[float, float]:
        return next((s, e) for n, s, e in reversed(self.calls) if n == name)


def run_task(home: Path) -> dict[str, Any]:
    before_imports = time.perf_counter()
    from airflow.dag_processing.dagbag import DagBag

    from airflow_provider_celonis.hooks.celonis import CelonisHook

    imported = time.perf_counter()
    marks = Marks()
    for name in ("list_jobs", "create_job", "upload_chunk", "execute_job", "wait_for_job"):
        marks.wrap(CelonisHook, name)
    dag = DagBag(str(home / "dags")).get_dag("small_push")
    parsed = time.perf_counter()
    run = dag.test()
    done = time.perf_counter()
    if str(run.state) not in ("success", "DagRunState.SUCCESS"):
        raise RuntimeError(f"the DAG run ended {run.state}")
    instances = {ti.task_id: ti for ti in run.get_task_instances()}
    ti, warm_up = instances["push"], instances["warm_up"]
    connection = marks.first("list_jobs")
    create = marks.first("create_job")
    upload = marks.first("upload_chunk")
    execute = marks.last("execute_job")
    wait = marks.last("wait_for_job")
    wall = time.time() - time.perf_counter()  # turns the marks into the task instance's clock
    return {
        "import_s": imported - before_imports,
        "parse_s": parsed - imported,
        "dag_test_s": done - parsed,
        "push_s": wait[1] - connection[0],
        # the task instance's own start to end, as Airflow records it (the duration its UI shows)
        "task_instance_s": (ti.end_date - ti.start_date).total_seconds(),
        # the process' first task instance, a no-op: Airflow's one-off set-up, paid by any operator
        "warm_up_task_instance_s": (warm_up.end_date - warm_up.start_date).total_seconds(),
        "script_s": done - STARTED,
        "phases": {
            "before_first_request": connection[0] - parsed,
            "connection": connection[1] - connection[0],
            "convert_and_create": upload[0] - connection[1],
            "create": create[1] - create[0],
            "upload": upload[1] - upload[0],
            "execute": execute[1] - execute[0],
            "wait": wait[1] - wait[0],
            "after_done": done - wait[1],
        },
        # inside the push's task instance: Airflow and the operator before the first request, and after DONE
        "task_instance_phases": {
            "start_to_first_request": connection[0] + wall - ti.start_date.timestamp(),
            "push": wait[1] - connection[0],
            "done_to_end": ti.end_date.timestamp() - (wait[1] + wall),
        },
    }


def child(args: argparse.Namespace) -> None:
    result = run_plain(Path(args.csv), args.url) if args.child == "plain" else run_task(Path(args.home))
    result["process_s"] = interpreter_start()
    print(json.dumps(result), flush=True)


def measure(mode: str, csv: Path, url: str, home: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", mode, "--csv", str(csv), "--url", url, "--home", str(home)]
    env = {**os.environ, **airflow_env(home, url)} if mode == "task" else None
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True, env=env)
    result = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"{mode:>6}: {json.dumps(result)}", file=sys.stderr, flush=True)
    return result


def median(results: list[dict[str, Any]], key: str, sub: str | None = None) -> float:
    values = [r[key][sub] if sub else r[key] for r in results]
    return round(float(statistics.median(values)), 3)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1000, help="rows in the CSV (default 1000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, fresh processes (default 3)")
    parser.add_argument("--job-duration", type=float, default=0.3, help="the emulator's job run time, s")
    parser.add_argument("--child", choices=["plain", "task"], help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="small-push-") as tmp:
        home = Path(tmp) / "airflow"
        csv = write_csv(Path(tmp) / "small.csv", args.rows)
        extra = ["--job-duration", str(args.job_duration)]
        with EmulatorProcess(Path(tmp) / "emulator", extra) as emulator:
            set_up_airflow(home, csv, emulator.url)
            measure("plain", csv, emulator.url, home)  # warms the emulator and the page cache
            runs: dict[str, list[dict[str, Any]]] = {"plain": [], "task": []}
            for _ in range(args.repeat):
                for mode in runs:
                    runs[mode].append(measure(mode, csv, emulator.url, home))
    task = runs["task"]
    figures: dict[str, Any] = {"rows": args.rows, "job_duration_s": args.job_duration}
    for name, results in runs.items():
        for key in ("process_s", "import_s", "push_s"):
            figures[f"{name}_{key}"] = median(results, key)
    figures["task_instance_s"] = median(task, "task_instance_s")
    figures["plain_imports_and_push_s"] = median(runs["plain"], "imports_and_push_s")
    figures["task_instance_vs_plain_push"] = round(figures["task_instance_s"] / figures["plain_push_s"], 2)
    # the ratio: the push's task instance (its imports included) against the script (its imports too)
    figures["task_instance_vs_plain_script"] = round(
        figures["task_instance_s"] / figures["plain_imports_and_push_s"], 2
    )
    figures["warm_up_task_instance_s"] = median(task, "warm_up_task_instance_s")
    figures["task_dag_test_s"] = median(task, "dag_test_s")
    figures["task_parse_s"] = median(task, "parse_s")
    figures["task_phases_s"] = {phase: median(task, "phases", phase) for phase in task[0]["phases"]}
    figures["task_instance_phases_s"] = {
        phase: median(task, "task_instance_phases", phase) for phase in task[0]["task_instance_phases"]
    }
    figures["process_ratio"] = round(figures["task_process_s"] / figures["plain_process_s"], 2)
    figures["dag_test_vs_plain_push"] = round(figures["task_dag_test_s"] / figures["plain_push_s"], 2)
    figures["push_ratio"] = round(figures["task_push_s"] / figures["plain_push_s"], 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
