"""``SqlToCelonisOperator``: stream a query's rows from any common-sql database into a Celonis table.

Rows are fetched ``fetch_size`` at a time (a server-side cursor on PostgreSQL, so the database, not the
worker, holds the result) and turned into Arrow record batches that go through the same data path as
``DataPushOperator``: size-capped parquet chunks uploaded while the next one is written. Memory follows
``fetch_size``, not the size of the result.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from airflow_provider_celonis.datapath.sources import BatchSource, named
from airflow_provider_celonis.hooks.errors import CelonisConfigError
from airflow_provider_celonis.operators.data_push import DataPushOperator
from airflow_provider_celonis.transfers.sql_types import (
    PG_TYPES,
    converter,
    infer_type,
    is_decimal_column,
    is_postgres,
    read_as_server_text,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

DEFAULT_FETCH_SIZE = 100_000
#: Rows fetched at most while a column typed from the data has no value yet (``SqlRowStream._looked_ahead``).
LOOK_AHEAD_ROWS = 50_000
_NUMERIC = 1700


class _NoError(Exception):
    """Raised by nothing: what ``_data_error`` gives for a driver without a DB-API ``DataError``."""


def _data_error(conn: Any) -> type[Exception]:
    """The connection's DB-API ``DataError`` (a value the driver cannot convert), by its module."""
    module = sys.modules.get(type(conn).__module__.split(".")[0])
    error = getattr(module, "DataError", None)
    return error if isinstance(error, type) and issubclass(error, Exception) else _NoError


def _tuples(rows: Sequence[Any], names: list[str]) -> list[Any]:
    """Rows as value sequences in the description's order: a connection may hand out mappings (a
    ``{"cursor": "dictcursor"}`` extra), whose iteration gives the column names, not the values."""
    if not rows or not isinstance(rows[0], Mapping):
        return list(rows)
    if len(set(names)) != len(names):
        raise CelonisConfigError(
            f"sql: the connection's cursor gives rows as mappings, which hold one value per name, and the "
            f"query has columns of the same name ({names}): alias them"
        )
    return [tuple(row[name] for name in names) for row in rows]


class SqlRowStream:
    """A query's result as a ``BatchSource``; owns the connection and cursor and closes them exactly once.

    The first ``fetch_size`` rows are fetched by ``open()`` so the schema is known before a job exists.
    """

    def __init__(self, hook: Any, sql: str, parameters: Any, fetch_size: int, log: Any) -> None:
        self.hook, self.sql, self.parameters, self.fetch_size, self.log = (
            hook,
            sql,
            parameters,
            fetch_size,
            log,
        )
        self.conn: Any = None
        self.cursor: Any = None
        self.rows = 0

    def open(self) -> BatchSource:
        self.conn = self.hook.get_conn()
        postgres = is_postgres(self.conn)
        if postgres:
            # A named cursor is a server-side cursor: the rows stay in PostgreSQL until fetched.
            self.cursor = self.conn.cursor(name=f"celonis_push_{uuid.uuid4().hex[:12]}")
            self.cursor.itersize = self.fetch_size
            read_as_server_text(self.conn, self.cursor)
        else:
            self.cursor = self.conn.cursor()
        if self.parameters is None:
            self.cursor.execute(self.sql)
        else:
            self.cursor.execute(self.sql, self.parameters)
        first = self._fetch(self.fetch_size, 0)
        description = self.cursor.description  # named psycopg2 cursors describe only after a fetch
        if not description:
            raise CelonisConfigError("sql: the statement returns no result set (is it a SELECT?)")
        names = [str(d[0]) for d in description]
        typed_by_driver = {
            i for i, d in enumerate(description) if postgres and PG_TYPES.get(d[1]) is not None
        }
        first = self._looked_ahead(_tuples(first, names), set(range(len(names))) - typed_by_driver, names)
        columns = list(zip(*first, strict=True)) if first else [() for _ in names]
        fields, converters = [], []
        for i, name in enumerate(names):
            target = PG_TYPES.get(description[i][1]) if postgres else None
            from_data = target is None
            if target is None:
                # No rows and no type from the driver (SQLite's cursor gives none): the type is unknown, and
                # an empty REPLACE must not retype the table's column as STRING (``on_empty``).
                target = infer_type(columns[i]) if first else pa.null()
            if pa.types.is_floating(target) and (
                (postgres and description[i][1] == _NUMERIC) or is_decimal_column(columns[i])
            ):
                self.log.warning(
                    "Column %r is a decimal: sent as FLOAT (Data Push has no decimal type); digits beyond a "
                    "double's ~16 are lost (CAST it to text in the query to keep every digit)",
                    name,
                )
            fields.append(pa.field(name, target))
            converters.append(converter(name, target, from_data))
        schema = pa.schema(fields)
        self.log.info("Query result columns: %s", ", ".join(f"{f.name} {f.type}" for f in schema))

        def to_batch(rows: Sequence[Sequence[Any]], first_row: int) -> pa.RecordBatch:
            cols = list(zip(*rows, strict=True))
            return pa.RecordBatch.from_arrays(
                [convert(col, first_row) for convert, col in zip(converters, cols, strict=True)],
                schema=schema,
            )

        head = to_batch(first, 1) if first else None
        self.rows = len(first)

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                if head is None:
                    return
                yield head
                while rows := self._fetch(self.fetch_size, self.rows):
                    batch = to_batch(_tuples(rows, names), self.rows + 1)
                    self.rows += len(rows)
                    yield batch
                self.log.info("Fetched %s rows from the query", f"{self.rows:,}")
            finally:
                self.close()

        return BatchSource(schema, batches, f"query on connection {self._conn_id()!r}")

    def _fetch(self, size: int, fetched: int) -> Sequence[Any]:
        """The next rows; a value the driver cannot turn into Python (PostgreSQL's date 'infinity', a year
        beyond 9999) fails naming where, not with the driver's bare message."""
        try:
            rows: Sequence[Any] = self.cursor.fetchmany(size)
            return rows
        except (_data_error(self.conn), ValueError) as exc:  # psycopg2: "year 10000 is out of range"
            raise CelonisConfigError(
                f"sql: the database driver cannot read a row after the first {fetched:,}: {exc}; CAST the "
                "column in the query (to text, or to a value within the years 1400-9999)"
            ) from exc

    def _looked_ahead(self, rows: list[Any], guessed: set[int], names: list[str]) -> list[Any]:
        """``rows``, and more of them while a column typed from the data has no value yet (a sparse column
        would otherwise be typed STRING from NULLs alone): at most ``LOOK_AHEAD_ROWS`` more, whatever
        ``fetch_size`` is, so memory stays about one fetch."""
        empty = {i for i in guessed if all(row[i] is None for row in rows)}
        if not rows or not empty:
            return rows
        unknown, fetched = set(empty), len(rows)
        while unknown and len(rows) - fetched < LOOK_AHEAD_ROWS:
            more = self._fetch(min(self.fetch_size, fetched + LOOK_AHEAD_ROWS - len(rows)), len(rows))
            if not more:
                break
            rows.extend(_tuples(more, names))
            unknown = {i for i in unknown if all(row[i] is None for row in more)}
        self.log.info(
            "Column(s) %s held no value in the first %s rows: typed from the first %s",
            ", ".join(repr(names[i]) for i in sorted(empty)),
            f"{self.fetch_size:,}",
            f"{len(rows):,}",
        )
        return rows

    def _conn_id(self) -> str:
        return str(getattr(self.hook, getattr(self.hook, "conn_name_attr", "conn_id"), "?"))

    def cancel(self) -> None:
        """Interrupt a running fetch (from ``on_kill``): the server stops the query, then we close."""
        conn = self.conn
        try:
            if conn is not None and hasattr(conn, "cancel"):
                conn.cancel()  # psycopg2 / psycopg
            elif conn is not None and hasattr(conn, "interrupt"):
                conn.interrupt()  # sqlite3
        except Exception as exc:  # noqa: BLE001 - on_kill cleans up as far as it can
            self.log.warning("Could not cancel the query: %s", exc)
        self.close()

    def close(self) -> None:
        cursor, conn, self.cursor, self.conn = self.cursor, self.conn, None, None
        for what, closable in (("cursor", cursor), ("connection", conn)):
            if closable is None:
                continue
            try:
                closable.close()
            except Exception as exc:  # noqa: BLE001 - closing a cursor of a dead connection must not hide the real error
                self.log.debug("Closing the %s failed: %s", what, exc)


class SqlToCelonisOperator(DataPushOperator):
    """Push the rows of a SQL query into a Celonis table (Data Push), streamed, never all in memory.

    Works with any connection whose hook is a common-sql ``DbApiHook`` (PostgreSQL, MySQL, Snowflake,
    SQLite, ...). Column types come from the cursor's description where the driver reports them
    (PostgreSQL type OIDs), else from the first ``fetch_size`` rows: integers, floats (decimals become
    FLOAT), booleans, dates, timestamps, strings. While a column has no value yet, up to ``LOOK_AHEAD_ROWS``
    more rows are fetched to type it; one NULL in all of them is a STRING.
    Everything else (keys, job type, chunking, waiting, deferral) is ``DataPushOperator``'s.

    :param sql_conn_id: connection to read from.
    :param sql: the query (templated), or a path to a ``.sql`` file.
    :param parameters: query parameters, passed to ``cursor.execute``.
    :param fetch_size: rows per fetch and per Arrow batch (server-side cursor ``itersize`` on PostgreSQL).
    """

    template_fields: Sequence[str] = (*DataPushOperator.template_fields, "sql", "parameters")
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {**DataPushOperator.template_fields_renderers, "sql": "sql"}

    def __init__(
        self,
        *,
        sql_conn_id: str,
        sql: str,
        parameters: Mapping[str, Any] | Sequence[Any] | None = None,
        fetch_size: int = DEFAULT_FETCH_SIZE,
        **kwargs: Any,
    ) -> None:
        if "source" in kwargs:
            raise CelonisConfigError("SqlToCelonisOperator reads its rows from `sql`; do not pass `source`")
        super().__init__(**kwargs)
        if int(fetch_size) < 1:
            raise CelonisConfigError(f"fetch_size must be at least 1, not {fetch_size}")
        self.sql_conn_id = sql_conn_id
        self.sql = sql
        self.parameters = parameters
        self.fetch_size = int(fetch_size)
        self._stream: SqlRowStream | None = None

    def get_db_hook(self) -> Any:
        from airflow.providers.common.compat.sdk import BaseHook

        try:
            from airflow.providers.common.sql.hooks.sql import DbApiHook
        except ImportError as exc:  # pragma: no cover - an install problem
            raise CelonisConfigError(
                "SqlToCelonisOperator needs apache-airflow-providers-common-sql "
                "(pip install 'airflow-provider-celonis[sql]')"
            ) from exc
        hook = BaseHook.get_hook(self.sql_conn_id)
        if not isinstance(hook, DbApiHook):
            raise CelonisConfigError(
                f"sql_conn_id={self.sql_conn_id!r} gives a {type(hook).__name__}, not a common-sql DbApiHook"
            )
        return hook

    def execute(self, context: Context) -> dict[str, Any] | None:
        try:
            return super().execute(context)
        finally:
            self._close_stream()

    def _open(self, what: str, source: Any) -> Any:
        if what != "source":
            return super()._open(what, source)
        if not str(self.sql or "").strip():
            raise CelonisConfigError("sql is empty")
        self._stream = SqlRowStream(self.get_db_hook(), self.sql, self.parameters, self.fetch_size, self.log)
        return named(self._stream.open(), what, self.sanitize_names)

    def _close_stream(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def on_kill(self) -> None:
        if self._stream is not None:
            self._stream.cancel()
            self._stream = None
        super().on_kill()
