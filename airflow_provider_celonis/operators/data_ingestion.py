"""``DataIngestionOperator``: rows -> uncompressed parquet files -> the Standard Data Ingestion API."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_celonis.datapath.chunks import ChunkFile, ParquetChunker
from airflow_provider_celonis.datapath.pipeline import human_size, normalize_keys
from airflow_provider_celonis.datapath.schema import (
    celonis_type,
    check_date_range,
    check_keys_not_null,
    normalized_type,
    written,
)
from airflow_provider_celonis.datapath.sources import BatchSource, hold_callable, open_source
from airflow_provider_celonis.hooks.data_ingestion import (
    MULTIPART_CHUNK,
    MULTIPART_THRESHOLD,
    CelonisDataIngestionHook,
    check_table_name,
)
from airflow_provider_celonis.hooks.errors import CelonisConfigError

if TYPE_CHECKING:
    from airflow.sdk import Context

DEFAULT_FILE_BYTES = 128 * 1024 * 1024
#: The ingestion API reads uncompressed parquet only; everything else follows the Data Push chunks.
COMPRESSION = "NONE"
NOT_YET_INGESTED = (
    "a successful upload is not yet a successful ingestion: Celonis applies the files afterwards and "
    "reports failures (e.g. PK NOT FOUND IN INPUT FILE) on the data connection's monitoring page"
)


def run_stamp(dag_id: str, run_id: str, task_id: str, map_index: int, run_after: datetime | None) -> str:
    """A file-name prefix unique to a task instance and identical for all its tries.

    It starts with the run's time so names sort by time, then a hash of the task instance's identity;
    a retry therefore rewrites the same objects instead of adding duplicates next to them.
    """
    when = (run_after or datetime(1970, 1, 1, tzinfo=timezone.utc)).astimezone(timezone.utc)
    identity = hashlib.sha256(f"{dag_id}\0{run_id}\0{task_id}\0{map_index}".encode()).hexdigest()[:12]
    return f"{when:%Y%m%dT%H%M%S}{when.microsecond // 1000:03d}Z-{identity}"


class DataIngestionOperator(BaseOperator):
    """Upload rows to a Celonis table through the Standard Data Ingestion API (S3-compatible).

    Celonis recommends this API for new work: it always loads deltas by primary key, takes nested data
    (unnested into child tables) and needs no job handling. The price is feedback: **a successful upload
    is not yet a successful ingestion**; Celonis applies the files later, first in, first out, and shows
    failures on the data connection's monitoring page. Hence everything that can be checked here is
    checked before the first byte is sent: the primary keys exist and are never null, the age column
    exists. All files are written locally first (disk, not memory, grows with the source), then
    uploaded in order.

    File names are ``<run time>-<task instance hash>-<seq:06d>.parquet``: they sort by time and sequence
    and are the same on every try of a task instance, so a retry overwrites what an earlier try
    uploaded instead of adding to it (and the delta load by key makes the re-ingestion harmless).

    :param target_table: the table configured on the data connection (templated).
    :param source: the rows (templated when a path): a path, glob, folder, list of paths,
        ``ObjectStoragePath``, pandas DataFrame, pyarrow Table or RecordBatchReader, or a callable
        returning one of these or an iterable of record batches or DataFrames. JSON lines and parquet
        may hold nested (struct / list) columns.
    :param primary_keys: the primary key columns the table is configured with in Celonis (templated).
        They do not configure anything: Celonis takes a table's keys (and its child tables' keys) from the
        data connection's table configuration in its UI. The operator uses them to check the data before
        any upload (present, flat, never null), so a file Celonis would refuse with ``PK NOT FOUND IN
        INPUT FILE`` is never sent.
    :param age_column: optional age column as configured in Celonis (templated), checked the same way.
    :param declare_keys: also send the keys as object metadata (``x-amz-meta-primary-keys``,
        ``x-amz-meta-age-column``). Off by default: Celonis ignores it; only the local emulator's
        ``--profile lenient`` reads it, for tables nobody configured.
    :param file_size_bytes: cap per parquet file (default 128 MiB).
    :param multipart_threshold: files above this size are sent as multipart uploads.
    """

    template_fields: Sequence[str] = ("source", "target_table", "primary_keys", "age_column")
    template_fields_renderers = {"primary_keys": "json"}
    ui_color = "#1e3a8a"
    ui_fgcolor = "#ffffff"

    def __init__(
        self,
        *,
        target_table: str,
        source: Any,
        primary_keys: Sequence[str],
        age_column: str | None = None,
        celonis_data_ingestion_conn_id: str = CelonisDataIngestionHook.default_conn_name,
        declare_keys: bool = False,
        file_size_bytes: int = DEFAULT_FILE_BYTES,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        multipart_chunksize: int = MULTIPART_CHUNK,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.target_table = target_table
        self.source = hold_callable(source)
        self.primary_keys: Any = primary_keys  # normalised after rendering: a string is one key
        self.age_column = age_column
        self.celonis_data_ingestion_conn_id = celonis_data_ingestion_conn_id
        self.declare_keys = declare_keys
        self.file_size_bytes = file_size_bytes
        self.multipart_threshold = multipart_threshold
        self.multipart_chunksize = multipart_chunksize

    @cached_property
    def hook(self) -> CelonisDataIngestionHook:
        return CelonisDataIngestionHook(self.celonis_data_ingestion_conn_id)

    def stamp_for(self, context: Context) -> str:
        ti = context["ti"]
        dag_run = context.get("dag_run")
        run_after = getattr(dag_run, "run_after", None) or getattr(dag_run, "logical_date", None)
        return run_stamp(ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1), run_after)

    def execute(self, context: Context) -> dict[str, Any]:
        self.primary_keys = normalize_keys(self.primary_keys, "primary_keys")
        table = check_table_name(self.target_table)
        source = open_source(self.source, what="source")
        schema = self._check_schema(source.schema)
        stamp = self.stamp_for(context)
        with tempfile.TemporaryDirectory(prefix="celonis-ingestion-") as workdir:
            files = self._write(source, schema, Path(workdir), stamp)
            metadata = self._metadata()
            keys = []
            for chunk in files:  # one after the other: Celonis processes the files first in, first out
                keys.append(
                    self.hook.upload_file(
                        chunk.path,
                        table,
                        chunk.name,
                        metadata,
                        self.multipart_threshold,
                        self.multipart_chunksize,
                    )
                )
                self.log.info("Uploaded %s (%d rows, %d bytes)", keys[-1], chunk.rows, chunk.size)
        rows, size = sum(f.rows for f in files), sum(f.size for f in files)
        self.log.info(
            "Uploaded %d rows in %d file(s), %s, to table %s; %s",
            rows,
            len(files),
            human_size(size),
            table,
            NOT_YET_INGESTED,
        )
        return {"files": len(files), "rows": rows, "bytes": size, "keys": keys}

    def _metadata(self) -> dict[str, str] | None:
        if not self.declare_keys:
            return None
        meta = {"primary-keys": ",".join(self.primary_keys)}
        if self.age_column:
            meta["age-column"] = self.age_column
        return meta

    def _check_schema(self, schema: pa.Schema) -> pa.Schema:
        """Keys and age column must be present; keys must be flat. Returns the schema we write."""
        if not self.primary_keys:
            raise CelonisConfigError(
                "primary_keys is required: the Standard Data Ingestion API always loads deltas by key"
            )
        for column in [*self.primary_keys, *([self.age_column] if self.age_column else [])]:
            if column not in schema.names:
                kind = "age column" if column == self.age_column else "primary key"
                raise CelonisConfigError(
                    f"source: {kind} {column!r} is not a column; columns: {schema.names}"
                )
        for key in self.primary_keys:
            if pa.types.is_nested(schema.field(key).type):
                raise CelonisConfigError(f"source: primary key {key!r} is a nested column")
        for fld in schema:
            if pa.types.is_nested(fld.type):
                continue  # the ingestion API's to unnest
            # A type Celonis cannot store is refused as for Data Push: a duration would be written as a bare
            # integer, its unit lost.
            celonis_type(fld.type, fld.name)
            if pa.types.is_decimal(fld.type):
                self.log.warning("Column %r is %s: sent as FLOAT (a double)", fld.name, fld.type)
        return pa.schema([f.with_type(normalized_type(f.type)) for f in schema])

    def _write(self, source: BatchSource, schema: pa.Schema, workdir: Path, stamp: str) -> list[ChunkFile]:
        chunker = ParquetChunker(
            workdir,
            schema,
            self.file_size_bytes,
            name=lambda index: f"{stamp}-{index:06d}.parquet",
            compression=COMPRESSION,
        )
        files: list[ChunkFile] = []
        first_row = 0
        where = "source (nothing was uploaded)"
        for batch in source.batches():
            if not batch.schema.equals(schema):
                batch = written(batch, schema, where)
            # After the cast: a dictionary's NULL values are not counted as its NULLs before it.
            check_keys_not_null(batch, self.primary_keys, where, first_row)
            check_date_range(batch, where, first_row)
            first_row += batch.num_rows
            files.extend(chunker.write_iter(batch))
        files.extend(chunker.close())
        if not files:
            self.log.warning("The source holds no rows; nothing to upload")
        return files
