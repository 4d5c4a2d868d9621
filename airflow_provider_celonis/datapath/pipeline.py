"""Sources -> batches -> chunk files: what a push sends, checked before any job exists.

``prepare``/``prepare_csv`` open nothing on Celonis: they check the sources (columns, keys, types,
emptiness) and return the parts to push. ``parquet_chunks`` converts a part's batches into size-capped
parquet chunk files; ``csv_pass_chunks`` splits CSV files as they are. The job itself (create, upload,
execute, wait) is ``datapath.job.PushJob``'s.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from airflow_provider_celonis.datapath.chunks import ChunkFile, CsvPassChunk, ParquetChunker, csv_chunks
from airflow_provider_celonis.datapath.csv_dialect import is_tsv
from airflow_provider_celonis.datapath.csv_split import check_csv_headers
from airflow_provider_celonis.datapath.drift import SchemaDrift, with_widening
from airflow_provider_celonis.datapath.files import without_empty
from airflow_provider_celonis.datapath.names import check_table_name
from airflow_provider_celonis.datapath.schema import (
    MAX_VARCHAR,
    SchemaPlan,
    check_keys_not_null,
    conform,
    plan_schema,
)
from airflow_provider_celonis.datapath.sources import BatchSource, expand_paths
from airflow_provider_celonis.hooks.celonis import CelonisHook
from airflow_provider_celonis.hooks.errors import CelonisConfigError

MAX_CHUNK_BYTES = 1 << 30
MIN_CHUNK_BYTES = 64 << 10
DEFAULT_CHUNK_BYTES = 128 << 20
#: At most one conversion progress line per this many seconds.
PROGRESS_SECONDS = 30.0
ON_EMPTY = ("skip", "fail")
#: Parquet codecs for Data Push chunks: snappy is the one real clients (pycelonis) are known to send.
COMPRESSIONS = ("snappy", "zstd", "none")

Chunk = ChunkFile | CsvPassChunk
#: A STRING length measured before the whole source is read is declared this many times wider, and at
#: least ``MIN_DECLARED_LENGTH``, so that a later longer value rarely starts the job over (docs/performance.md).
LENGTH_MARGIN = 2
MIN_DECLARED_LENGTH = 64
#: Over a link that keeps up, a chunk is finished early, when the uploader is idle, once it holds
#: ``early_chunk_bytes(written)``: the geometric mean of what the push has written so far and
#: ``EARLY_CHUNK_SCALE``, between ``EARLY_CHUNK_MIN`` and ``EARLY_CHUNK_MAX``. The last chunk (and the end of
#: the one still on the wire) is sent after the conversion ends, so smaller chunks shorten that wait, and
#: each chunk costs a request and a parquet footer (~3 ms of CPU here): for ``W`` bytes in all, chunks of
#: ``sqrt(cost x link rate x W)`` cost the least, and ``written`` stands in for ``W``, which is not known
#: ahead (docs/performance.md). A slower link or a longer round trip keeps the uploader busy for longer, so
#: chunks grow past it by themselves.
EARLY_CHUNK_SCALE = 1 << 20
EARLY_CHUNK_MIN = 4 << 20
EARLY_CHUNK_MAX = 16 << 20
#: The first chunk's cap; each next chunk's is twice the last, up to ``chunk_size_bytes``: the first bytes go
#: on the wire with the first batch, whatever the cap (docs/performance.md). A typed CSV read's first 1 MiB
#: block makes ~300 KB of parquet; with a 1 MiB cap the first chunk waited for four blocks.
FIRST_CHUNK_BYTES = 256 << 10


def early_chunk_bytes(written: int) -> int:
    """How full a chunk must be to be finished early (the uploader idle), ``written`` bytes into the push."""
    return min(max(math.isqrt(written * EARLY_CHUNK_SCALE), EARLY_CHUNK_MIN), EARLY_CHUNK_MAX)


def check_chunk_size(chunk_size_bytes: int) -> int:
    size = int(chunk_size_bytes)
    if size > MAX_CHUNK_BYTES:
        raise CelonisConfigError(
            f"chunk_size_bytes={size} is over Celonis' limit of 1 GiB ({MAX_CHUNK_BYTES} bytes) per chunk"
        )
    if size < MIN_CHUNK_BYTES:
        raise CelonisConfigError(f"chunk_size_bytes={size} is below the minimum of {MIN_CHUNK_BYTES} bytes")
    return size


def normalize_keys(keys: Any, what: str = "keys") -> list[str]:
    """Key columns as rendered: a string is one key (never its characters), a sequence is kept."""
    if keys is None or keys == "":
        return []
    if isinstance(keys, str):
        return [keys.strip()]
    if isinstance(keys, Sequence | set | frozenset):
        out = [str(k).strip() for k in keys]
        if any(not k for k in out):
            raise CelonisConfigError(f"{what} holds an empty column name: {list(keys)!r}")
        return out
    raise CelonisConfigError(f"{what} must be a column name or a list of them, got {type(keys).__name__}")


@dataclass
class PushSpec:
    """What the job should do, in the operator's terms."""

    target_table: str
    job_type: str = "DELTA"
    keys: Sequence[str] = ()
    file_type: str = "PARQUET"
    table_schema: Sequence[Mapping[str, Any]] | None = None
    csv_parsing_options: Mapping[str, Any] | None = None
    connection_id: str | None = None
    upsert_strategy: str | None = None
    fallback_varchar_length: int | None = None
    chunk_size_bytes: int = DEFAULT_CHUNK_BYTES
    #: An empty source: ``"skip"`` (DELTA pushes nothing; REPLACE empties the table) or ``"fail"``.
    on_empty: Literal["skip", "fail"] = "skip"
    #: Map characters Celonis rejects in column names to ``_`` (``datapath.names``).
    sanitize_names: bool = False
    #: Parquet codec of the chunks (``COMPRESSIONS``); see docs/celonis-contract.md before changing it.
    compression: str = "snappy"

    def __post_init__(self) -> None:
        self.compression = str(self.compression).lower()
        if self.compression not in COMPRESSIONS:
            raise CelonisConfigError(
                f"compression must be one of {', '.join(COMPRESSIONS)}, got {self.compression!r}"
            )
        self.chunk_size_bytes = check_chunk_size(self.chunk_size_bytes)
        self.job_type = str(self.job_type).upper()
        self.file_type = str(self.file_type).upper()
        if self.on_empty not in ON_EMPTY:
            raise CelonisConfigError(f"on_empty must be one of {', '.join(ON_EMPTY)}, got {self.on_empty!r}")


@dataclass
class PushReport:
    job_id: str
    data_pool_id: str
    target_table: str
    chunks: int = 0
    rows: int = 0
    deleted_rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    skipped: bool = False
    #: Seconds from the start of ``PushJob.push`` to the first chunk's upload (None: nothing sent).
    first_upload_seconds: float | None = None

    def as_xcom(self, status: str) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "data_pool_id": self.data_pool_id,
            "target_table": self.target_table,
            "status": status,
            "chunks": self.chunks,
            "rows": self.rows,
            "deleted_rows": self.deleted_rows,
            "bytes": self.bytes,
        }


def human_size(size: float) -> str:
    """Bytes as KB below a megabyte (a small push is not ``0.0 MB``), else MB."""
    return f"{size / 1e3:.1f} KB" if size < 1e6 else f"{size / 1e6:.1f} MB"


def summary_line(push: Mapping[str, Any], status: str) -> str:
    deleted = push.get("deleted_rows") or 0
    return (
        f"Celonis push {status}: job {push.get('job_id') or '(none)'} into {push.get('data_pool_id')}/"
        f"{push.get('target_table')}: {push.get('rows') or 0:,} rows"
        + (f", {deleted:,} deleted rows" if deleted else "")
        + f" in {push.get('chunks') or 0} chunk(s), {human_size(push.get('bytes') or 0)}"
    )


@dataclass
class Part:
    """One stream to push: upserted or deleted rows, its plan, and an iterator already past validation."""

    kind: str
    source: BatchSource
    plan: SchemaPlan
    batches: Iterator[pa.RecordBatch]
    empty: bool = False

    @property
    def what(self) -> str:
        return "source" if self.kind == "upserted" else "deleted_source"

    def untyped(self, table_schema: Sequence[Mapping[str, Any]] | None) -> list[str]:
        """Columns with no type (a header-only CSV has none) that ``table_schema`` does not type either."""
        declared = {str(c.get("columnName", "")).lower() for c in table_schema or ()}
        return [
            f.name for f in self.source.schema if pa.types.is_null(f.type) and f.name.lower() not in declared
        ]


@dataclass
class CsvPart:
    """CSV files sent as they are (``file_type="CSV"``), split at record boundaries."""

    kind: str
    paths: list[str]
    columns: list[str]
    empty: bool = False
    described: str = field(default="")
    #: Per file, the header line sent instead of its own (names sanitized).
    headers: dict[str, bytes] = field(default_factory=dict)


def check_sources(spec: PushSpec, upserted: Any, deleted: Any) -> None:
    check_table_name(spec.target_table)
    if upserted is None and deleted is None:
        raise CelonisConfigError("Give source (rows to upsert), deleted_source (rows to delete), or both")
    if deleted is not None and not spec.keys:
        raise CelonisConfigError("deleted_source needs keys: Celonis deletes rows by key")
    if spec.job_type == "REPLACE" and deleted is not None:
        raise CelonisConfigError(
            "deleted_source makes no sense with job_type REPLACE (the table is replaced)"
        )


def _refuse_empty(spec: PushSpec, what: str, description: str) -> None:
    if spec.on_empty == "fail":
        raise CelonisConfigError(f"{what} {description} has no rows; nothing to push (on_empty='fail')")


def _first_part(spec: PushSpec, kind: str, source: BatchSource, log: Any) -> Part:
    """``_part``, planned again with the widened source when the first batch already widens a column (a
    timestamp with seven fractional digits is read through its text from then on)."""
    current = source

    def swap(drift: SchemaDrift) -> None:
        nonlocal current
        assert drift.widened is not None
        current = drift.widened

    return with_widening(lambda: _part(spec, kind, current, log), swap, log)


def _part(spec: PushSpec, kind: str, source: BatchSource, log: Any) -> Part:
    """One source's schema plan and first batch."""
    what = "source" if kind == "upserted" else "deleted_source"
    columns = bool(source.schema.names)  # none: every file was empty, no key or declaration to check
    plan = plan_schema(
        source.schema,
        keys=spec.keys if columns else (),
        table_schema=spec.table_schema if kind == "upserted" and columns else None,
        fallback_varchar_length=spec.fallback_varchar_length if kind == "upserted" else 1,
        what=what,
        cut_check=kind == "upserted",
    )
    for note in plan.notes:
        log.warning(note)
    if source.first_rows is not None:
        plan.foresee(source.first_rows)
        source.first_rows = None  # a hint, not kept for the whole push
    batches = source.batches()
    first = next((b for b in batches if b.num_rows), None)
    if first is None:
        _refuse_empty(spec, what, source.description)
    return Part(kind, source, plan, _chain(first, batches), empty=first is None)


def prepare(
    spec: PushSpec, pool: str, upserted: BatchSource | None, deleted: BatchSource | None, log: Any
) -> list[Part]:
    """Plan each source's schema and read its first rows; nothing is sent to Celonis."""
    check_sources(spec, upserted, deleted)
    parts = []
    for kind, source in (("upserted", upserted), ("deleted", deleted)):
        if source is None:
            continue
        parts.append(_first_part(spec, kind, source, log))
    # Validates the job body (job_type, file_type, upsert strategy) before anything is sent.
    CelonisHook.job_body(data_pool_id=pool, **job_spec(spec, parts))
    return parts


def prepare_csv(spec: PushSpec, pool: str, upserted: Any, deleted: Any) -> list[CsvPart]:
    """CSV pass-through: check every file's header (keys present) without parsing values."""
    check_sources(spec, upserted, deleted)
    options = dict(spec.csv_parsing_options or {})
    parts = []
    for kind, source in (("upserted", upserted), ("deleted", deleted)):
        if source is None:
            continue
        what = "source" if kind == "upserted" else "deleted_source"
        paths = [str(p) for p in without_empty(expand_paths(source, what), what)]
        if not options.get("separatorSequence") and any(is_tsv(p) for p in paths):
            raise CelonisConfigError(
                f"{what}: {paths[0]} is tab-separated (.tsv) and Celonis splits on commas unless told: give "
                "csv_parsing_options={'separatorSequence': '\\t'}"
            )
        checked = check_csv_headers(paths, options, spec.keys, what, spec.sanitize_names)
        if not checked.has_rows:
            _refuse_empty(spec, what, ", ".join(paths))
        parts.append(
            CsvPart(
                kind,
                paths,
                checked.columns,
                empty=not checked.has_rows,
                described=", ".join(paths),
                headers=checked.replaced,
            )
        )
    CelonisHook.job_body(data_pool_id=pool, **job_spec(spec, parts))
    return parts


def declared_lengths(longest: Mapping[str, int], columns: Iterable[str]) -> dict[str, int]:
    """``fieldLength`` per measured STRING column for a job created before the source is fully read.

    ``LENGTH_MARGIN`` times the longest value so far, at least ``MIN_DECLARED_LENGTH``, at most Celonis'
    ceiling; never shorter than the longest value (``SchemaPlan.observe`` refuses longer than the ceiling).
    """
    return {
        name: max(
            longest.get(name, 0),
            min(MAX_VARCHAR, max(MIN_DECLARED_LENGTH, LENGTH_MARGIN * longest.get(name, 0))),
        )
        for name in sorted(columns)
    }


def outgrown(longest: Mapping[str, int], declared: Mapping[str, int]) -> list[str]:
    """Columns holding a value longer than the job declares: the job must start over, wider."""
    return sorted(name for name, length in longest.items() if length > declared.get(name, 0))


def job_spec(
    spec: PushSpec, parts: Sequence[Part | CsvPart], lengths: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """Keyword arguments of ``CelonisHook.create_job`` for this push.

    STRING lengths as measured so far, or ``lengths`` (``declared_lengths``) for the columns it names.
    """
    upserted = next((p for p in parts if p.kind == "upserted" and isinstance(p, Part)), None)
    table_schema = upserted.plan.table_schema() if upserted else spec.table_schema
    if lengths and table_schema:
        table_schema = [
            {**c, "fieldLength": lengths[c["columnName"]]} if c.get("columnName") in lengths else c
            for c in table_schema
        ]
    return {
        "target_table": spec.target_table,
        "job_type": spec.job_type,
        "file_type": spec.file_type,
        "keys": list(upserted.plan.keys if upserted else spec.keys),
        "table_schema": table_schema,
        "csv_parsing_options": spec.csv_parsing_options,
        "connection_id": spec.connection_id,
        "upsert_strategy": spec.upsert_strategy,
        "fallback_varchar_length": spec.fallback_varchar_length,
    }


def parquet_chunks(
    part: Part, workdir: Path, spec: PushSpec, log: Any, idle: Callable[[], bool] | None = None
) -> Iterator[ChunkFile]:
    """Convert a part's batches into parquet chunk files (an empty part: one chunk with no rows).

    The first chunk holds at most ``FIRST_CHUNK_BYTES``, each next one twice the last, up to
    ``spec.chunk_size_bytes``. ``idle``: true while the uploader has nothing to send; a chunk of
    ``early_chunk_bytes`` or more is then finished early, so the link never waits for a full chunk (the
    last chunk, sent after conversion, stays small when the link keeps up).
    """
    chunker = ParquetChunker(
        workdir,
        part.plan.target,
        spec.chunk_size_bytes,
        part.kind,
        compression=spec.compression,
        first_bytes=FIRST_CHUNK_BYTES,
    )
    if part.empty:
        yield chunker.empty()
        return
    rows, converted, started = 0, 0, time.monotonic()
    next_progress = started + PROGRESS_SECONDS
    for batch in part.batches:
        if not batch.num_rows:
            continue
        where = f"{part.what} {part.source.description}, rows {rows + 1}-{rows + batch.num_rows}"
        batch = conform(batch, part.plan, where)
        check_keys_not_null(batch, part.plan.keys, f"{part.what} {part.source.description}", rows)
        part.plan.observe(batch)
        rows += batch.num_rows
        converted += batch.nbytes
        if time.monotonic() >= next_progress:
            next_progress = time.monotonic() + PROGRESS_SECONDS
            log.info(
                "Converting %s: %s rows (%s in memory) so far, %.0fs",
                part.what,
                f"{rows:,}",
                human_size(converted),
                time.monotonic() - started,
            )
        yield from chunker.write_iter(batch)
        if idle is not None and chunker.pending >= early_chunk_bytes(chunker.written) and idle():
            yield from chunker.close()
    yield from chunker.close()


def csv_pass_chunks(part: CsvPart, spec: PushSpec) -> Iterator[CsvPassChunk]:
    """The part's CSV files as chunks; ``ValueError`` from the splitter becomes a config error.

    The first file's chunks grow from ``FIRST_CHUNK_BYTES`` (as ``parquet_chunks``' do), the others' are
    ``chunk_size_bytes`` from the start.
    """
    try:
        for number, path in enumerate(part.paths):
            yield from csv_chunks(
                [path],
                dict(spec.csv_parsing_options or {}),
                spec.chunk_size_bytes,
                part.kind,
                part.headers.get(path),
                first_bytes=FIRST_CHUNK_BYTES if number == 0 else None,  # the link is busy after
            )
    except ValueError as exc:
        raise CelonisConfigError(
            f"{'source' if part.kind == 'upserted' else 'deleted_source'}: {exc}"
        ) from exc


def _chain(first: pa.RecordBatch | None, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    if first is not None:
        yield first
    yield from rest
