"""The emulator's own endpoints: health, tables, stats and the HTML overview."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import requests

from airflow_provider_celonis.emulator.testing import running_emulator
from tests.emulator.api_client import Api, parquet_bytes


def test_health_needs_no_credentials(api: Api) -> None:
    assert requests.get(f"{api.emu.url}/emulator/health").json() == {"status": "ok"}


def test_tables_json_and_parquet(api: Api) -> None:
    api.push("t", "REPLACE", [parquet_bytes({"id": [1, 2], "s": ["a", None]})])
    assert api.tables() == {
        "t": {
            "name": "t",
            "rows": 2,
            "columns": [{"name": "id", "type": "BIGINT"}, {"name": "s", "type": "VARCHAR"}],
        }
    }
    r = api.session.get(f"{api.emu.url}/emulator/api/pools/{api.pool}/tables/T.parquet")
    assert r.status_code == 200
    assert pq.read_table(io.BytesIO(r.content)).to_pylist() == [{"id": 1, "s": "a"}, {"id": 2, "s": None}]
    assert api.session.get(f"{api.emu.url}/emulator/api/pools/{api.pool}/tables/nope.json").status_code == 404
    assert api.session.get(f"{api.emu.url}/emulator/api/pools/{api.pool}/tables/t.csv").status_code == 404
    assert requests.get(f"{api.emu.url}/emulator/api/pools/{api.pool}/tables").status_code == 401


def test_tables_json_spells_floats_json_cannot_hold(api: Api) -> None:
    api.push("f", "REPLACE", [parquet_bytes({"v": [1.5, float("nan"), float("inf"), float("-inf"), None]})])
    assert api.rows("f") == [{"v": 1.5}, {"v": "NaN"}, {"v": "Infinity"}, {"v": "-Infinity"}, {"v": None}]


def test_stats_count_requests_and_open_jobs() -> None:
    with running_emulator() as emu:
        api = Api(emu, "p")
        first, second = api.create(), api.create()
        api.push("t", "DELTA", [parquet_bytes({"id": [1]})])
        api.session.delete(f"{api.base}{first['id']}")
        stats = api.session.get(f"{emu.url}/emulator/api/stats").json()
        assert stats["max_concurrent_open_jobs"] == 3
        assert stats["open_jobs"] == 1
        assert stats["jobs_by_status"]["NEW"] == 1
        assert stats["jobs_by_status"]["DONE"] == 1
        assert stats["requests"]["POST /integration/api/v1/data-push/{pool_id}/jobs/"] == 3
        assert stats["requests"]["DELETE /integration/api/v1/data-push/{pool_id}/jobs/{job_id}"] == 1
        assert stats["requests_total"] == sum(stats["requests"].values())
        assert second["id"]


def test_html_overview_shows_jobs_and_tables_but_no_keys() -> None:
    with running_emulator(app_keys=("very-secret-key",)) as emu:
        api = Api(emu, "p")
        api.push("orders", "REPLACE", [parquet_bytes({"id": [1], "v": ["hello"]})])
        page = requests.get(f"{emu.url}/").text
        assert "orders" in page
        assert "DONE" in page
        assert "hello" in page
        assert "(1 rows)" in page
        assert "very-secret-key" not in page
