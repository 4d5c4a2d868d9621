"""An Integration API client for the emulator tests (real HTTP with ``requests``), and config-file helpers.

Waiting uses the emulator's inspection routes, which never lag, so a test knows when an execution or a load
really ended; the lagging summary statuses are what the tests check.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import requests

from airflow_provider_celonis.emulator.server import EmulatorServer

JOB_DONE = {"SUCCESS", "FAIL", "CANCEL"}
LOAD_DONE = {"SUCCESS", "WARNING", "ERROR", "CANCELED"}


def write_config(folder: Path, pools: dict[str, Any], name: str = "integration.json") -> Path:
    path = folder / name
    path.write_text(json.dumps({"pools": pools}), encoding="utf-8")
    return path


def transformation(task_id: str, sql: str) -> dict[str, str]:
    return {"id": task_id, "name": f"task {task_id}", "sql": sql}


class Integration:
    """The Integration API of one pool, plus the emulator's inspection and fault routes."""

    def __init__(self, emu: EmulatorServer, pool: str, auth: str | None = None) -> None:
        self.emu = emu
        self.pool = pool
        self.session = requests.Session()
        self.session.headers["Authorization"] = auth or f"AppKey {emu.app_key}"
        self.base = f"{emu.url}/integration/api/pools/{pool}"

    def get(self, path: str, **params: Any) -> Any:
        r = self.session.get(f"{self.base}/{path}", params=params)
        assert r.status_code == 200, r.text
        return r.json()

    def execute(self, job: str, **config: Any) -> requests.Response:
        body = {"poolId": self.pool, "jobId": job, **config}
        return self.session.post(f"{self.base}/jobs/{job}/execute", json=body)

    def cancel(self, job: str) -> requests.Response:
        return self.session.post(f"{self.base}/jobs/{job}/cancel")

    def status(self, job: str) -> dict[str, Any]:
        return next(s for s in self.get("logs/status") if s["id"] == job)

    def reload(self, model: str, force_complete: bool = True) -> requests.Response:
        params = {"forceComplete": str(force_complete).lower()}
        return self.session.post(f"{self.base}/data-models/{model}/reload", params=params)

    def partial(self, model: str, table_ids: Any) -> requests.Response:
        url = (
            f"{self.emu.url}/integration/api/v1/data-pools/{self.pool}/data-models/{model}/load/partial-sync"
        )
        return self.session.post(url, json=table_ids)

    def load_info(self, model: str) -> dict[str, Any]:
        return dict(self.get(f"data-models/{model}/load-history/load-info-sync"))

    # inspection ---------------------------------------------------------------------------------------
    def executions(self, job: str) -> list[dict[str, Any]]:
        r = self.session.get(f"{self.emu.url}/emulator/api/pools/{self.pool}/data-jobs/{job}/executions")
        assert r.status_code == 200, r.text
        return list(r.json())

    def model(self, model: str) -> dict[str, Any]:
        r = self.session.get(f"{self.emu.url}/emulator/api/pools/{self.pool}/data-models/{model}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def rows(self, table: str, order: str) -> list[dict[str, Any]]:
        r = self.session.get(f"{self.emu.url}/emulator/api/pools/{self.pool}/tables/{table}.json")
        assert r.status_code == 200, r.text
        return sorted(r.json(), key=lambda row: row[order])

    def wait_execution(self, job: str, index: int = -1, statuses: set[str] = JOB_DONE) -> dict[str, Any]:
        """The job's ``index``-th execution once its status is one of ``statuses``."""
        deadline = time.monotonic() + 30
        while True:
            execution = self.executions(job)[index]
            if execution["status"] in statuses:
                return execution
            assert time.monotonic() < deadline, f"execution stuck in {execution['status']}"
            time.sleep(0.02)

    def wait_task(self, job: str, task: str, status: str) -> None:
        deadline = time.monotonic() + 30
        while True:
            tasks = {t["taskId"]: t["status"] for t in self.executions(job)[-1]["tasks"]}
            if tasks[task] == status:
                return
            assert time.monotonic() < deadline, f"task {task} stuck in {tasks[task]}"
            time.sleep(0.02)

    def wait_load(self, model: str, count: int = 1) -> dict[str, Any]:
        """The model's ``count``-th load once it ended."""
        deadline = time.monotonic() + 30
        while True:
            loads = self.model(model)["loads"]
            if len(loads) >= count and loads[count - 1]["status"] in LOAD_DONE:
                return dict(loads[count - 1])
            assert time.monotonic() < deadline, f"load stuck: {loads}"
            time.sleep(0.02)

    def next_load_status(self, model: str, status: str, message: str) -> None:
        body = {"pool_id": self.pool, "data_model_id": model, "status": status, "message": message}
        r = self.session.post(f"{self.emu.url}/emulator/api/faults/next-load-status", json=body)
        assert r.status_code == 200, r.text

    def fault(self, **fault: Any) -> None:
        r = self.session.post(f"{self.emu.url}/emulator/api/faults", json=fault)
        assert r.status_code == 200, r.text
