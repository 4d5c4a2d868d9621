"""SqlToCelonisOperator through real Airflow (dag.test) from SQLite and a real PostgreSQL into the emulator.

What landed is read back as parquet from the emulator's inspection endpoint and compared column by column,
sorted by id, with Arrow (not JSON), so every value and every NULL is checked.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import requests

from airflow_provider_celonis.hooks.errors import CelonisConfigError
from airflow_provider_celonis.transfers import sql_to_celonis
from airflow_provider_celonis.transfers.sql_to_celonis import SqlToCelonisOperator
from tests.helpers import ADMIN_KEY, POOL, EmulatorClient, task_states, xcom
from tests.transfers.conftest import PostgresServer

MILLION = 1_000_000
MakeDag = Callable[..., Any]


def run_push(make_dag: MakeDag, conn_id: str, sql: str, table: str, **kwargs: Any) -> Any:
    """Run a DAG whose ``push`` task moves ``sql``'s rows into ``table`` (REPLACE unless ``kwargs`` say)."""
    kwargs = {"job_type": "REPLACE", "poll_interval": 0.2, **kwargs}
    dag = make_dag(SqlToCelonisOperator, sql_conn_id=conn_id, sql=sql, target_table=table, **kwargs)
    return dag.test()


def landed_table(emu: Any, table: str) -> pa.Table:
    r = requests.get(
        f"{emu.url}/emulator/api/pools/{POOL}/tables/{table}.parquet",
        headers={"Authorization": f"AppKey {ADMIN_KEY}"},
        timeout=120,
    )
    r.raise_for_status()
    return pq.read_table(io.BytesIO(r.content))


def assert_same_rows(got: pa.Table, expected: pa.Table) -> None:
    """Equal row for row after sorting by id; expected columns are cast to the landed (Celonis) types."""
    assert [n.lower() for n in got.column_names] == [n.lower() for n in expected.column_names]
    assert got.num_rows == expected.num_rows
    got = got.sort_by("id")
    expected = expected.sort_by("id")
    for name, column in zip(expected.column_names, got.columns, strict=True):
        want = expected.column(name).cast(column.type)
        assert column.combine_chunks().equals(want.combine_chunks()), f"column {name} differs"


@pytest.fixture
def sqlite_conn(airflow_conn: Callable[..., str], tmp_path: Path) -> Callable[[str], Path]:
    """A SQLite file DB registered as connection ``sqlite_src``; ``sqlite_conn(script)`` fills it."""
    path = tmp_path / "source.db"
    airflow_conn("sqlite_src", "sqlite", host=str(path))

    def create(script: str) -> Path:
        with sqlite3.connect(path) as db:
            db.executescript(script)
        return path

    return create


@pytest.fixture
def pg_conn(postgres: PostgresServer, airflow_conn: Callable[..., str]) -> PostgresServer:
    """The PostgreSQL server, registered as connection ``pg_src``."""
    airflow_conn("pg_src", **postgres.conn_fields())
    return postgres


def test_source_is_refused_and_sql_is_templated() -> None:
    with pytest.raises(Exception, match="do not pass `source`"):
        SqlToCelonisOperator(task_id="t", sql_conn_id="x", sql="SELECT 1", target_table="t", source="a.csv")
    assert "sql" in SqlToCelonisOperator.template_fields
    assert SqlToCelonisOperator.template_ext == (".sql",)


# -- SQLite ----------------------------------------------------------------------------------------


@pytest.mark.usefixtures("celonis_conn")
def test_sqlite_types_nulls_and_batches(make_dag: MakeDag, emulator: Any, sqlite_conn: Any) -> None:
    sqlite_conn(
        """
        CREATE TABLE t (id INTEGER, amount REAL, name TEXT, empty TEXT, mixed);
        INSERT INTO t VALUES (1, 1.5, 'ä "quoted"', NULL, 1), (2, NULL, 'line
break', NULL, 'two'), (3, -2.25, NULL, NULL, 3.5);
        """
        + "".join(f"INSERT INTO t VALUES ({i}, {i}.5, 'n{i}', NULL, {i});" for i in range(4, 21))
    )
    run = run_push(make_dag, "sqlite_src", "SELECT * FROM t", "sq", fetch_size=3)
    assert task_states(run) == {"push": "success"}
    got = landed_table(emulator, "sq")
    amounts = [1.5, None, -2.25] + [i + 0.5 for i in range(4, 21)]
    names = ['ä "quoted"', "line\nbreak", None] + [f"n{i}" for i in range(4, 21)]
    expected = pa.table(
        {
            "id": list(range(1, 21)),
            "amount": amounts,
            "name": names,
            "empty": pa.array([None] * 20, pa.string()),
            # the first batch has an int, a str and a float: STRING; later ints become text too
            "mixed": ["1", "two", "3.5"] + [str(i) for i in range(4, 21)],
        }
    )
    assert_same_rows(got, expected)
    assert xcom(run, "push")["rows"] == 20


@pytest.mark.usefixtures("celonis_conn")
def test_sql_file_is_rendered_with_params(make_dag: MakeDag, emulator: Any, sqlite_conn: Any) -> None:
    sqlite_conn(
        "CREATE TABLE t (id INTEGER, v TEXT);"
        + "".join(f"INSERT INTO t VALUES ({i}, 'v{i}');" for i in range(10))
    )
    sql_file = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / "celonis_query_test.sql"
    sql_file.write_text("SELECT id, v FROM t WHERE id >= {{ params.low }} AND id < ?")
    try:
        sql = "celonis_query_test.sql"
        run = run_push(make_dag, "sqlite_src", sql, "rendered", parameters=[7], params={"low": 3})
    finally:
        sql_file.unlink()
    assert task_states(run) == {"push": "success"}
    assert_same_rows(
        landed_table(emulator, "rendered"), pa.table({"id": [3, 4, 5, 6], "v": ["v3", "v4", "v5", "v6"]})
    )


@pytest.mark.usefixtures("celonis_conn")
def test_templated_key_string_and_a_query_with_no_new_rows(
    make_dag: MakeDag, sqlite_conn: Any, landed: EmulatorClient
) -> None:
    """keys="{{ params.k }}" is one key after rendering; an incremental DELTA query that finds no new rows
    succeeds without creating a job (status SKIPPED, 0 rows)."""
    sqlite_conn(
        "CREATE TABLE t (id INTEGER, v TEXT);"
        + "".join(f"INSERT INTO t VALUES ({i}, 'v{i}');" for i in range(5))
    )
    for low, table in ((0, "inc"), (100, "inc")):
        run = run_push(
            make_dag,
            "sqlite_src",
            f"SELECT id, v FROM t WHERE id >= {low}",
            table,
            job_type="DELTA",
            keys="{{ params.k }}",
            params={"k": "id"},
        )
        assert task_states(run) == {"push": "success"}
    assert xcom(run, "push")["status"] == "SKIPPED"
    assert xcom(run, "push")["rows"] == 0
    assert [j["keys"] for j in landed.jobs()] == [["id"]]
    assert sorted(r["id"] for r in landed.rows("inc")) == [0, 1, 2, 3, 4]


@pytest.mark.usefixtures("celonis_conn")
def test_a_replace_from_a_query_with_no_rows_never_retypes_the_table(
    make_dag: MakeDag, sqlite_conn: Any, landed: EmulatorClient
) -> None:
    """SQLite's cursor gives no column types: with no rows nothing tells them, so an empty REPLACE fails
    saying so (as a header-only CSV does) instead of emptying the table and turning ``id`` into STRING;
    with ``table_schema`` it empties the table."""
    sqlite_conn(
        "CREATE TABLE t (id INTEGER, v TEXT); INSERT INTO t VALUES (1, 'a'); CREATE TABLE e (id INTEGER, v TEXT);"
    )
    assert task_states(run_push(make_dag, "sqlite_src", "SELECT * FROM t", "zero")) == {"push": "success"}
    before = {c["name"]: c["type"] for c in landed.tables()[0]["columns"]}
    failed = run_push(make_dag, "sqlite_src", "SELECT * FROM e", "zero")
    assert task_states(failed) == {"push": "failed"}
    assert landed.rows("zero") == [{"id": 1, "v": "a"}]
    assert {c["name"]: c["type"] for c in landed.tables()[0]["columns"]} == before
    schema = [{"columnName": "id", "columnType": "INTEGER"}, {"columnName": "v", "columnType": "STRING"}]
    emptied = run_push(make_dag, "sqlite_src", "SELECT * FROM e", "zero", table_schema=schema)
    assert task_states(emptied) == {"push": "success"}
    assert landed.rows("zero") == []


def test_not_a_sql_connection_fails_before_any_job(
    make_dag: MakeDag, celonis_conn: Callable[..., str], landed: EmulatorClient
) -> None:
    run = run_push(make_dag, celonis_conn(), "SELECT 1", "nope")
    assert task_states(run) == {"push": "failed"}
    assert landed.jobs() == []


@pytest.mark.usefixtures("celonis_conn")
def test_sanitize_names_renames_query_columns(
    make_dag: MakeDag, emulator: Any, sqlite_conn: Any, landed: EmulatorClient
) -> None:
    """A query's column names follow the same rule as a file's: refused before any job, or renamed."""
    sqlite_conn("CREATE TABLE t (id INTEGER, v TEXT); INSERT INTO t VALUES (1, 'a'), (2, NULL);")
    sql = 'SELECT id, v AS "first name", v || \'!\' AS "a.b" FROM t'
    refused = run_push(make_dag, "sqlite_src", sql, "named")
    assert task_states(refused) == {"push": "failed"}
    assert landed.jobs() == []
    run = run_push(make_dag, "sqlite_src", sql, "named", sanitize_names=True)
    assert task_states(run) == {"push": "success"}
    expected = pa.table({"id": [1, 2], "first_name": ["a", None], "a_b": ["a!", None]})
    assert_same_rows(landed_table(emulator, "named"), expected)


@pytest.mark.slow
@pytest.mark.usefixtures("celonis_conn")
def test_sqlite_million_rows(make_dag: MakeDag, emulator: Any, sqlite_conn: Any) -> None:
    sqlite_conn(
        f"""
        CREATE TABLE big (id INTEGER, amount REAL, name TEXT, maybe INTEGER);
        WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {MILLION})
        INSERT INTO big SELECT g, g * 0.5, 'név-' || g, CASE WHEN g % 10 = 0 THEN NULL ELSE g END FROM s;
        """
    )
    run = run_push(make_dag, "sqlite_src", "SELECT * FROM big", "big")
    assert task_states(run) == {"push": "success"}
    g = np.arange(1, MILLION + 1, dtype=np.int64)
    expected = pa.table(
        {
            "id": g,
            "amount": g * 0.5,
            "name": pc.binary_join_element_wise("név-", pa.array(g).cast(pa.string()), ""),
            "maybe": pa.array(g, mask=g % 10 == 0),
        }
    )
    assert_same_rows(landed_table(emulator, "big"), expected)


# -- PostgreSQL ------------------------------------------------------------------------------------

PG_BIG = """
CREATE TABLE IF NOT EXISTS {table} AS
SELECT g::bigint AS id,
       g * 0.5::float8 AS amount,
       ((g % 1000) / 100.0)::numeric(12, 2) AS price,
       'név-' || g AS name,
       g % 3 = 0 AS flag,
       timestamp '2024-01-01' + g * interval '1 second' AS ts,
       date '2024-01-01' + (g % 365)::int AS day,
       CASE WHEN g % 10 = 0 THEN NULL ELSE g::int END AS maybe
FROM generate_series(1, {rows}) AS g
"""


def pg_expected(rows: int) -> pa.Table:
    g = np.arange(1, rows + 1, dtype=np.int64)
    base_s = np.datetime64("2024-01-01T00:00:00", "s")
    return pa.table(
        {
            "id": g,
            "amount": g * 0.5,
            "price": (g % 1000) / 100.0,
            "name": pc.binary_join_element_wise("név-", pa.array(g).cast(pa.string()), ""),
            "flag": g % 3 == 0,
            "ts": pa.array(base_s + g.astype("timedelta64[s]")),
            "day": pa.array(np.datetime64("2024-01-01", "D") + (g % 365).astype("timedelta64[D]")),
            "maybe": pa.array(g, mask=g % 10 == 0),
        }
    )


def pg_table(pg: PostgresServer, rows: int) -> str:
    table = f"big_{rows}"
    pg.execute(PG_BIG.format(table=table, rows=rows))
    return table


@pytest.mark.usefixtures("celonis_conn")
def test_postgres_types_and_connection_closed(
    make_dag: MakeDag, emulator: Any, pg_conn: PostgresServer
) -> None:
    table = pg_table(pg_conn, 2_500)
    pg_conn.execute(
        "CREATE TABLE IF NOT EXISTS odd AS SELECT 1::bigint AS id, NULL::numeric AS n, NULL::text AS t, "
        "gen_random_uuid() AS u, '{\"a\": 1}'::jsonb AS j, timestamptz '2024-05-01 12:00:00+02' AS tz"
    )
    run = run_push(make_dag, "pg_src", f"SELECT * FROM {table}", "pg_small", fetch_size=1000)
    assert task_states(run) == {"push": "success"}
    assert_same_rows(landed_table(emulator, "pg_small"), pg_expected(2_500))
    run = run_push(make_dag, "pg_src", "SELECT * FROM odd", "pg_odd")
    assert task_states(run) == {"push": "success"}
    [row] = EmulatorClient(emulator, ADMIN_KEY).rows("pg_odd")
    # described types win over an all-NULL first batch (numeric -> FLOAT); uuid/jsonb as text; UTC instants
    assert row["n"] is None
    assert row["t"] is None
    assert len(row["u"]) == 36
    assert json.loads(row["j"]) == {"a": 1}
    assert row["tz"].startswith("2024-05-01T10:00:00")
    tables = {t["name"]: t for t in EmulatorClient(emulator, ADMIN_KEY).tables()}
    assert {c["name"]: c["type"] for c in tables["pg_odd"]["columns"]}["n"] == "DOUBLE"
    assert pg_conn.other_backends() == 0


#: Types whose Python value (psycopg's) is not what PostgreSQL holds: they land as the server's text.
PG_AS_TEXT = (
    "SELECT 1 AS id, "
    """'{"name": "Müller", "amount": 1.50, "big": 12345678901234567.89}'::jsonb AS jb, """
    """'null'::json AS jnull, '"abc"'::json AS jstr, '{"a": 1,  "a": 2}'::json AS jdup, """
    "interval '1 year 2 mons 3 days 04:05:06.789' AS iv, interval '1 mon' AS mon, interval '30 days' AS days, "
    "timetz '12:00:00+02' AS tt, 1234.56::money AS price, inet '::ffff:1.2.3.4' AS ip, "
    "ARRAY[1.50, 2]::numeric[] AS nums, ARRAY[timestamp '2024-01-01 10:00:00'] AS stamps, int4range(1, 5) AS r"
)


def server_text(postgres: PostgresServer, names: list[str]) -> dict[str, str]:
    """``PG_AS_TEXT``'s columns as the server writes them (each type's output function)."""
    formatted = ", ".join("format('%s', " + name + ")" for name in names)
    [texts] = postgres.execute(f"SELECT {formatted} FROM ({PG_AS_TEXT}) AS q")
    return dict(zip(names, texts, strict=True))


@pytest.mark.usefixtures("celonis_conn")
@pytest.mark.parametrize("cursor", ["default", "dictcursor"])
def test_postgres_values_land_as_the_database_holds_them(
    make_dag: MakeDag, emulator: Any, postgres: PostgresServer, airflow_conn: Callable[..., str], cursor: str
) -> None:
    """json re-serialised (its null made NULL), interval months made 30 days, a time's offset dropped, money
    refused, arrays re-rendered: each now lands as PostgreSQL's own text. With ``{"cursor": "dictcursor"}``
    rows are mappings, and every value landed as its column's name."""
    extra = {} if cursor == "default" else {"cursor": cursor}
    airflow_conn("pg_text", **postgres.conn_fields(), **extra)
    run = run_push(make_dag, "pg_text", PG_AS_TEXT, "pg_text", keys=["id"], job_type="DELTA")
    assert task_states(run) == {"push": "success"}
    [row] = EmulatorClient(emulator, ADMIN_KEY).rows("pg_text")
    names = [name for name in row if name != "id"]
    texts = server_text(postgres, names)
    assert {n: row[n] for n in names} == texts
    assert row["jnull"] == "null"  # JSON's null, not SQL's NULL
    assert (row["mon"], row["days"]) == ("1 mon", "30 days")
    assert row["tt"] == "12:00:00+02"
    assert postgres.other_backends() == 0


def test_postgres_rows_through_psycopg2_land_as_the_database_holds_them(postgres: PostgresServer) -> None:
    """The Postgres hook uses psycopg2 with SQLAlchemy 1.x: its type casters are replaced per cursor too."""
    import psycopg2

    class Psycopg2Hook:
        conn_id = "pg2"

        def get_conn(self) -> Any:
            return psycopg2.connect(
                host=postgres.host, port=postgres.port, user=postgres.user, dbname=postgres.dbname
            )

    stream = sql_to_celonis.SqlRowStream(Psycopg2Hook(), PG_AS_TEXT, None, 10, logging.getLogger("test"))
    source = stream.open()
    [row] = [r for batch in source.batches() for r in batch.to_pylist()]
    names = [name for name in row if name != "id"]
    texts = server_text(postgres, names)
    assert {n: row[n] for n in names} == texts
    assert stream.conn is None


@pytest.mark.usefixtures("celonis_conn")
def test_a_numeric_outside_a_doubles_range_fails_before_any_job(
    make_dag: MakeDag, landed: EmulatorClient, pg_conn: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """1e400 landed as Infinity and 1e-400 as 0.0; now the push fails naming the column and the row."""
    sql = (
        "SELECT i AS id, CASE WHEN i = 3 THEN 1e400 ELSE i END::numeric AS n FROM generate_series(1, 5) AS i"
    )
    run = run_push(make_dag, "pg_src", sql, "pg_huge", fetch_size=2)
    assert task_states(run) == {"push": "failed"}
    output = capsys.readouterr().out
    assert "column 'n' was typed double" in output
    assert "row 3 holds a value that does not fit" in output
    assert "Column 'n' is a decimal: sent as FLOAT" in output
    assert landed.jobs() == []
    assert pg_conn.other_backends() == 0


@pytest.mark.usefixtures("celonis_conn")
def test_postgres_failure_after_open_closes_the_connection(
    make_dag: MakeDag, landed: EmulatorClient, pg_conn: PostgresServer
) -> None:
    table = pg_table(pg_conn, 2_500)
    # The query runs and its first rows are fetched, then validation fails (unknown key): no job, no leak.
    run = run_push(make_dag, "pg_src", f"SELECT * FROM {table}", "pg_bad", keys=["nope"])
    assert task_states(run) == {"push": "failed"}
    assert landed.jobs() == []
    assert pg_conn.other_backends() == 0


@pytest.mark.slow
@pytest.mark.usefixtures("celonis_conn")
def test_postgres_million_rows(make_dag: MakeDag, emulator: Any, pg_conn: PostgresServer) -> None:
    table = pg_table(pg_conn, MILLION)
    run = run_push(make_dag, "pg_src", f"SELECT * FROM {table}", "pg_big")
    assert task_states(run) == {"push": "success"}
    assert xcom(run, "push")["rows"] == MILLION
    assert_same_rows(landed_table(emulator, "pg_big"), pg_expected(MILLION))
    assert pg_conn.other_backends() == 0


# -- memory ----------------------------------------------------------------------------------------


@pytest.fixture
def emulator_process(tmp_path: Path) -> Iterator[Any]:
    """An emulator in its own process, so that its memory (DuckDB) does not count as the operator's."""
    from types import SimpleNamespace

    from airflow_provider_celonis.emulator.testing import emulator_process as child_emulator

    options = ["--data-dir", str(tmp_path / "emu"), "--app-key", "app-key-0123456789", "--app-key", ADMIN_KEY]
    with child_emulator(*options, "--job-duration", "0") as (_, url):
        yield SimpleNamespace(url=url, app_key="app-key-0123456789")


class PeakRss:
    """Samples this process' RSS every few milliseconds in a thread; ``growth`` is peak minus start."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self._stop = threading.Event()
        self.start = self.peak = 0

    def __enter__(self) -> PeakRss:
        self.start = self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 2**20


@pytest.mark.slow
def test_postgres_memory_stays_flat(
    make_dag: MakeDag, emulator_process: Any, pg_conn: PostgresServer, airflow_conn: Callable[..., str]
) -> None:
    """10x the rows must not take much more memory: rows are streamed, never held all at once."""
    url, key = emulator_process.url, emulator_process.app_key
    airflow_conn("celonis_default", host=url, password=key, data_pool_id=POOL)
    small, big = pg_table(pg_conn, 100_000), pg_table(pg_conn, MILLION)
    # Warm up imports, caches and allocator arenas first, so that neither measured run pays for them.
    assert task_states(run_push(make_dag, "pg_src", f"SELECT * FROM {small}", "warm")) == {"push": "success"}
    growth = {}
    for table in (small, big):
        with PeakRss() as rss:
            run = run_push(make_dag, "pg_src", f"SELECT * FROM {table}", table)
        assert task_states(run) == {"push": "success"}
        growth[table] = rss.growth_mb
    print(f"RSS growth: {growth}")
    # Holding 1M rows as Python tuples would take ~10x the memory of 100k; streaming keeps it level.
    # Allocator noise and Arrow pools make a few tens of MB normal: the margin is generous.
    assert growth[big] <= growth[small] * 1.5 + 100, growth


def test_kill_cancels_the_query_and_closes_the_connection(sqlite_conn: Any) -> None:
    """``on_kill`` (the task was stopped mid-push) interrupts the query and closes cursor and connection."""
    sqlite_conn("CREATE TABLE t (id INTEGER);" + "".join(f"INSERT INTO t VALUES ({i});" for i in range(10)))
    op = SqlToCelonisOperator(
        task_id="t", sql_conn_id="sqlite_src", sql="SELECT id FROM t", target_table="t", fetch_size=3
    )
    source = op._open("source", None)
    assert source.schema == pa.schema([("id", pa.int64())])
    stream = op._stream
    assert stream is not None
    conn = stream.conn
    op.on_kill()
    assert op._stream is None
    assert stream.conn is None
    assert stream.cursor is None
    with pytest.raises(sqlite3.ProgrammingError):
        conn.execute("SELECT 1")


def test_a_later_row_that_does_not_fit_names_the_column_and_closes(sqlite_conn: Any) -> None:
    sqlite_conn("CREATE TABLE t (id INTEGER, n INTEGER); INSERT INTO t VALUES (1, 1), (2, 2), (3, 'x');")
    op = SqlToCelonisOperator(
        task_id="t", sql_conn_id="sqlite_src", sql="SELECT * FROM t", target_table="t", fetch_size=2
    )
    source = op._open("source", None)
    stream = op._stream
    assert stream is not None
    with pytest.raises(Exception, match=r"column 'n'.*CAST"):
        list(source.batches())
    assert stream.conn is None


def test_a_column_null_in_the_first_fetch_is_typed_from_the_rows_after(
    sqlite_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sparse column (NULL in the first ``fetch_size`` rows) was typed STRING, and its later integers
    landed as text; more rows are fetched to type it."""
    sqlite_conn(
        "CREATE TABLE t (id INTEGER, coupon INTEGER, note TEXT);"
        + "".join(f"INSERT INTO t VALUES ({i}, {'NULL' if i < 7 else i * 10}, NULL);" for i in range(1, 11))
    )
    op = SqlToCelonisOperator(
        task_id="t", sql_conn_id="sqlite_src", sql="SELECT * FROM t", target_table="t", fetch_size=2
    )
    source = op._open("source", None)
    assert [str(t) for t in source.schema.types] == ["int64", "int64", "string"]  # note: NULL throughout
    got = [row for batch in source.batches() for row in batch.to_pylist()]
    assert [r["id"] for r in got] == list(range(1, 11))
    assert [r["coupon"] for r in got] == [None] * 6 + [70, 80, 90, 100]
    assert op._stream is None or op._stream.conn is None
    # The look-ahead is bounded (rows beyond the first fetch): past it the column is STRING, as before.
    monkeypatch.setattr(sql_to_celonis, "LOOK_AHEAD_ROWS", 3)
    source = op._open("source", None)
    assert [str(t) for t in source.schema.types] == ["int64", "string", "string"]
    got = [row for batch in source.batches() for row in batch.to_pylist()]
    assert [r["coupon"] for r in got] == [None] * 6 + ["70", "80", "90", "100"]


def test_sqlite_text_in_a_number_column_is_refused_not_parsed(sqlite_conn: Any) -> None:
    """A column without type affinity holds what each row was given: '0042' after numbers landed as 42.0."""
    sqlite_conn("CREATE TABLE t (id INTEGER, v); INSERT INTO t VALUES (1, 1.5), (2, 2.5), (3, '0042');")
    op = SqlToCelonisOperator(
        task_id="t", sql_conn_id="sqlite_src", sql="SELECT * FROM t", target_table="t", fetch_size=2
    )
    source = op._open("source", None)
    assert str(source.schema.field("v").type) == "double"
    with pytest.raises(CelonisConfigError, match=r"column 'v' was typed double .*row 3 .*text in a number"):
        list(source.batches())
    assert op._stream is None or op._stream.conn is None


@pytest.mark.usefixtures("celonis_conn")
def test_a_value_the_driver_cannot_read_fails_naming_where_and_closes(
    make_dag: MakeDag, landed: EmulatorClient, pg_conn: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """PostgreSQL's date 'infinity' has no Python date: the driver's bare DataError named no column or row."""
    sql = "SELECT i AS id, CASE WHEN i = 4 THEN 'infinity'::date ELSE date '2024-01-01' END AS d FROM generate_series(1, 5) AS i"
    run = run_push(make_dag, "pg_src", sql, "pg_inf", fetch_size=2)
    assert task_states(run) == {"push": "failed"}
    assert (
        "the database driver cannot read a row after the first 2: date too large" in capsys.readouterr().out
    )
    assert landed.jobs() == []
    assert pg_conn.other_backends() == 0
