"""docs/data-types.md as tests: every row of the table, for every source kind where it applies.

One DAG pushes the same data set (``cases``) from every source kind into its own table, in one
``dag.test()``; each cell of the table is then a test of what landed in the emulator, value by value.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dag_builder import dag_file
from tests.datatypes import cases
from tests.helpers import ADMIN_KEY, EmulatorClient, conn_env, task_states

KINDS = ("csv", "csv_pass", "parquet", "jsonl", "dataframe", "arrow", "sql")


def type_tasks(files: dict[str, Path]) -> None:
    """One task per source kind into ``types_<kind>``, and the case-insensitive duplicates (``dup_*``)."""
    from airflow_provider_celonis.operators.data_push import DataPushOperator
    from airflow_provider_celonis.transfers.sql_to_celonis import SqlToCelonisOperator

    common: dict[str, Any] = {"job_type": "REPLACE", "poll_interval": 0.1}
    csv, dup_csv = str(files["csv"]), str(files["dup_csv"])
    DataPushOperator(task_id="csv", source=csv, target_table="types_csv", **common)
    DataPushOperator(
        task_id="csv_pass",
        source=csv,
        target_table="types_csv_pass",
        file_type="CSV",
        fallback_varchar_length=5000,
        **common,
    )
    DataPushOperator(task_id="parquet", source=str(files["parquet"]), target_table="types_parquet", **common)
    DataPushOperator(task_id="jsonl", source=str(files["jsonl"]), target_table="types_jsonl", **common)
    DataPushOperator(task_id="dataframe", source=cases.dataframe, target_table="types_dataframe", **common)
    DataPushOperator(task_id="arrow", source=cases.arrow_table, target_table="types_arrow", **common)
    SqlToCelonisOperator(
        task_id="sql", sql_conn_id="types_sqlite", sql="SELECT * FROM t", target_table="types_sql", **common
    )
    for kind, source in (("parquet", str(files["dup_parquet"])), ("csv", dup_csv)):
        DataPushOperator(task_id=f"dup_{kind}", source=source, target_table=f"dup_{kind}", **common)
    DataPushOperator(
        task_id="dup_csv_pass", source=dup_csv, target_table="dup_csv_pass", file_type="CSV", **common
    )


@pytest.fixture(scope="module")
def landed(
    airflow_db: Path,  # noqa: ARG001 - migrates the metadata DB before the DAG runs
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """Run the DAG once; the landed rows (by id) per kind, the task states and the jobs."""
    from airflow_provider_celonis.emulator.server import EmulatorServer
    from airflow_provider_celonis.emulator.testing import build_settings

    root = tmp_path_factory.mktemp("types")
    files = {
        "csv": cases.write_csv(root / "types.csv"),
        "parquet": cases.write_parquet(root / "types.parquet"),
        "jsonl": cases.write_jsonl(root / "types.jsonl"),
        "dup_csv": root / "dup.csv",
        "dup_parquet": root / "dup.parquet",
    }
    files["dup_csv"].write_text("id,Name,NAME\n1,a,b\n")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": [1], "Name": ["a"], "NAME": ["b"]}), files["dup_parquet"])
    sqlite = cases.write_sqlite(root / "types.db")
    server = EmulatorServer(
        build_settings(app_keys=("app-key-0123456789=pool-1", ADMIN_KEY), job_duration=0.05)
    ).start()
    try:
        with pytest.MonkeyPatch.context() as mp:
            key = "app-key-0123456789"
            mp.setenv(*conn_env("celonis_default", host=server.url, password=key, data_pool_id="pool-1"))
            mp.setenv(*conn_env("types_sqlite", "sqlite", host=str(sqlite)))
            with dag_file(tasks=functools.partial(type_tasks, files)) as dag:
                run = dag.test()
        client = EmulatorClient(server, ADMIN_KEY)
        tables = {t["name"].lower(): t for t in client.tables()}
        yield {
            "types": {
                k: {c["name"]: c["type"] for c in tables.get(f"types_{k}", {}).get("columns", [])}
                for k in KINDS
            },
            "states": task_states(run),
            "rows": {k: {r["id"]: r for r in client.rows(f"types_{k}")} for k in KINDS},
            "jobs": client.jobs(),
        }
    finally:
        server.close()


def test_every_kind_lands(landed: dict[str, Any]) -> None:
    assert {k: landed["states"][k] for k in KINDS} == dict.fromkeys(KINDS, "success")
    for kind in KINDS:
        assert sorted(landed["rows"][kind]) == [1, 2, 3], kind


@pytest.mark.parametrize("kind", ["dup_parquet", "dup_csv", "dup_csv_pass"])
def test_case_insensitive_duplicate_names_refused_before_any_job(landed: dict[str, Any], kind: str) -> None:
    assert landed["states"][kind] == "failed"
    assert not [j for j in landed["jobs"] if j["targetName"] == kind]


def _same(column: str) -> list[Any]:
    return list(cases.VALUES[column][1])


#: What lands (the emulator's DuckDB type, the values as its inspection API gives them), per row of
#: docs/data-types.md; ``EXCEPT`` lists the kinds that land differently, and why is in the doc.
LANDS: dict[str, tuple[str, list[Any]]] = {
    "null_vs_empty": ("VARCHAR", [None, "", "x"]),
    "int_null": ("BIGINT", [None, 0, -5]),
    "flag": ("BOOLEAN", [True, False, None]),
    "big_int": ("BIGINT", _same("big_int")),
    "dec": ("DOUBLE", [12.34, -0.5, None]),
    "day": ("TIMESTAMP_MS", ["2024-02-29T00:00:00", "1400-01-01T00:00:00", None]),
    "clock": ("TIME", ["13:14:15", "00:00:00", None]),
    "ts": ("TIMESTAMP_MS", ["2024-01-02T03:04:05.123000", "9999-12-31T00:00:00", None]),
    "tsz": ("TIMESTAMP_MS", ["2024-01-02T01:04:05", None, "2024-01-02T01:04:05"]),
    "uni": ("VARCHAR", _same("uni")),
    "multiline": ("VARCHAR", _same("multiline")),
    "long": ("VARCHAR", _same("long")),
    "MixedCase": ("VARCHAR", _same("MixedCase")),
}
EXCEPT: dict[tuple[str, str], tuple[str, list[Any]]] = {
    ("jsonl", "clock"): ("VARCHAR", ["13:14:15", "00:00:00", None]),
    ("sql", "flag"): ("BIGINT", [1, 0, None]),
    ("sql", "day"): ("VARCHAR", ["2024-02-29", "1400-01-01", None]),
    ("sql", "clock"): ("VARCHAR", ["13:14:15", "00:00:00", None]),
    ("sql", "ts"): ("VARCHAR", ["2024-01-02 03:04:05.123000", "9999-12-31 00:00:00", None]),
    ("sql", "tsz"): ("VARCHAR", ["2024-01-02T03:04:05+02:00", None, "2024-01-02T03:04:05+02:00"]),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("column", list(LANDS))
def test_cell(landed: dict[str, Any], kind: str, column: str) -> None:
    rows = landed["rows"][kind]
    got = [rows[i].get(column, "<missing>") for i in (1, 2, 3)]
    ctype, values = EXCEPT.get((kind, column), LANDS[column])
    assert got == values
    assert landed["types"][kind].get(column) == ctype
