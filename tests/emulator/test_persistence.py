"""State under --data-dir survives restarts; interrupted jobs run again."""

from __future__ import annotations

import pytest

from airflow_provider_celonis.emulator.testing import running_emulator
from tests.emulator.api_client import Api, parquet_bytes


@pytest.mark.slow
def test_tables_jobs_and_chunks_survive_restart() -> None:
    with running_emulator() as emu:
        api = Api(emu, "p1")
        done = api.push("t", "REPLACE", [parquet_bytes({"id": [1, 2]})])
        pending = api.create()
        api.upload(pending["id"], parquet_bytes({"id": [3]}))
        url, data_dir = emu.url, emu.data_dir
        emu.restart()
        assert emu.url == url
        assert emu.data_dir == data_dir
        api = Api(emu, "p1")
        assert api.job(done["id"])["status"] == "DONE"
        assert api.rows("t", "id") == [{"id": 1}, {"id": 2}]
        assert len(api.session.get(f"{api.base}{pending['id']}/chunks").json()) == 1
        api.execute(pending["id"])
        assert api.wait(pending["id"])["status"] == "DONE"
        assert api.rows("t", "id") == [{"id": 1}, {"id": 2}, {"id": 3}]


@pytest.mark.slow
def test_running_job_is_rerun_after_restart() -> None:
    with running_emulator(job_duration=60) as emu:
        api = Api(emu, "p1")
        job = api.create("t", "DELTA")
        api.upload(job["id"], parquet_bytes({"id": [7]}))
        api.execute(job["id"])
        api.wait(job["id"], {"RUNNING"})
        emu.settings.job_duration = 0
        emu.restart()
        api = Api(emu, "p1")
        finished = api.wait(job["id"])
        assert finished["status"] == "DONE"
        assert "re-queued after an emulator restart" in finished["logs"]
        assert api.rows("t") == [{"id": 7}]


def test_explicit_data_dir_is_kept(tmp_path: object) -> None:
    from pathlib import Path

    data_dir = Path(str(tmp_path)) / "state"
    with running_emulator(data_dir=data_dir) as emu:
        Api(emu, "p1").push("t", "REPLACE", [parquet_bytes({"id": [1]})])
    assert (data_dir / "tables.duckdb").exists()
    with running_emulator(data_dir=data_dir) as emu:
        assert Api(emu, "p1").rows("t") == [{"id": 1}]
