"""DataPushOperator through real Airflow (dag.test) into the emulator; the landed table is checked row for row."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_celonis.operators.data_push import DataPushOperator
from airflow_provider_celonis.sensors.data_push import DataPushJobSensor
from tests.helpers import POOL, EmulatorClient, task_states, xcom

MakeDag = Callable[..., Any]


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.usefixtures("celonis_conn")
def test_delta_with_keys_from_csv_then_upsert(
    make_dag: MakeDag, landed: EmulatorClient, tmp_path: Path
) -> None:
    first = write_csv(
        tmp_path / "a.csv", [{"id": i, "name": f"n{i}", "amount": i * 1.5} for i in range(1, 6)]
    )
    second = write_csv(
        tmp_path / "b.csv",
        [{"id": 5, "name": "five", "amount": 0.5}, {"id": 6, "name": "six", "amount": 9.0}],
    )
    for path in (first, second):
        run = make_dag(source=str(path), target_table="orders", keys=["id"], poll_interval=0.2).test()
        assert task_states(run) == {"push": "success"}
    rows = sorted(landed.rows("orders"), key=lambda r: r["id"])
    expected = [{"id": i, "name": f"n{i}", "amount": i * 1.5} for i in range(1, 5)]
    expected += [{"id": 5, "name": "five", "amount": 0.5}, {"id": 6, "name": "six", "amount": 9.0}]
    assert rows == expected
    result = xcom(run, "push")
    assert result["status"] == "DONE"
    assert result["rows"] == 2
    assert result["chunks"] == 1
    assert result["data_pool_id"] == POOL
    assert result["target_table"] == "orders"
    assert result["bytes"] > 0


@pytest.mark.usefixtures("celonis_conn")
def test_replace_from_callable_multi_chunk_and_long_strings(
    make_dag: MakeDag, landed: EmulatorClient
) -> None:
    def frames() -> Any:
        for i in range(0, 20000, 5000):
            ids = range(i, i + 5000)
            yield pd.DataFrame({"id": list(ids), "text": ["x" * 300 + str(n) for n in ids]})

    dag = make_dag(
        source=frames, target_table="wide", job_type="REPLACE", chunk_size_bytes=256 * 1024, poll_interval=0.2
    )
    run = dag.test()
    assert task_states(run) == {"push": "success"}
    result = xcom(run, "push")
    assert result["rows"] == 20000
    assert result["chunks"] > 1
    rows = landed.rows("wide")
    assert len(rows) == 20000
    assert {r["id"] for r in rows} == set(range(20000))
    # STRING lengths were measured from the data: nothing cut to 80 characters.
    assert all(r["text"] == "x" * 300 + str(r["id"]) for r in rows)
    job = landed.jobs()[-1]
    text_col = next(c for c in job["tableSchema"]["columns"] if c["columnName"] == "text")
    # Created after the first chunk: the longest value so far with room to spare (pipeline.declared_lengths).
    assert 305 <= text_col["fieldLength"] <= 2 * 305


@pytest.mark.usefixtures("celonis_conn")
def test_dataframe_with_deletes_and_types(make_dag: MakeDag, landed: EmulatorClient, tmp_path: Path) -> None:
    table = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int32()),
            "when": pa.array([1_700_000_000_123_456, 1_700_000_001_000_000, None], pa.timestamp("us")),
            "flag": [True, False, None],
        }
    )
    pq.write_table(table, tmp_path / "up.parquet")
    pq.write_table(pa.table({"id": [2]}), tmp_path / "del.parquet")
    dag = make_dag(
        source=f"{tmp_path}/up.parquet",
        deleted_source=f"{tmp_path}/del.parquet",
        target_table="typed",
        keys=["id"],
        poll_interval=0.2,
    )
    run = dag.test()
    assert task_states(run) == {"push": "success"}
    rows = sorted(landed.rows("typed"), key=lambda r: r["id"])
    assert [r["id"] for r in rows] == [1, 3]
    assert rows[0]["flag"] is True
    assert rows[1]["flag"] is None
    assert str(rows[0]["when"]).startswith("2023-11-14T22:13:20.123")


@pytest.mark.usefixtures("celonis_conn")
def test_deferrable_push_and_sensor(make_dag: MakeDag, landed: EmulatorClient, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "a.csv", [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}])

    def tasks() -> object:
        push = DataPushOperator(
            task_id="push",
            source=str(src),
            target_table="deferred",
            keys=["id"],
            deferrable=True,
            poll_interval=0.2,
        )
        wait = DataPushJobSensor(
            task_id="wait",
            job_id="{{ ti.xcom_pull('push')['job_id'] }}",
            deferrable=True,
            poke_interval=0.2,
            timeout=60,
        )
        return push >> wait

    run = make_dag(tasks=tasks).test()
    assert task_states(run) == {"push": "success", "wait": "success"}
    assert xcom(run, "push")["status"] == "DONE"
    assert sorted(r["id"] for r in landed.rows("deferred")) == [1, 2]


@pytest.mark.usefixtures("celonis_conn")
def test_job_error_fails_task_with_logs(
    make_dag: MakeDag,
    landed: EmulatorClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A job that ends in ERROR fails the task, and the task log quotes Celonis' job log."""
    src = write_csv(tmp_path / "a.csv", [{"id": 1}])
    import requests

    requests.post(
        f"{landed.emu.url}/emulator/api/faults/next-job-error",
        json={"message": "simulated failure in column id"},
        headers={"Authorization": f"AppKey {landed.key}"},
        timeout=10,
    ).raise_for_status()
    run = make_dag(source=str(src), target_table="t", poll_interval=0.2).test()
    assert task_states(run) == {"push": "failed"}
    output = capsys.readouterr().out
    assert "ended ERROR" in output
    assert "simulated failure in column id" in output
    assert [j["status"] for j in landed.jobs()] == ["ERROR"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"source": "/nonexistent/file.csv"}, "source: '/nonexistent/file.csv' does not exist"),
        ({"source": "SRC", "keys": ["nope"]}, "key column(s) 'nope' not found"),
        ({"source": "SRC", "chunk_size_bytes": 2 * 1024**3}, "over Celonis' limit of 1 GiB"),
        ({"source": "SRC", "job_type": "MERGE"}, "job_type must be one of DELTA, REPLACE, got 'MERGE'"),
        ({"source": "EMPTY", "on_empty": "fail"}, "has no rows; nothing to push (on_empty='fail')"),
        ({"source": "SRC", "celonis_conn_id": "wrongkey"}, "HTTP 401"),
        ({"source": "SRC", "celonis_conn_id": "down"}, "no answer"),
        ({"source": "SRC", "data_pool_id": "forbidden-pool"}, "HTTP 403"),
        ({}, "Give source (rows to upsert), deleted_source (rows to delete), or both"),
    ],
)
def test_bad_input_fails_and_leaves_no_job(
    make_dag: MakeDag,
    celonis_conn: Callable[..., str],
    airflow_conn: Callable[..., str],
    landed: EmulatorClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: dict[str, Any],
    message: str,
) -> None:
    """``"SRC"``/``"EMPTY"`` as the source: a one-row CSV file / a header-only one."""
    src = write_csv(tmp_path / "a.csv", [{"id": 1}])
    empty = tmp_path / "empty.csv"
    empty.write_text("id\n")
    celonis_conn("wrongkey", password="definitely-wrong-key")
    airflow_conn("down", host="http://127.0.0.1:9", password="k", data_pool_id="p", timeout=2, retries=1)
    files = {"SRC": str(src), "EMPTY": str(empty)}
    if "source" in args:
        args = {**args, "source": files.get(args["source"], args["source"])}
    run = make_dag(target_table="bad", **args).test()
    assert task_states(run) == {"push": "failed"}
    output = capsys.readouterr().out
    assert message in output
    assert "definitely-wrong-key" not in output
    assert "XCom not found" not in output
    assert landed.jobs() == []
    assert landed.jobs("forbidden-pool") == []
    assert landed.rows("bad") == []


@pytest.mark.usefixtures("celonis_conn")
def test_csv_pass_through_split_at_record_boundaries(
    make_dag: MakeDag, landed: EmulatorClient, tmp_path: Path
) -> None:
    rows = [{"id": i, "note": f'line one {i};\nline two "quoted" ü'} for i in range(6000)]
    path = tmp_path / "notes.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "note"], delimiter=";")
        writer.writeheader()
        writer.writerows(rows)
    assert path.stat().st_size > 3 * 64 * 1024
    dag = make_dag(
        source=str(path),
        target_table="notes",
        keys=["id"],
        file_type="CSV",
        csv_parsing_options={"separatorSequence": ";", "quoteSequence": '"', "lineEnding": "\r\n"},
        table_schema=[
            {"columnName": "id", "columnType": "INTEGER"},
            {"columnName": "note", "columnType": "STRING", "fieldLength": 200},
        ],
        chunk_size_bytes=64 * 1024,
        poll_interval=0.2,
    )
    run = dag.test()
    assert task_states(run) == {"push": "success"}
    assert xcom(run, "push")["chunks"] >= 3
    assert xcom(run, "push")["rows"] == len(rows)  # records sent, quoted newlines not counted as rows
    got = sorted(landed.rows("notes"), key=lambda r: r["id"])
    assert got == rows


@pytest.mark.usefixtures("celonis_conn")
def test_templated_string_keys_job_type_and_schema_are_rendered_whole(
    make_dag: MakeDag, landed: EmulatorClient, tmp_path: Path
) -> None:
    """A string template for keys is one key after rendering (never its characters); job_type and
    table_schema are templated too."""
    src = write_csv(tmp_path / "a.csv", [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}])
    dag = make_dag(
        source=str(src),
        target_table="tpl",
        keys="{{ params.k }}",
        job_type="{{ params.jt }}",
        table_schema=[{"columnName": "{{ params.col }}", "columnType": "STRING", "fieldLength": 7}],
        params={"k": "id", "jt": "REPLACE", "col": "v"},
        poll_interval=0.2,
    )
    run = dag.test()
    assert task_states(run) == {"push": "success"}
    job = landed.jobs()[-1]
    assert job["keys"] == ["id"]
    assert job["type"] == "REPLACE"
    assert {"columnName": "v", "columnType": "STRING", "fieldLength": 7}.items() <= next(
        c for c in job["tableSchema"]["columns"] if c["columnName"] == "v"
    ).items()
    assert sorted(r["id"] for r in landed.rows("tpl")) == [1, 2]


def test_wrong_key_fails_before_the_source_is_converted(
    make_dag: MakeDag,
    celonis_conn: Callable[..., str],
    landed: EmulatorClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A wrong key is refused by one cheap call before any conversion starts (no conversion log line)."""
    src = write_csv(tmp_path / "big.csv", [{"id": i, "name": f"name {i}" * 3} for i in range(200_000)])
    celonis_conn("wrongkey", password="definitely-wrong-key")
    run = make_dag(source=str(src), target_table="t", celonis_conn_id="wrongkey").test()
    assert task_states(run) == {"push": "failed"}
    output = capsys.readouterr().out
    assert "HTTP 401" in output
    assert "Measuring STRING lengths" not in output
    assert "Uploaded upserted chunk" not in output
    assert landed.jobs() == []


def _empty_csv(tmp_path: Path) -> Path:
    """A CSV with a header (``id,name``) and no row."""
    empty = tmp_path / "empty.csv"
    empty.write_text("id,name\n")
    return empty


@pytest.mark.usefixtures("celonis_conn")
def test_empty_delta_source_is_skipped_without_a_job(
    make_dag: MakeDag,
    landed: EmulatorClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    empty = _empty_csv(tmp_path)
    run = make_dag(source=str(empty), target_table="quiet", keys=["id"]).test()
    assert task_states(run) == {"push": "success"}
    result = xcom(run, "push")
    assert result["rows"] == 0
    assert result["status"] == "SKIPPED"
    assert result["job_id"] == ""
    assert "nothing to push" in capsys.readouterr().out
    assert landed.jobs() == []


@pytest.mark.usefixtures("celonis_conn")
def test_empty_replace_empties_the_table_when_the_types_are_known(
    make_dag: MakeDag, landed: EmulatorClient, tmp_path: Path
) -> None:
    full = tmp_path / "full.parquet"
    pq.write_table(pa.table({"id": [1, 2], "name": ["a", "b"]}), full)
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"id": pa.array([], pa.int64()), "name": pa.array([], pa.string())}), empty)
    for path in (full, empty):
        run = make_dag(source=str(path), target_table="gone", job_type="REPLACE", poll_interval=0.2).test()
        assert task_states(run) == {"push": "success"}
    assert landed.rows("gone") == []
    assert xcom(run, "push")["status"] == "DONE"
    assert xcom(run, "push")["rows"] == 0
    assert [t["name"] for t in landed.tables() if t["name"] == "gone"] == ["gone"]


@pytest.mark.usefixtures("celonis_conn")
def test_empty_replace_without_types_fails_saying_so(
    make_dag: MakeDag,
    landed: EmulatorClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    empty = _empty_csv(tmp_path)
    run = make_dag(source=str(empty), target_table="t", job_type="REPLACE").test()
    assert task_states(run) == {"push": "failed"}
    assert "the type of column(s) 'id', 'name' is unknown" in capsys.readouterr().out
    assert landed.jobs() == []


@pytest.mark.usefixtures("celonis_conn")
def test_empty_files_in_a_folder_are_skipped_and_a_folder_of_only_empty_files_is_an_empty_source(
    make_dag: MakeDag,
    landed: EmulatorClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An export that wrote nothing this hour leaves a 0-byte file (no header, no rows): it holds no row to
    lose, so it must not fail the push of the others. A folder of nothing but such files is a source with no
    rows: DELTA skips it, REPLACE refuses it (no column types to empty the table with)."""
    hourly = tmp_path / "hourly"
    hourly.mkdir()
    (hourly / "00.csv").write_text("id,name\n1,a\n2,\n")
    (hourly / "01.csv").write_text("")
    (hourly / "02.csv").write_text("id,name\n")
    (hourly / "03.csv").write_text("id,name\n3,c\n")
    jsonl = tmp_path / "jsonl"
    jsonl.mkdir()
    (jsonl / "a.jsonl").write_text('{"id": 1}\n')
    (jsonl / "b.jsonl").write_text("")
    quiet = tmp_path / "quiet"
    quiet.mkdir()
    for name in ("00.csv", "01.csv"):
        (quiet / name).write_text("")

    def tasks() -> None:
        DataPushOperator(task_id="csv", source=str(hourly), target_table="hourly", poll_interval=0.2)
        DataPushOperator(task_id="jsonl", source=str(jsonl), target_table="jl", poll_interval=0.2)
        DataPushOperator(
            task_id="pass", source=str(hourly), target_table="passed", file_type="CSV", poll_interval=0.2
        )
        DataPushOperator(task_id="delta", source=str(quiet), target_table="quiet", keys=["id"])
        DataPushOperator(task_id="replace", source=str(quiet), target_table="quiet", job_type="REPLACE")

    run = make_dag(tasks=tasks).test()
    assert task_states(run) == {
        "csv": "success",
        "jsonl": "success",
        "pass": "success",
        "delta": "success",
        "replace": "failed",
    }
    assert sorted(landed.rows("hourly"), key=lambda r: r["id"]) == [
        {"id": 1, "name": "a"},
        {"id": 2, "name": None},
        {"id": 3, "name": "c"},
    ]
    assert landed.rows("jl") == [{"id": 1}]
    assert sorted((r["id"], r["name"]) for r in landed.rows("passed")) == [(1, "a"), (2, None), (3, "c")]
    assert xcom(run, "delta")["status"] == "SKIPPED"
    out = capsys.readouterr().out + caplog.text
    assert "01.csv is empty (no header, no rows): skipped" in out
    assert "every file is empty (no header, no rows), so REPLACE has no column to empty the table with" in out
    assert {job["targetName"] for job in landed.jobs()} == {"hourly", "jl", "passed"}


@pytest.mark.usefixtures("celonis_conn")
def test_deletes_are_counted_and_small_pushes_show_kb(
    make_dag: MakeDag,
    landed: EmulatorClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pq.write_table(pa.table({"id": [1, 2, 3]}), tmp_path / "up.parquet")
    pq.write_table(pa.table({"id": [2, 3]}), tmp_path / "del.parquet")
    dag = make_dag(
        source=f"{tmp_path}/up.parquet",
        deleted_source=f"{tmp_path}/del.parquet",
        target_table="counted",
        keys=["id"],
        poll_interval=0.2,
    )
    run = dag.test()
    assert task_states(run) == {"push": "success"}
    result = xcom(run, "push")
    assert result["rows"] == 3
    assert result["deleted_rows"] == 2
    assert result["chunks"] == 2
    output = capsys.readouterr().out
    assert "3 rows, 2 deleted rows in 2 chunk(s)" in output
    assert " KB" in output
    assert "0.0 MB" not in output
    assert [r["id"] for r in landed.rows("counted")] == [1]


def test_sync_timeout_cancels_the_job_and_says_so(
    make_dag: MakeDag,
    celonis_emulator_factory: Any,
    airflow_conn: Callable[..., str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.helpers import ADMIN_KEY

    emu = celonis_emulator_factory(app_keys=("app-key-0123456789", ADMIN_KEY), job_duration=30)
    airflow_conn("celonis_default", host=emu.url, password="app-key-0123456789", data_pool_id=POOL)
    src = write_csv(tmp_path / "a.csv", [{"id": 1}])
    run = make_dag(source=str(src), target_table="slow", timeout=1, poll_interval=0.2).test()
    assert task_states(run) == {"push": "failed"}
    assert "cancelled the job" in capsys.readouterr().out
    assert [j["status"] for j in EmulatorClient(emu, ADMIN_KEY).jobs()] == ["CANCELED"]


@pytest.mark.usefixtures("celonis_conn")
def test_type_drift_in_a_later_block_widens_the_column(
    make_dag: MakeDag,
    landed: EmulatorClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Integers for 299 rows, then '12,5 EUR': the push widens the column to STRING, reads the file again
    and lands every row; the first attempt's job (if any) is not left behind."""
    from airflow_provider_celonis.datapath import text_read

    monkeypatch.setattr(text_read, "CSV_BLOCK_BYTES", 1024)
    path = tmp_path / "mixed.csv"
    path.write_text("id,amount\n" + "".join(f"{i},{i * 3}\n" for i in range(1, 300)) + '300,"12,5 EUR"\n')
    dag = make_dag(
        source=str(path),
        target_table="drift",
        keys=["id"],
        table_schema=[{"columnName": "id", "columnType": "INTEGER"}],
        poll_interval=0.2,
    )
    run = dag.test()
    assert task_states(run) == {"push": "success"}
    assert "Type drift" in capsys.readouterr().out
    rows = sorted(landed.rows("drift"), key=lambda r: r["id"])
    assert len(rows) == 300
    assert rows[0]["amount"] == "3"
    assert rows[-1]["amount"] == "12,5 EUR"
    assert [j["status"] for j in landed.jobs()] == ["DONE"]
