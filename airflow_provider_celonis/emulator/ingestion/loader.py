"""Applying one ingestion file to the pool's tables: a delta load by primary key, then its child tables.

Nested columns are unnested on the fly into child tables ``<table>_<field>`` that carry the parent's
primary key as ``<table>_<pk>``. A child table with a configured primary key (as on Celonis, where the
child's key is set in the connection's table configuration) is upserted by that key; without one (lenient
profile only) the children of every parent row the file replaces are replaced with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from ..storage import UnsupportedType, find_table, infer_type, key_match, lit, q, table_columns
from .files import IngestionFile

PK_NOT_FOUND = "PK NOT FOUND IN INPUT FILE"
AGE_NOT_FOUND = "AGE COLUMN NOT FOUND IN INPUT FILE"
SCHEMA_MISMATCH = "DATAPOOL SCHEMA MISMATCH"
INTERNAL = "INTERNAL ERROR"


class IngestionFailure(Exception):
    """A file that cannot be applied; ``error_type`` is one of Celonis' monitoring error types."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def parquet_problem(path: Path) -> str | None:
    """Why a file is not an uncompressed parquet file (read from its footer), or None when it is."""
    try:
        meta = pq.ParquetFile(path).metadata
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the client's error, reported back
        return f"the object is not a readable parquet file: {exc}"
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            codec = group.column(c).compression
            if codec != "UNCOMPRESSED":
                return (
                    f"only uncompressed parquet files are accepted; column "
                    f"'{group.column(c).path_in_schema}' is compressed with {codec}"
                )
    return None


def _is_nested(duck_type: str) -> bool:
    t = duck_type.upper()
    return t.endswith("]") or t.startswith(("STRUCT", "MAP", "UNION"))


@dataclass
class _Column:
    name: str
    duck_type: str


@dataclass
class FileLoad:
    """Applying one file: the parent table by primary key, then its child tables."""

    cur: duckdb.DuckDBPyConnection
    item: IngestionFile
    keys: list[str] = field(default_factory=list)

    def describe(self, source: str) -> list[_Column]:
        rows = self.cur.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        return [_Column(str(r[0]), str(r[1])) for r in rows]

    def present_keys(self, source: str, columns: list[_Column], keys: Sequence[str], table: str) -> list[str]:
        """The file's spelling of ``keys``; PK NOT FOUND when one is absent or NULL in some row."""
        names = {c.name.lower(): c.name for c in columns}
        for key in keys:
            if key.lower() not in names:
                raise IngestionFailure(
                    PK_NOT_FOUND, f"primary key column '{key}' of '{table}' is not in the file"
                )
        found = [names[k.lower()] for k in keys]
        if found:
            nulls = " OR ".join(f"{q(k)} IS NULL" for k in found)
            missing = self._scalar(f"SELECT count(*) FROM {source} WHERE {nulls}")
            if missing:
                raise IngestionFailure(
                    PK_NOT_FOUND, f"{missing} rows of '{table}' have no value for the primary key"
                )
        return found

    def child_table(self, column: _Column) -> tuple[str, tuple[str, ...]]:
        """``<table>_<field>`` and its configured key (a failure when one is required and missing)."""
        table = f"{self.item.table}_{column.name}"
        keys = self.item.child_keys.get(table.lower(), ())
        if not keys and self.item.children_need_keys:
            raise IngestionFailure(
                SCHEMA_MISMATCH,
                f"nested field '{column.name}' needs the child table '{table}' configured with a primary key",
            )
        return table, keys

    def run(self) -> int:
        source = f"read_parquet({lit(str(self.item.path))})"
        columns = self.describe(source)
        nested = [c for c in columns if _is_nested(c.duck_type)]
        for column in nested:
            self.child_table(column)  # refuse an unconfigured child before anything is written
        self.keys = self.present_keys(source, columns, self.item.primary_keys, self.item.table)
        names = {c.name.lower(): c.name for c in columns}
        age = self.item.age_column
        if age is not None and age.lower() not in names:
            raise IngestionFailure(AGE_NOT_FOUND, f"age column '{age}' is not in the file")
        age = names[age.lower()] if age else None
        order = (f"{q(age)} DESC NULLS LAST, " if age else "") + "__pos DESC"
        self.cur.execute(
            f"CREATE OR REPLACE TEMP TABLE __ing_stage AS SELECT *, row_number() OVER () AS __pos FROM {source}"
        )
        if self.keys:  # duplicates within a file: the highest age wins, else the last row
            part = ", ".join(q(k) for k in self.keys)
            self.cur.execute(
                "CREATE OR REPLACE TEMP TABLE __ing_stage AS SELECT * EXCLUDE (__rn) FROM (SELECT *, "
                f"row_number() OVER (PARTITION BY {part} ORDER BY {order}) AS __rn FROM __ing_stage) WHERE __rn = 1"
            )
        flat = [c for c in columns if not _is_nested(c.duck_type)]
        table = self.item.table
        exprs = self._typed(table, flat, "__ing_stage")
        raw = [q(c.name) for c in nested]
        self.cur.execute(
            f"CREATE OR REPLACE TEMP TABLE __ing_rows AS SELECT {', '.join([*exprs, *raw])} FROM __ing_stage"
        )
        winners = self._update_parent(table, flat, age)
        self._insert(table, flat, winners, only_new=bool(self.keys))
        count = self._scalar(f"SELECT count(*) FROM {winners}")
        for column in nested:
            self._child(column, winners)
        return count

    def _update_parent(self, table: str, flat: Sequence[_Column], age: str | None) -> str:
        """Update the stored rows the file's rows win against; returns the table of winning rows."""
        winners = "__ing_rows"
        stored = find_table(self.cur, self.item.pool_id, table)
        if not self.keys or stored is None:
            return winners
        self._add_columns(stored, flat, "__ing_rows")
        match = key_match(self.keys)
        if age:  # a stored row with a higher age is newer: the file's row loses
            newer = f"t.{q(age)} IS NOT NULL AND (s.{q(age)} IS NULL OR s.{q(age)} < t.{q(age)})"
            self.cur.execute(
                "CREATE OR REPLACE TEMP TABLE __ing_win AS SELECT * FROM __ing_rows AS s WHERE NOT EXISTS "
                f"(SELECT 1 FROM {self._qualified(stored)} AS t WHERE {match} AND {newer})"
            )
            winners = "__ing_win"
        sets = [f"{q(c.name)} = s.{q(c.name)}" for c in flat if c.name not in self.keys]
        if sets:
            self.cur.execute(
                f"UPDATE {self._qualified(stored)} AS t SET {', '.join(sets)} FROM {winners} AS s WHERE {match}"
            )
        return winners

    # helpers -------------------------------------------------------------------------------------------
    def _scalar(self, sql: str) -> int:
        row = self.cur.execute(sql).fetchone()
        return int(row[0]) if row else 0

    def _qualified(self, table: str) -> str:
        return f"{q(self.item.pool_id)}.{q(table)}"

    def _existing(self, table: str) -> dict[str, tuple[str, str]]:
        return table_columns(self.cur, self.item.pool_id, find_table(self.cur, self.item.pool_id, table))

    def _typed(self, table: str, columns: Sequence[_Column], source: str) -> list[str]:
        """Each column cast to the pool's type for it; values that do not fit are a schema mismatch."""
        existing = self._existing(table)
        exprs = []
        for c in columns:
            if _is_nested(c.duck_type):  # deeper than one level: kept as JSON text
                exprs.append(f"CAST(to_json({q(c.name)}) AS VARCHAR) AS {q(c.name)}")
                continue
            if c.name.lower() in existing:
                target = existing[c.name.lower()][1]
            else:
                try:
                    target = infer_type(c.duck_type, c.name)
                except UnsupportedType as exc:
                    raise IngestionFailure(SCHEMA_MISMATCH, str(exc)) from exc
            expr = q(c.name)
            if "TIME ZONE" in c.duck_type.upper():
                expr = f"CAST({expr} AS TIMESTAMP)"
            if target.upper() != c.duck_type.upper():
                bad = self.cur.execute(
                    f"SELECT {q(c.name)} FROM {source} WHERE {q(c.name)} IS NOT NULL "
                    f"AND TRY_CAST({expr} AS {target}) IS NULL LIMIT 1"
                ).fetchone()
                if bad is not None:
                    raise IngestionFailure(
                        SCHEMA_MISMATCH,
                        f"column '{c.name}' of table '{table}' is {target} in the data pool, but the file "
                        f"has {c.duck_type} values such as {bad[0]!r}",
                    )
                expr = f"CAST({expr} AS {target})"
            exprs.append(f"{expr} AS {q(c.name)}")
        return exprs

    def _add_columns(self, stored: str, columns: Sequence[_Column], source: str) -> None:
        existing = self._existing(stored)
        described = self.cur.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        types = {str(r[0]): str(r[1]) for r in described}
        for c in columns:
            if c.name.lower() not in existing:
                self.cur.execute(
                    f"ALTER TABLE {self._qualified(stored)} ADD COLUMN {q(c.name)} {types[c.name]}"
                )

    def _insert(self, table: str, flat: Sequence[_Column], source: str, only_new: bool) -> None:
        cols = ", ".join(f"s.{q(c.name)}" for c in flat)
        stored = find_table(self.cur, self.item.pool_id, table)
        if stored is None:
            self.cur.execute(f"CREATE TABLE {self._qualified(table)} AS SELECT {cols} FROM {source} AS s")
            return
        self._add_columns(stored, flat, source)
        where = ""
        if only_new:
            match = key_match(self.keys)
            where = f" WHERE NOT EXISTS (SELECT 1 FROM {self._qualified(stored)} AS t WHERE {match})"
        self.cur.execute(
            f"INSERT INTO {self._qualified(stored)} BY NAME SELECT {cols} FROM {source} AS s{where}"
        )

    def _child(self, column: _Column, winners: str) -> None:
        """Unnest one nested column of the winning parent rows into ``<table>_<column>``."""
        table, child_keys = self.child_table(column)
        fks = [f"{self.item.table}_{k}" for k in self.keys]
        self.cur.execute(
            f"CREATE OR REPLACE TEMP TABLE __ing_child_raw AS {self._unnest(column, fks, winners)}"
        )
        columns = self.describe("__ing_child_raw")
        keys = self.present_keys("__ing_child_raw", columns, child_keys, table)
        exprs = self._typed(table, columns, "__ing_child_raw")
        self.cur.execute(
            f"CREATE OR REPLACE TEMP TABLE __ing_child AS SELECT {', '.join(exprs)} FROM __ing_child_raw"
        )
        stored = find_table(self.cur, self.item.pool_id, table)
        if keys:  # upserted by the child's own key: the last row of a key wins, stored ones are replaced
            part = ", ".join(q(k) for k in keys)
            self.cur.execute(
                "CREATE OR REPLACE TEMP TABLE __ing_child AS SELECT * EXCLUDE (__rn) FROM (SELECT *, "
                f"row_number() OVER (PARTITION BY {part} ORDER BY rowid DESC) AS __rn FROM __ing_child) "
                "WHERE __rn = 1"
            )
            if stored is not None:
                self.cur.execute(
                    f"DELETE FROM {self._qualified(stored)} AS t USING __ing_child AS s WHERE {key_match(keys)}"
                )
        elif stored is not None and fks:  # the children of a replaced parent row are replaced with it
            match = " AND ".join(
                f"c.{q(fk)} IS NOT DISTINCT FROM w.{q(k)}" for k, fk in zip(self.keys, fks, strict=True)
            )
            self.cur.execute(
                f"DELETE FROM {self._qualified(stored)} AS c WHERE EXISTS (SELECT 1 FROM {winners} AS w WHERE {match})"
            )
        self._insert(table, columns, "__ing_child", only_new=False)

    def _unnest(self, column: _Column, fks: list[str], winners: str) -> str:
        """The SELECT turning a nested column into child rows, each with the parent's key as ``fks``."""
        fk_select = ", ".join(f"{q(k)} AS {q(fk)}" for k, fk in zip(self.keys, fks, strict=True))
        lead = f"{fk_select}, " if fk_select else ""
        t = column.duck_type.upper()
        if t.endswith("]") and t.removesuffix("[]").startswith("STRUCT"):  # a list of objects
            pass_fks = ", ".join(q(fk) for fk in fks)
            return (
                f"SELECT {pass_fks + ', ' if fks else ''}UNNEST(__item) FROM "
                f"(SELECT {lead}UNNEST({q(column.name)}) AS __item FROM {winners})"
            )
        if t.endswith("]"):  # a list of values: one row per value, in a column named after the field
            return f"SELECT {lead}UNNEST({q(column.name)}) AS {q(column.name)} FROM {winners}"
        if t.startswith("STRUCT"):  # a single object: one row per parent
            return f"SELECT {lead}UNNEST({q(column.name)}) FROM {winners} WHERE {q(column.name)} IS NOT NULL"
        # MAP / UNION: no table shape of their own
        return f"SELECT {lead}CAST(to_json({q(column.name)}) AS VARCHAR) AS {q(column.name)} FROM {winners}"
