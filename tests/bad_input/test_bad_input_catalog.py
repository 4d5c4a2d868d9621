"""Bad-input catalog (issue 6.5): one table of wrong parameters, data, connections and server answers.

Every case asserts the message a user reads (what is wrong and where) and, where the client can tell
before sending, that no job was created and the pre-seeded target table did not change. Operator cases
run the real ``DataPushOperator`` under ``dag.test()``; connection and some server cases call the hook.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_celonis.datapath import text_read
from airflow_provider_celonis.hooks.celonis import CelonisHook
from airflow_provider_celonis.hooks.errors import CelonisError
from airflow_provider_celonis.hooks.http_policy import RetryPolicy
from tests.helpers import ADMIN_KEY, POOL, EmulatorClient, task_states

DAG_KEY = "app-key-0123456789=pool-1,pool-2,p"
WRONG_KEY = "definitely-wrong-key-4711"
SEED = [{"id": 0, "name": "seed"}]
TABLE = "bad"
FAST = RetryPolicy(max_attempts=2, base_delay=0.05, max_delay=0.1, max_inline_wait=1)
HTML_PAGE = "<html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1></body></html>"


@dataclass(frozen=True)
class Case:
    """One bad input. ``kind``: ``operator`` (dag.test), ``connection`` (hook config) or ``hook``.

    ``args``: the operator's keyword arguments (``"@name@"`` in a string: the path of input file ``name``),
    the connection's fields and extra (``airflow_conn``'s keywords), or a function of the hook and the files.
    """

    id: str
    kind: str
    args: Any
    expect: tuple[str, ...]
    #: A dedicated emulator (``celonis_emulator_factory`` keywords) instead of the default one.
    emulator: dict[str, Any] | None = None
    #: Fault rules installed before the run (the emulator's fault injection API).
    faults: tuple[dict[str, Any], ...] = ()
    #: Pools that must hold no job afterwards (None: the case creates one on purpose).
    no_job_in: tuple[str, ...] | None = (POOL,)
    target: str = TABLE
    succeeds: bool = False
    landed: list[dict[str, Any]] | None = None
    patch: dict[str, Any] = field(default_factory=dict)


def _execute_twice(hook: CelonisHook, files: dict[str, Path]) -> None:
    job = hook.create_job("twice", "DELTA", keys=["id"])
    hook.upload_chunk(job["id"], files["decimal"])
    hook.execute_job(job["id"])
    hook.execute_job(job["id"])


def _list_jobs(hook: CelonisHook, _files: dict[str, Path]) -> None:
    hook.list_jobs()


def _conn(**fields_and_extra: Any) -> dict[str, Any]:
    return {"host": "https://team.eu-1.celonis.cloud", "password": "k" * 20, **fields_and_extra}


CASES: list[Case] = [
    # -- parameters -------------------------------------------------------------------------------
    Case("unknown-job-type", "operator", {"source": "@csv@", "job_type": "MERGE"},
         ("job_type must be one of DELTA, REPLACE, got 'MERGE'",)),
    Case("keys-not-in-data", "operator", {"source": "@csv@", "keys": ["order_id"]},
         ("source: key column(s) 'order_id' not found; columns are ['id', 'name']",)),
    Case("chunk-over-1-gib", "operator", {"source": "@csv@", "chunk_size_bytes": 2 * 1024**3},
         ("chunk_size_bytes=2147483648 is over Celonis' limit of 1 GiB",)),
    Case("chunk-below-minimum", "operator", {"source": "@csv@", "chunk_size_bytes": 1000},
         ("chunk_size_bytes=1000 is below the minimum of 65536 bytes",)),
    Case("neither-source", "operator", {"keys": ["id"]},
         ("Give source (rows to upsert), deleted_source (rows to delete), or both",)),
    Case("deleted-source-without-keys", "operator", {"deleted_source": "@csv@"},
         ("deleted_source needs keys: Celonis deletes rows by key",)),
    Case("deleted-source-with-replace", "operator",
         {"source": "@csv@", "deleted_source": "@csv@", "keys": ["id"], "job_type": "REPLACE"},
         ("deleted_source makes no sense with job_type REPLACE",)),
    Case("unknown-file-type", "operator", {"source": "@csv@", "file_type": "XLSX"},
         ("file_type must be one of PARQUET, CSV, got 'XLSX'",)),
    Case("unknown-upsert-strategy", "operator", {"source": "@csv@", "keys": ["id"], "upsert_strategy": "OVERWRITE"},
         ("upsert_strategy must be one of UPSERT_WITH_UNCHANGED_METADATA, UPSERT_WITH_NULLIFICATION, "
          "got 'OVERWRITE'",)),
    Case("table-schema-missing-column", "operator",
         {"source": "@csv@", "table_schema": [{"columnName": "price", "columnType": "FLOAT"}]},
         ("table_schema: column 'price' is not in the source",)),
    Case("table-schema-unknown-type", "operator",
         {"source": "@csv@", "table_schema": [{"columnName": "name", "columnType": "VARCHAR"}]},
         ("table_schema: column 'name' has columnType 'VARCHAR'; use one of INTEGER, DATE, TIME, DATETIME, "
          "FLOAT, BOOLEAN, STRING",)),
    Case("unknown-file-extension", "operator", {"source": "@xlsx@"},
         ("cannot tell the file format from the name; use .parquet, .csv or .jsonl",)),
    # -- data -------------------------------------------------------------------------------------
    Case("missing-file", "operator", {"source": "@dir@/nope.csv"}, ("source: '@dir@/nope.csv' does not exist",)),
    Case("empty-file", "operator", {"source": "@empty@", "on_empty": "fail"},
         ("source @empty@ (every file empty) has no rows; nothing to push (on_empty='fail')",)),
    Case("header-only", "operator", {"source": "@header_only@", "on_empty": "fail"},
         ("source @header_only@ has no rows; nothing to push",)),
    Case("dataframe-duplicate-columns", "operator", {"source": pd.DataFrame([[1, "a"]], columns=["id", "id"])},
         ("source: the DataFrame has columns of one name (Duplicate column names found: ['id', 'id']): "
          "rename them",)),
    Case("dataframe-mixed-object-column", "operator",
         {"source": pd.DataFrame({"id": [1, 2], "name": pd.Series([1, "b"], dtype=object)})},
         ("source: the DataFrame cannot be converted: Conversion failed for column name with type object: "
          "Could not convert 'b' with type str: tried to convert to int64; an object column must hold one kind "
          "of value: cast it",)),
    Case("tsv-passthrough-without-separator", "operator", {"source": "@tabbed@", "file_type": "CSV"},
         ("source: @tabbed@ is tab-separated (.tsv) and Celonis splits on commas unless told: give "
          "csv_parsing_options={'separatorSequence': '\\t'}",)),
    Case("malformed-csv-row", "operator", {"source": "@malformed@"},
         ("source: @malformed@: line 4 has 3 fields, but the header has 2: '3,c,extra'",)),
    # Type drift is not an error (docs/data-types.md): the column is widened and the file read again.
    Case("mixed-types-across-blocks", "operator", {"source": "@mixed@", "keys": ["id"]},
         ("Type drift: column 'amount' widened from int64 to string: source: @mixed@: column 'amount' holds "
          "'12,5 EUR' in row 300, which does not fit the type read from the rows before it",),
         patch={"CSV_BLOCK_BYTES": 1024}, no_job_in=None, target="drifted", succeeds=True,
         landed=[{"id": i, "amount": str(i * 3)} for i in range(1, 300)] + [{"id": 300, "amount": "12,5 EUR"}]),
    Case("nested-column", "operator", {"source": "@nested@"},
         ("source: column 'address' is nested (struct<city: string>); the Data Push API takes flat columns "
          "only", "DataIngestionOperator")),
    Case("case-insensitive-duplicate-names", "operator", {"source": "@dup_names@"},
         ("source: columns 'id' and 'ID' clash: Celonis column names are case-insensitive",)),
    Case("empty-column-name", "operator", {"source": "@empty_name@"},
         ("source: ", "empty_name.csv: column 2 has an empty name",)),
    Case("header-ends-in-separator", "operator", {"source": "@trailing_separator@"},
         ("source: ", "trailing_separator.csv: column 3 has an empty name (the header line ends in a separator)",)),
    Case("header-ends-in-separator-csv", "operator", {"source": "@trailing_separator@", "file_type": "CSV"},
         ("source: ", "trailing_separator.csv: column 3 has an empty name (the header line ends in a separator)",)),
    Case("name-celonis-rejects", "operator", {"source": "@bad_name@"},
         ("source: column name 'amount ($)' has characters Celonis rejects: use letters, digits, '_' and '-' "
          "only",)),
    Case("column-name-with-space", "operator", {"source": "@space_name@"},
         ("source: column name 'order id' has characters Celonis rejects: use letters, digits, '_' and '-'",)),
    Case("null-key", "operator", {"source": "@null_key@", "keys": ["id"]},
         ("source @null_key@: key column 'id' is NULL in row 3",)),
    Case("string-longer-than-field-length", "operator",
         {"source": "@long_string@", "table_schema": [{"columnName": "name", "columnType": "STRING", "fieldLength": 5}]},
         ("source @long_string@, rows 1-3: column 'name' holds a string of 11 characters in row 2, longer "
          "than its fieldLength 5 (table_schema, else fallback_varchar_length); Celonis would cut it",)),
    Case("string-longer-than-fallback", "operator", {"source": "@long_string@", "fallback_varchar_length": 5},
         ("column 'name' holds a string of 11 characters in row 2, longer than its fieldLength 5 "
          "(table_schema, else fallback_varchar_length); Celonis would cut it",)),
    Case("timestamp-before-1400", "operator", {"source": "@old_date@"},
         ("source @old_date@, rows 1-2: column 'booked' holds a date in the year 1200 in row 2; Celonis keeps "
          "dates of the years 1400-9999 only and would store NULL",)),
    Case("date-after-9999", "operator", {"source": "@future_date@"},
         ("column 'due' holds a date in the year 10000 in row 1; Celonis keeps dates of the years 1400-9999",)),
    Case("decimal-sent-as-float", "operator", {"source": "@decimal@", "keys": ["id"]},
         ("column 'amount' is decimal128(10, 2): sent as FLOAT (Data Push has no decimal type)",),
         no_job_in=None, target="decimals", succeeds=True,
         landed=[{"id": 1, "amount": 12.34}, {"id": 2, "amount": -0.5}]),
    Case("corrupt-parquet", "operator", {"source": "@corrupt@"},
         ("source: cannot read parquet file @corrupt@: Parquet magic bytes not found",)),
    Case("directory-without-files", "operator", {"source": "@empty_dir@"},
         ("source: the folder '@empty_dir@' holds no file",)),
    Case("glob-matching-nothing", "operator", {"source": "@dir@/nope-*.csv"},
         ("source: the pattern '@dir@/nope-*.csv' matches no file",)),
    Case("files-with-different-columns", "operator", {"source": ["@csv@", "@other_columns@"]},
         ("source: @other_columns@ has columns ['id', 'label'], but @csv@ has ['id', 'name']",)),
    Case("files-with-different-types", "operator", {"source": ["@csv@", "@other_types@"]},
         ("source: column 'id' widened from int64 to string",),
         no_job_in=None, target="widened", succeeds=True,
         landed=[{"id": "1", "name": "a"}, {"id": "2", "name": "b"}, {"id": "x3", "name": "c"}]),
    Case("table-name-celonis-rejects", "operator", {"source": "@csv@"},
         ("target_table 'bad table!' is not a valid Celonis table name: use letters, digits, '_' and '-' only",),
         target="bad table!"),
    Case("table-name-celonis-rejects-csv", "operator", {"source": "@csv@", "file_type": "CSV"},
         ("target_table 'bad table!' is not a valid Celonis table name: use letters, digits, '_' and '-' only",),
         target="bad table!"),
    Case("column-name-with-space-csv", "operator", {"source": "@space_name@", "file_type": "CSV"},
         ("source: ", "space_name.csv: column name 'order id' has characters Celonis rejects: use letters, digits, "
          "'_' and '-'",)),
    # pass-through sends the header as written: a space around a name is not stripped into another name
    Case("column-name-with-leading-space-csv", "operator", {"source": "@padded_name@", "file_type": "CSV"},
         ("source: ", "padded_name.csv: column name ' amount' has characters Celonis rejects",)),
    # -- connection (read by the hook before any request) ----------------------------------------
    Case("no-host", "connection", _conn(host=""), ("Connection 'bad_conn': host is empty; set it to your team URL",)),
    Case("host-with-path", "connection", _conn(host="https://team.eu-1.celonis.cloud/integration/api"),
         ("Connection 'bad_conn': host must be the team URL without a path", "got path '/integration/api'")),
    Case("unknown-auth-type", "connection", _conn(auth_type="password"),
         ("Connection 'bad_conn': unknown auth_type 'password'; use one of app_key, api_key, oauth",)),
    Case("oauth-without-client-id", "connection", _conn(auth_type="oauth"),
         ("Connection 'bad_conn': auth_type 'oauth' needs the OAuth client id in the login field",)),
    Case("plain-http-to-remote-host", "connection", _conn(host="http://team.eu-1.celonis.cloud"),
         ("Connection 'bad_conn': plain http to team.eu-1.celonis.cloud would send the key unencrypted",)),
    Case("non-numeric-timeout", "connection", _conn(timeout="soon"),
         ("Connection 'bad_conn': timeout must be a number of seconds, got 'soon'",)),
    Case("empty-key", "connection", _conn(password=""), ("Connection 'bad_conn': the key (password field) is empty",)),
    # -- server answers ---------------------------------------------------------------------------
    Case("401-wrong-key", "operator", {"source": "@csv@", "celonis_conn_id": "wrongkey"},
         ("failed (HTTP 401): Invalid credentials (check the key or OAuth client in the Celonis connection)",)),
    Case("403-pool-not-allowed", "operator", {"source": "@csv@", "data_pool_id": "forbidden-pool"},
         ("failed (HTTP 403): Not allowed to access data pool forbidden-pool",),
         no_job_in=(POOL, "forbidden-pool")),
    Case("404-unknown-pool", "operator", {"source": "@csv@", "data_pool_id": "pool-2"},
         ("list_jobs (GET /data-ingestion/api/v1/data-push/pool-2/jobs/) failed (HTTP 404): Data pool pool-2 "
          "not found",),
         emulator={"pools": ("pool-1",)}),
    Case("409-execute-twice", "hook", _execute_twice,
         ("execute_job (POST /data-ingestion/api/v1/data-push/pool-1/jobs/", "failed (HTTP 409): Job ",
          "; only NEW jobs can be executed"),
         no_job_in=None),
    Case("413-chunk-too-large", "operator", {"source": "@big@", "keys": ["id"], "chunk_size_bytes": 4 * 1024**2},
         ("upload_chunk (POST /data-ingestion/api/v1/data-push/pool-1/jobs/",
          "failed (HTTP 413): Chunk exceeds the maximum size of 200000 bytes"),
         emulator={"max_chunk_bytes": 200_000}),
    Case("html-error-page", "operator", {"source": "@csv@"},
         ("list_jobs (GET /data-ingestion/api/v1/data-push/pool-1/jobs/) failed (HTTP 500): an HTML page "
          "instead of a JSON answer (title: 502 Bad Gateway)",),
         faults=({"method": "GET", "path": "/jobs/$", "status": 500, "body": HTML_PAGE,
                  "headers": {"Content-Type": "text/html"}, "count": 5},)),
    Case("invalid-json-answer", "operator", {"source": "@csv@"},
         ("create_job (POST /data-ingestion/api/v1/data-push/pool-1/jobs/) failed (HTTP 200): invalid JSON "
          "in the answer: {\"id\": \"job-1\", \"status\": NEW",),
         faults=({"method": "POST", "path": "/jobs/$", "status": 200, "body": '{"id": "job-1", "status": NEW',
                  "headers": {"Content-Type": "application/json"}},)),
    Case("html-login-page-with-200", "hook", _list_jobs,
         ("list_jobs (GET /data-ingestion/api/v1/data-push/pool-1/jobs/) failed (HTTP 200): invalid JSON in "
          "the answer: an HTML page instead of a JSON answer (title: 502 Bad Gateway)",),
         faults=({"method": "GET", "path": "/jobs/$", "status": 200, "body": HTML_PAGE,
                  "headers": {"Content-Type": "text/html; charset=utf-8"}},)),
    Case("error-body-not-json", "hook", _list_jobs,
         ("list_jobs (GET /data-ingestion/api/v1/data-push/pool-1/jobs/) failed (HTTP 400): Bad Request: "
          "oops, not JSON {",),
         faults=({"method": "GET", "path": "/jobs/$", "status": 400, "body": "oops, not JSON {",
                  "headers": {"Content-Type": "application/json"}},)),
]  # fmt: skip


def write_files(root: Path) -> dict[str, Path]:
    """Every input file a case can name as ``@name@``."""
    files: dict[str, Path] = {"dir": root}

    def text(name: str, content: str) -> None:
        files[name.split(".")[0]] = root / name
        (root / name).write_text(content)

    def parquet(name: str, table: pa.Table) -> None:
        files[name.split(".")[0]] = root / name
        pq.write_table(table, root / name)

    text("csv.csv", "id,name\n1,a\n2,b\n")
    text("tabbed.tsv", "id\tname\n1\ta\n")
    text("xlsx.xlsx", "not a spreadsheet")
    text("empty.csv", "")
    text("header_only.csv", "id,name\n")
    text("malformed.csv", "id,name\n1,a\n2,b\n3,c,extra\n4,d\n")
    text("mixed.csv", "id,amount\n" + "".join(f"{i},{i * 3}\n" for i in range(1, 300)) + '300,"12,5 EUR"\n')
    text("nested.jsonl", '{"id": 1, "address": {"city": "Munich"}}\n')
    text("dup_names.csv", "id,ID\n1,2\n")
    text("empty_name.csv", "id,,x\n1,2,3\n")
    text("bad_name.csv", "id,amount ($)\n1,2\n")
    text("space_name.csv", "id,order id\n1,2\n")
    text("trailing_separator.csv", "id,name,\n1,a,\n2,b,\n")
    text("padded_name.csv", "id, amount\n1,2\n")
    text("null_key.csv", "id,name\n1,a\n2,b\n,c\n")
    text("long_string.csv", "id,name\n1,short\n2,much longer\n3,ok\n")
    text("old_date.csv", "id,booked\n1,2024-05-01 10:00:00\n2,1200-05-01 10:00:00\n")
    text("other_columns.csv", "id,label\n3,c\n")
    text("other_types.csv", "id,name\nx3,c\n")
    text("corrupt.parquet", "PAR1 this is not really parquet")
    days_to_10000 = (dt.date(9999, 12, 31) - dt.date(1970, 1, 1)).days + 1
    parquet("future_date.parquet", pa.table({"due": pa.array([days_to_10000], pa.int32()).cast(pa.date32())}))
    parquet(
        "decimal.parquet",
        pa.table(
            {"id": [1, 2], "amount": pa.array([Decimal("12.34"), Decimal("-0.50")], pa.decimal128(10, 2))}
        ),
    )
    # ~1 MB of incompressible strings: more than the 200 kB the 413 emulator accepts per chunk.
    parquet(
        "big.parquet",
        pa.table({"id": list(range(16_000)), "v": [secrets.token_hex(32) for _ in range(16_000)]}),
    )
    (root / "empty_dir").mkdir()
    files["empty_dir"] = root / "empty_dir"
    return files


def fill(template: str, files: dict[str, Path]) -> str:
    """``template`` with each ``@name@`` replaced by the path of input file ``name``."""
    for name in sorted(files, key=len, reverse=True):
        template = template.replace(f"@{name}@", str(files[name]))
    return template


def fill_args(value: Any, files: dict[str, Path]) -> Any:
    """Operator arguments with the input files' paths filled into every string (also inside lists)."""
    if isinstance(value, str):
        return fill(value, files)
    if isinstance(value, list):
        return [fill_args(item, files) for item in value]
    if isinstance(value, dict):
        return {key: fill_args(item, files) for key, item in value.items()}
    return value


def seed(emu: Any) -> None:
    """Put a known row into the target table, straight into the emulator's DuckDB."""
    cur = emu.state.tables.cursor()
    try:
        cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{POOL}"')
        cur.execute(f'CREATE TABLE "{POOL}"."{TABLE}" (id BIGINT, name VARCHAR)')
        cur.execute(f'INSERT INTO "{POOL}"."{TABLE}" VALUES (0, \'seed\')')
    finally:
        cur.close()


def test_catalog_size() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(
    case: Case,
    emulator: Any,
    celonis_emulator_factory: Callable[..., Any],
    make_dag: Callable[..., Any],
    airflow_conn: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    files = write_files(tmp_path)
    expected = tuple(fill(e, files) for e in case.expect)
    if case.kind == "connection":
        with pytest.raises(CelonisError) as raised:
            _ = CelonisHook(airflow_conn("bad_conn", **case.args)).config
        for part in expected:
            assert part in str(raised.value)
        return

    emu = emulator
    if case.emulator is not None:
        keys = ("app-key-0123456789=pool-1,pool-2,p", ADMIN_KEY)
        emu = celonis_emulator_factory(app_keys=keys, job_duration=0.3, **case.emulator)
    for conn_id, key in (("celonis_default", "app-key-0123456789"), ("wrongkey", WRONG_KEY)):
        airflow_conn(conn_id, host=emu.url, password=key, data_pool_id=POOL, retries=1)
    landed = EmulatorClient(emu, ADMIN_KEY)
    seed(emu)
    for fault in case.faults:
        landed.fault(**fault)
    for name, value in case.patch.items():
        monkeypatch.setattr(text_read, name, value)

    if case.kind == "hook":
        with pytest.raises(CelonisError) as raised:
            case.args(CelonisHook("celonis_default", retry_policy=FAST), files)
        output = str(raised.value)
    else:
        kwargs = fill_args(case.args, files)
        run = make_dag(target_table=case.target, poll_interval=0.2, **kwargs).test()
        captured = capsys.readouterr()
        output = captured.out + caplog.text  # the data path logs through module loggers
        assert task_states(run) == {"push": "success" if case.succeeds else "failed"}, output[-3000:]
    for part in expected:
        assert part in output, f"{part!r} not in the task's output:\n{output[-3000:]}"
    assert WRONG_KEY not in output
    assert "app-key-0123456789" not in output
    assert ADMIN_KEY not in output

    landed.session.delete(f"{emu.url}/emulator/api/faults", timeout=10)
    for pool in case.no_job_in or ():
        assert landed.jobs(pool) == [], f"a job was left in {pool}"
    assert landed.rows(TABLE) == SEED, "the pre-seeded table changed"
    if case.landed is not None:
        assert sorted(landed.rows(case.target), key=lambda r: r["id"]) == case.landed
