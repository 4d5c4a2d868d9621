"""DataIngestionOperator through dag.test() into the emulator, the example DAG row for row, and the hook."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_celonis.hooks.data_ingestion import CelonisDataIngestionHook, IngestionConnectionConfig
from airflow_provider_celonis.hooks.errors import CelonisAuthError, CelonisConfigError
from airflow_provider_celonis.operators.data_ingestion import DataIngestionOperator, run_stamp
from tests.helpers import task_states, xcom
from tests.ingestion.conftest import CONN, KEY_PREFIX, Ingestion

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
MakeDag = Callable[..., Any]


def ingest_dag(make_dag: MakeDag, operator: type = DataIngestionOperator, **kwargs: Any) -> Any:
    """A one-task DAG whose ``ingest`` task is ``operator(**kwargs)``."""
    return make_dag(operator, task_id="ingest", **kwargs)


@pytest.mark.usefixtures("ingestion_conn")
def test_operator_splits_files_in_order_uncompressed(
    make_dag: MakeDag, ingestion: Ingestion, s3: Any
) -> None:
    def frame() -> pd.DataFrame:
        return pd.DataFrame({"id": list(range(20000)), "text": ["x" * 100 + str(i) for i in range(20000)]})

    dag = ingest_dag(
        make_dag, source=frame, target_table="wide", primary_keys=["id"], file_size_bytes=600_000
    )
    run = dag.test()
    assert task_states(run) == {"ingest": "success"}
    result = xcom(run, "ingest")
    assert result["rows"] == 20000
    assert result["files"] > 2
    assert result["bytes"] > 0
    assert result["keys"] == sorted(result["keys"])
    assert result["keys"][0].endswith("-000001.parquet")
    assert all(k.startswith(f"{KEY_PREFIX}wide/") for k in result["keys"])
    for key in result["keys"]:
        body = s3.get_object(Bucket="continuous", Key=key)["Body"].read()
        assert len(body) <= 600_000
    status = ingestion.wait(result["files"])
    assert [f["key"] for f in status["files"]] == result["keys"]  # uploaded, and applied, in order
    rows = ingestion.rows("wide", CONN)
    assert len(rows) == 20000
    assert {r["id"] for r in rows} == set(range(20000))


@pytest.mark.usefixtures("ingestion_conn")
def test_null_or_missing_keys_fail_before_anything_is_uploaded(
    make_dag: MakeDag, ingestion: Ingestion, tmp_path: Path
) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": 1, "v": 1}\n{"id": null, "v": 2}\n')
    for keys, age in ((["id"], None), (["nope"], None), (["id"], "version")):
        dag = ingest_dag(make_dag, source=str(path), target_table="t", primary_keys=keys, age_column=age)
        run = dag.test()
        assert task_states(run) == {"ingest": "failed"}
    assert ingestion.status()["files"] == []


@pytest.mark.usefixtures("ingestion_conn")
@pytest.mark.parametrize(
    ("column", "refusal"),
    [
        # written as a bare integer, its unit lost: 1.5 s landed as 1500
        (
            pa.array([dt.timedelta(milliseconds=1500), None]),
            "has type duration[us], which Celonis cannot store",
        ),
        # Celonis stores NULL for a date outside 1400-9999
        (pa.array([dt.date(2024, 1, 1), dt.date(1300, 1, 1)]), "holds a date in the year 1300 in row 2"),
    ],
)
def test_a_value_celonis_would_change_fails_before_anything_is_uploaded(
    make_dag: MakeDag,
    ingestion: Ingestion,
    capsys: pytest.CaptureFixture[str],
    column: pa.Array,
    refusal: str,
) -> None:
    table = pa.table({"id": [1, 2], "v": column})
    run = ingest_dag(make_dag, source=table, target_table="t", primary_keys=["id"]).test()
    assert task_states(run) == {"ingest": "failed"}
    assert refusal in capsys.readouterr().out
    assert ingestion.status()["files"] == []


@pytest.mark.usefixtures("ingestion_conn")
def test_a_null_key_inside_a_dictionary_fails_before_anything_is_uploaded(
    make_dag: MakeDag, ingestion: Ingestion, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dictionary's NULL value is not among its NULLs before the cast: the file was uploaded and failed
    later with PK NOT FOUND."""
    keys = pa.DictionaryArray.from_arrays(pa.array([0, 1], pa.int8()), pa.array(["a", None]))
    assert keys.null_count == 0
    run = ingest_dag(
        make_dag, source=pa.table({"id": keys, "v": [1, 2]}), target_table="t", primary_keys=["id"]
    )
    assert task_states(run.test()) == {"ingest": "failed"}
    assert "key column 'id' is NULL in row 2" in capsys.readouterr().out
    assert ingestion.status()["files"] == []


def test_run_stamp_is_stable_per_task_instance() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    stamp = run_stamp("d", "manual__1", "t", -1, when)
    assert stamp == run_stamp("d", "manual__1", "t", -1, when)
    assert stamp.startswith("20260102T030405678Z-")
    assert stamp != run_stamp("d", "manual__1", "t", 0, when)  # mapped instances get their own names
    assert stamp != run_stamp("d", "manual__2", "t", -1, when)


class FlakyIngestion(DataIngestionOperator):
    """Uploads, records the keys it wrote in ``marker`` (a JSON list per try), then fails its first try."""

    def __init__(self, *, marker: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.marker = marker

    def execute(self, context: Any) -> Any:
        result = super().execute(context)
        tries = json.loads(self.marker.read_text()) if self.marker.exists() else []
        self.marker.write_text(json.dumps([*tries, result["keys"]]))
        if len(tries) == 0:
            raise RuntimeError("fails after the upload, on the first try only")
        return result


@pytest.mark.usefixtures("ingestion_conn")
def test_a_retry_overwrites_the_objects_of_the_failed_try(
    make_dag: MakeDag, ingestion: Ingestion, s3: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "tries.json"
    dag = ingest_dag(
        make_dag,
        FlakyIngestion,
        marker=marker,
        source=lambda: pd.DataFrame({"id": list(range(3000)), "v": ["a" * 50] * 3000}),
        target_table="retried",
        primary_keys=["id"],
        file_size_bytes=20_000,
        retries=1,
        retry_delay=dt.timedelta(seconds=0),
    )
    run = dag.test()
    assert task_states(run) == {"ingest": "success"}
    first, second = json.loads(marker.read_text())
    assert first == second
    assert len(first) > 1
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket="continuous", Prefix=KEY_PREFIX)["Contents"]]
    assert sorted(listed) == sorted(first)  # overwritten, not added next to the first try's objects
    ingestion.wait(2 * len(first))
    assert len(ingestion.rows("retried", CONN)) == 3000


@pytest.mark.usefixtures("ingestion_conn")
def test_nested_example_lands_as_two_linked_tables(
    example_dag: Callable[[str], Any], ingestion: Ingestion
) -> None:
    run = example_dag("example_celonis_ingestion_nested").test()
    assert task_states(run) == {"ingest_orders": "success"}
    ingestion.wait(xcom(run, "ingest_orders")["files"])
    assert ingestion.errors() == []
    source = [
        json.loads(line) for line in (EXAMPLES / "data" / "orders_nested.jsonl").read_text().splitlines()
    ]
    orders = ingestion.sorted_rows("orders", "order_id")
    assert orders == [
        {**{k: v for k, v in o.items() if k != "line_items"}, "order_date": o["order_date"]} for o in source
    ]
    lines = ingestion.sorted_rows("orders_line_items", "line_id")
    want = sorted(
        ({"orders_order_id": o["order_id"], **item} for o in source for item in o["line_items"]),
        key=lambda r: r["line_id"],
    )
    assert lines == want
    assert len(lines) > len(orders)


def test_hook_config_and_test_connection(emulator: Any, ingestion_conn: Any) -> None:
    hook = CelonisDataIngestionHook()
    assert hook.config.endpoint_url == f"{emulator.url}/api/data-ingestion"
    assert "secret" not in repr(hook.config)
    ok, message = hook.test_connection()
    assert ok, message
    ingestion_conn("bad_secret", secret="wrong")
    bad = CelonisDataIngestionHook("bad_secret")
    assert bad.test_connection()[0] is False
    with pytest.raises(CelonisAuthError, match="SignatureDoesNotMatch"):
        bad.list_keys()


class _Conn:
    def __init__(self, host: str, extra: dict[str, Any], login: str = "AK", password: str = "SK") -> None:
        self.conn_id, self.host, self.port = "c", host, None
        self.login, self.password, self.extra_dejson = login, password, extra


def test_connection_validation() -> None:
    full = IngestionConnectionConfig.from_connection(
        _Conn("https://team.us-1.celonis.cloud/api/data-ingestion", {"connection_id": "x"})
    )
    assert full.endpoint_url == "https://team.us-1.celonis.cloud/api/data-ingestion"
    assert full.bucket == "continuous"
    assert full.region == "us-east-1"
    with pytest.raises(CelonisConfigError, match="plain http"):
        IngestionConnectionConfig.from_connection(_Conn("http://team.celonis.cloud", {"connection_id": "x"}))
    with pytest.raises(CelonisConfigError, match="connection_id"):
        IngestionConnectionConfig.from_connection(_Conn("https://team.celonis.cloud", {}))
    with pytest.raises(CelonisConfigError, match="access key"):
        IngestionConnectionConfig.from_connection(
            _Conn("https://t.celonis.cloud", {"connection_id": "x"}, login="")
        )


@pytest.mark.usefixtures("ingestion_conn")
def test_written_files_are_uncompressed(make_dag: MakeDag, s3: Any, tmp_path: Path) -> None:
    dag = ingest_dag(make_dag, source=lambda: pa.table({"id": [1, 2]}), target_table="u", primary_keys=["id"])
    run = dag.test()
    assert task_states(run) == {"ingest": "success"}
    key = xcom(run, "ingest")["keys"][0]
    (tmp_path / "f.parquet").write_bytes(s3.get_object(Bucket="continuous", Key=key)["Body"].read())
    meta = pq.ParquetFile(tmp_path / "f.parquet").metadata
    assert meta.row_group(0).column(0).compression == "UNCOMPRESSED"


@pytest.mark.usefixtures("ingestion_conn")
def test_written_files_dictionary_encode_only_repeating_columns(
    make_dag: MakeDag, s3: Any, tmp_path: Path
) -> None:
    """The ingestion files use the Data Push writer's dictionary choice: a column of unique values is
    written plain, a column that repeats is dictionary-encoded. primary_keys given as a template string
    is one key."""
    dag = ingest_dag(
        make_dag,
        source=lambda: pa.table({"id": list(range(5000)), "status": ["open", "closed"] * 2500}),
        target_table="u",
        primary_keys="{{ params.pk }}",
        params={"pk": "id"},
    )
    run = dag.test()
    assert task_states(run) == {"ingest": "success"}
    key = xcom(run, "ingest")["keys"][0]
    (tmp_path / "f.parquet").write_bytes(s3.get_object(Bucket="continuous", Key=key)["Body"].read())
    group = pq.ParquetFile(tmp_path / "f.parquet").metadata.row_group(0)
    encodings = {group.column(i).path_in_schema: set(group.column(i).encodings) for i in range(2)}
    assert not encodings["id"] & {"PLAIN_DICTIONARY", "RLE_DICTIONARY"}
    assert encodings["status"] & {"PLAIN_DICTIONARY", "RLE_DICTIONARY"}
