"""Turning whatever a DAG hands us into a stream of Arrow record batches.

A source is opened lazily and read batch by batch, so memory follows the batch size, not the source
size. ``description`` and ``paths`` feed logs and lineage; ``schema`` is known before the first batch is
read (from file metadata or a peek), which is what lets the operator validate before creating a job.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from airflow_provider_celonis.datapath.batches import BatchSource
from airflow_provider_celonis.datapath.casts import DoesNotFit, cast_columns
from airflow_provider_celonis.datapath.csv_dialect import with_file_separator, with_parsing_options
from airflow_provider_celonis.datapath.csv_errors import Reopen, csv_error
from airflow_provider_celonis.datapath.drift import SchemaDrift, unify
from airflow_provider_celonis.datapath.files import (
    CSV_SUFFIXES,
    JSON_SUFFIXES,
    PARQUET_SUFFIXES,
    expand_paths,
    file_format,
    is_file_source,
    is_object_storage_path,
    open_stream,
    without_empty,
)
from airflow_provider_celonis.datapath.frames import from_frame, is_dataframe
from airflow_provider_celonis.datapath.json_lines import JsonLook, json_batches, json_look
from airflow_provider_celonis.datapath.names import check_no_empty_name, column_names, same_names_reordered
from airflow_provider_celonis.datapath.streams import open_iterable
from airflow_provider_celonis.datapath.text_read import (
    CSV_BLOCK_BYTES,
    FOREIGN_BOMS,
    STRADDLES,
    ReadSettings,
    check_encoding,
    csv_block_schema,
    csv_first_look,
    open_csv,
    typed_block_bytes,
)
from airflow_provider_celonis.hooks.errors import CelonisConfigError

# Re-exported: callers import these from here (the source type, files, reading options and CSV errors
# live beside).
__all__ = [
    "BATCH_ROWS",
    "CSV_BLOCK_BYTES",
    "CSV_SUFFIXES",
    "FOREIGN_BOMS",
    "JSON_SUFFIXES",
    "PARQUET_SUFFIXES",
    "READ_AHEAD",
    "BatchSource",
    "DeferredSource",
    "ReadSettings",
    "expand_paths",
    "file_format",
    "hold_callable",
    "is_file_source",
    "open_source",
]

#: Under ``airflow.task`` so that these lines land in the task log next to the operator's own.
log = logging.getLogger(f"airflow.task.{__name__}")

#: Rows per batch: big enough for vectorised work, small enough that a batch is a few MB.
BATCH_ROWS = 65_536
#: Batches decoded ahead in a thread while the caller encodes parquet (both release the GIL).
READ_AHEAD = 2


class DeferredSource:
    """A callable source, held so that Airflow's templating does not call it at render time.

    Airflow 3 calls callables found in template fields; a source callable must run in ``execute``
    instead, where its batches are streamed.
    """

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.factory = factory

    def __repr__(self) -> str:
        return f"DeferredSource({getattr(self.factory, '__name__', self.factory)!r})"


def hold_callable(source: Any) -> Any:
    """Wrap a callable source (see ``DeferredSource``); anything else is returned as is."""
    if callable(source) and not isinstance(source, pa.RecordBatchReader | type):
        return DeferredSource(source)
    return source


def open_source(
    source: Any,
    *,
    what: str = "source",
    null_values: Sequence[str] | None = None,
    encoding: str | None = None,
    sanitize_names: bool = False,
    text_columns: Sequence[str] = (),
    csv_parsing_options: Mapping[str, Any] | None = None,
) -> BatchSource:
    """Open any supported source kind as a ``BatchSource``; raises ``CelonisConfigError`` on bad input.

    ``null_values``, ``encoding`` and ``sanitize_names``: see ``ReadSettings``. ``text_columns``: the
    columns ``table_schema`` declares STRING, read from CSV text as written. ``csv_parsing_options``: the
    separator, quote, escape and character set CSV files are read with (``csv_dialect``).
    """
    settings = ReadSettings(
        null_values=("",) if null_values is None else tuple(str(v) for v in null_values),
        encoding=encoding or None,
        sanitize_names=bool(sanitize_names),
        text_columns=tuple(str(name).lower() for name in text_columns),
    )
    settings = with_parsing_options(settings, csv_parsing_options)
    return named(_open_any(source, what, settings), what, sanitize_names)


def named(source: BatchSource, what: str, sanitize: bool) -> BatchSource:
    """``source`` with its columns named as ``sanitize_names`` makes them, or as it is when not asked;
    for sources opened elsewhere (a SQL cursor) so that the option means the same for every source."""
    return _renamed(source, what) if sanitize else source


def _open_any(source: Any, what: str, settings: ReadSettings) -> BatchSource:
    if source is None:
        raise CelonisConfigError(f"{what} is not set")
    if isinstance(source, DeferredSource) or (
        callable(source) and not isinstance(source, pa.RecordBatchReader)
    ):
        produced = source.factory() if isinstance(source, DeferredSource) else source()
        return _open_any(produced, what, settings)
    if isinstance(source, pa.Table):
        return BatchSource(
            source.schema,
            lambda: iter(source.to_batches(max_chunksize=BATCH_ROWS)),
            f"Arrow table ({what})",
            rereadable=True,
        )
    if isinstance(source, pa.RecordBatch):
        return BatchSource(
            source.schema, lambda: iter([source]), f"Arrow record batch ({what})", rereadable=True
        )
    if isinstance(source, pa.RecordBatchReader):
        return BatchSource(source.schema, lambda: iter(source), f"Arrow record batch reader ({what})")
    if is_dataframe(source):
        return _open_any(from_frame(source, what, pa.Table.from_pandas), what, settings)
    if is_file_source(source) or is_object_storage_path(source):
        return _open_files(expand_paths(source, what), what, settings)
    if isinstance(source, Iterable) and not isinstance(source, str | bytes | dict):
        return open_iterable(iter(source), what)
    raise CelonisConfigError(
        f"{what}: unsupported type {type(source).__name__}; pass a path, glob, list of paths, ObjectStoragePath, "
        "pandas DataFrame, pyarrow Table or RecordBatchReader, or a callable returning one of these "
        "or an iterable of record batches or DataFrames"
    )


def _renamed(source: BatchSource, what: str) -> BatchSource:
    """``source`` with its columns named as ``sanitize_names`` makes them (a widened re-read too)."""
    names = column_names(source.schema.names, sanitize=True, what=what)
    if names == source.schema.names:
        return source
    schema = pa.schema([f.with_name(n) for f, n in zip(source.schema, names, strict=True)])

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            for batch in source.batches():
                yield pa.RecordBatch.from_arrays(batch.columns, names=names)
        except SchemaDrift as drift:
            if drift.widened is not None:
                drift.widened = _renamed(drift.widened, what)
            drift.column = names[source.schema.get_field_index(drift.column)]
            raise

    first = source.first_rows
    if first is not None:
        first = pa.RecordBatch.from_arrays(first.columns, names=names)
    return BatchSource(schema, batches, source.description, source.paths, source.rereadable, first)


def _open_files(paths: Sequence[Any], what: str, settings: ReadSettings) -> BatchSource:
    formats = {file_format(p) for p in paths}
    if len(formats) > 1:
        raise CelonisConfigError(
            f"{what}: mixes file formats ({', '.join(sorted(formats))}); push them separately"
        )
    fmt = formats.pop()
    kept = without_empty(paths, what)
    if not kept:
        label = f"{_files_label(paths, fmt)} (every file empty)"
        return BatchSource(pa.schema([]), lambda: iter(()), label, [str(p) for p in paths], True)
    paths = kept
    given, first_rows = settings, None
    reads = [settings] * len(paths)
    looks: list[JsonLook | None] = [None] * len(paths)
    if fmt == "csv":
        given, reads, schemas, first_rows = _csv_looks(paths, what, settings)
    elif fmt == "json":
        looks = [_json_look(p, what) for p in paths]
        schemas = [look.schema for look in looks if look is not None]
    else:
        schemas = [_file_schema(p, fmt, what, settings) for p in paths]
    schema = _with_forced(_common_schema(paths, schemas, what), given)
    if fmt == "csv" and (wider := _parsed_wider(given, schema, schemas)) is not given:
        return _open_files(paths, what, wider)

    def reopen(column: str, new: pa.DataType, *, text_timestamps: bool = False) -> BatchSource:
        wider = given.with_text_timestamps(column, new) if text_timestamps else given.with_type(column, new)
        return _open_files(paths, what, wider)

    # pyarrow infers nothing from the first block of a read told every type: it may take smaller blocks.
    typed = [
        _every_column_typed(s, own) if fmt == "csv" else None for s, own in zip(reads, schemas, strict=True)
    ]
    plans = [(t if t is not None else s, t is not None) for t, s in zip(typed, reads, strict=True)]

    # A file with the columns in another order (``names.same_names_reordered``) has them picked by name.
    reordered = [own.names != schema.names for own in schemas]

    def batches() -> Iterator[pa.RecordBatch]:
        for path, (read, small_blocks), reorder, look in zip(paths, plans, reordered, looks, strict=True):
            for batch in _file_batches(path, fmt, what, read, reopen, small_blocks, look):
                if reorder:
                    batch = batch.select(schema.names)
                yield (
                    batch if batch.schema.equals(schema) else _shared_type(batch, schema, path, what, reopen)
                )

    def read_ahead() -> Iterator[pa.RecordBatch]:
        return _read_ahead(batches())

    label = _files_label(paths, fmt)
    return BatchSource(schema, read_ahead, label, [str(p) for p in paths], True, first_rows)


def _csv_looks(
    paths: Sequence[Any], what: str, settings: ReadSettings
) -> tuple[ReadSettings, list[ReadSettings], list[pa.Schema], pa.RecordBatch | None]:
    """Each file's own first look (the types one file's first block gave never bind another file's read):
    the settings all files share, each file's read settings and schema, and the first file's first rows."""
    given = with_file_separator(settings, paths, what)
    looks = [csv_first_look(p, what, given) for p in paths]
    schemas = [
        look.schema if look.schema is not None else _file_schema(p, "csv", what, given)
        for look, p in zip(looks, paths, strict=True)
    ]
    return given, [look.settings for look in looks], schemas, looks[0].rows


def _parsed_wider(given: ReadSettings, schema: pa.Schema, schemas: list[pa.Schema]) -> ReadSettings:
    """``given`` with the columns the files disagree on parsed straight into the wider type, so that "007"
    stays "007" in a STRING column. A number widened to FLOAT is not: each file reads it in its own type and
    ``_shared_type`` casts it safely, so that an integer a double cannot hold widens on to STRING."""
    wider = given
    forced = dict(given.column_types)
    for fld in schema:
        differs = any(not s.field(fld.name).type.equals(fld.type) for s in schemas)
        if differs and not pa.types.is_floating(fld.type) and forced.get(fld.name) != fld.type:
            wider = wider.with_type(fld.name, fld.type)
    return wider


def _shared_type(
    batch: pa.RecordBatch, schema: pa.Schema, path: Any, what: str, reopen: Reopen
) -> pa.RecordBatch:
    """A file's batch in the files' shared types; an integer beyond 2**53 in a column shared as FLOAT is the
    ladder's "integer a double cannot hold": the column widens to STRING and the files are read again."""
    try:
        return _cast(batch, schema, path, what)
    except DoesNotFit as exc:
        if not (pa.types.is_integer(exc.have) and pa.types.is_floating(exc.want)):
            raise
        raise SchemaDrift(
            str(exc),
            column=exc.column,
            old=exc.want,
            new=pa.string(),
            widened=reopen(exc.column, pa.string()),
            what=what,
        ) from exc


def _every_column_typed(settings: ReadSettings, schema: pa.Schema) -> ReadSettings | None:
    """``settings`` with every CSV column read as ``schema`` has it, not inferred again (None: it cannot).

    pyarrow infers a column's type from a file's first block, which the first look (or ``_file_schema``)
    already read, so the types are the ones it would infer; a reader told every type decodes the whole
    file faster (0.29 against 0.39 CPU-seconds for a 79 MB file on one core, 2026-12-05). A column that
    later holds a value its type cannot take fails as it would have (``csv_error``). Files with two
    columns of one name keep inferring: a type per name could not tell them apart.
    """
    if len(set(schema.names)) != len(schema.names):
        return None
    return replace(settings, column_types=tuple(zip(schema.names, schema.types, strict=True)))


def _with_forced(schema: pa.Schema, settings: ReadSettings) -> pa.Schema:
    """``schema`` with the types a drift forced (``ReadSettings.with_type``): a CSV file is read in them, a
    parquet or JSON file's batches are cast to them (``_shared_type``), or the drift would find the same
    types again on every reading (an integer beyond 2**53 beside doubles widens to STRING)."""
    for name, forced in settings.column_types:
        if name in schema.names:
            schema = schema.set(schema.get_field_index(name), pa.field(name, forced))
    return schema


def _common_schema(paths: Sequence[Any], schemas: list[pa.Schema], what: str) -> pa.Schema:
    """The schema that holds every file's rows: same column names, each column widened where files disagree."""
    for path, own in zip(paths, schemas, strict=True):
        check_no_empty_name(own.names, f"{what}: {path}")  # before the names are compared: name the file
    schema = schemas[0]
    for path, other in zip(paths[1:], schemas[1:], strict=True):
        if other.names != schema.names and not same_names_reordered(other.names, schema.names):
            raise CelonisConfigError(
                f"{what}: {path} has columns {other.names}, but {paths[0]} has {schema.names}"
            )
        if other.names != schema.names:
            log.info("%s: %s has the columns of %s in another order: matched by name", what, path, paths[0])
            other = pa.schema([other.field(name) for name in schema.names])
        for fld, theirs in zip(schema, other, strict=True):
            wider = unify(fld.type, theirs.type)
            if wider is not None and not wider.equals(fld.type):  # files disagree: the wider holds both
                log.warning(
                    "%s: column %r widened from %s to %s: %s holds %s values",
                    what,
                    fld.name,
                    fld.type,
                    wider,
                    path,
                    theirs.type,
                )
                schema = schema.set(schema.get_field_index(fld.name), pa.field(fld.name, wider))
    return schema


def _files_label(paths: Sequence[Any], fmt: str) -> str:
    return str(paths[0]) if len(paths) == 1 else f"{len(paths)} {fmt} files ({paths[0]} ...)"


_DONE = object()


class _Handoff:
    """The queue between ``_read_ahead``'s thread and its caller, and the two signals they share."""

    def __init__(self, depth: int) -> None:
        self.queue: queue.Queue[Any] = queue.Queue(depth)
        self.stop = threading.Event()  # the caller is gone
        self.resumed = threading.Event()  # the caller came back for the second batch

    def offer(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def await_resume(self) -> bool:
        while not self.resumed.wait(0.1):
            if self.stop.is_set():
                return False
        return True


def _read_ahead(batches: Iterator[pa.RecordBatch], depth: int = READ_AHEAD) -> Iterator[pa.RecordBatch]:
    """Decode the next ``depth`` batches in a thread while the caller works on this one.

    Without it, decoding (CSV parsing) and encoding (parquet writing) take turns on one thread; both run
    in Arrow's C++ without the GIL, so overlapping them uses a second core. Errors surface in the caller;
    closing the iterator stops the thread and closes the underlying reader. The second batch is asked for
    only when the caller comes back for it: until then the first batch's chunk (the push's first byte) has
    the core to itself, and a CSV file's read-ahead waits (``text_read.CsvReader``).
    """
    handoff = _Handoff(depth)

    def produce() -> None:
        try:
            for batch in batches:
                if not (handoff.offer(batch) and handoff.await_resume()):
                    return
            handoff.offer(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread, which re-raises it
            handoff.offer(exc)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="celonis-read-ahead", daemon=True)
    thread.start()
    try:
        while (item := handoff.queue.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
            handoff.resumed.set()
    finally:
        handoff.stop.set()
        thread.join()


def _cast(batch: pa.RecordBatch, schema: pa.Schema, path: Any, what: str) -> pa.RecordBatch:
    """A file's batch in the type every file's columns share; a value that type cannot hold names its column."""

    def hint(name: str, have: pa.DataType, want: pa.DataType) -> str:
        return (
            f"{what}: {path}: column {name!r} is {have} in this file and {want} across the files "
            "(the type that holds the other files' values), but a value does not fit"
        )

    return cast_columns(batch, schema, hint)


def _file_schema(path: Any, fmt: str, what: str, settings: ReadSettings) -> pa.Schema:
    """A parquet or CSV file's schema (a JSON file's comes from its first look, ``json_look``)."""
    try:
        if fmt == "parquet":
            with open_stream(path) as handle:
                return _parquet_file(handle).schema_arrow
        check_encoding(path, settings, what)
        return csv_block_schema(path, settings)
    except CelonisConfigError:
        raise
    except pa.ArrowInvalid as exc:
        if fmt == "csv":
            raise csv_error(what, path, exc, None, settings) from exc
        raise CelonisConfigError(f"{what}: cannot read {fmt} file {path}: {exc}") from exc
    except (OSError, ValueError) as exc:
        raise CelonisConfigError(f"{what}: cannot read {fmt} file {path}: {exc}") from exc


def _parquet_file(handle: Any) -> pq.ParquetFile:
    """A parquet file whose INT96 timestamps (Spark's, Hive's, Impala's, pycelonis') read as microseconds:
    pyarrow's default, nanoseconds, wraps 9999-12-31 round to 1816-03-29 (years 1677-2262 only)."""
    return pq.ParquetFile(handle, coerce_int96_timestamp_unit="us")


def _json_look(path: Any, what: str) -> JsonLook:
    try:
        return json_look(path)
    except CelonisConfigError as exc:  # names the file and the rows: say which source
        raise CelonisConfigError(f"{what}: {exc}") from exc
    except (pa.ArrowInvalid, OSError, ValueError) as exc:
        raise CelonisConfigError(f"{what}: cannot read json file {path}: {exc}") from exc


def _file_batches(
    path: Any,
    fmt: str,
    what: str,
    settings: ReadSettings,
    reopen: Reopen,
    small_blocks: bool = False,
    look: JsonLook | None = None,
) -> Iterator[pa.RecordBatch]:
    try:
        if fmt == "parquet":
            with open_stream(path) as handle:
                yield from _parquet_file(handle).iter_batches(batch_size=BATCH_ROWS, use_threads=True)
        elif fmt == "csv":
            yield from _csv_batches(path, what, settings, reopen, small_blocks)
        else:
            assert look is not None, "a JSON file is read after its first look"
            try:
                yield from json_batches(path, look, BATCH_ROWS)
            except CelonisConfigError as exc:  # names the file and the rows: say which source
                raise CelonisConfigError(f"{what}: {exc}") from exc
    except (pa.ArrowInvalid, OSError) as exc:
        raise CelonisConfigError(f"{what}: cannot read {fmt} file {path}: {exc}") from exc


def _csv_batches(
    path: Any,
    what: str,
    settings: ReadSettings,
    reopen: Reopen,
    small_blocks: bool,
) -> Iterator[pa.RecordBatch]:
    """A CSV file's batches; with ``small_blocks`` (a typed read) in ``typed_block_bytes`` blocks up to a
    record longer than those, and in ``CSV_BLOCK_BYTES`` ones from it on.

    pyarrow fails on a record that does not fit its blocks, after handing out every row before it. The
    file is then opened again with the larger blocks and the rows already handed out are skipped by
    count: both readers parse the same bytes with the same options, so they split the same records.
    """
    sent = 0
    # A typed read names every column's type: an error opening it (in its first block) names the column too.
    typed = pa.schema(list(settings.column_types)) if small_blocks else None
    while True:
        block_bytes = typed_block_bytes() if small_blocks else None
        reader = None
        try:
            reader = open_csv(path, settings, block_bytes=block_bytes)  # it decodes the first block
            with reader:
                for batch in _after_rows(reader, sent):
                    yield batch
                    sent += batch.num_rows
            return
        except pa.ArrowInvalid as exc:
            if small_blocks and STRADDLES in str(exc):
                log.info(
                    "%s: %s has a record longer than %s bytes: reading on in larger blocks",
                    what,
                    path,
                    block_bytes,
                )
                small_blocks = False
                continue
            schema = reader.schema if reader is not None else typed
            if schema is None:
                raise
            raise csv_error(what, path, exc, schema, settings, reopen) from exc


def _after_rows(batches: Iterator[pa.RecordBatch], skip: int) -> Iterator[pa.RecordBatch]:
    """``batches`` without their first ``skip`` rows."""
    for batch in batches:
        if skip >= batch.num_rows:
            skip -= batch.num_rows
            continue
        yield batch.slice(skip) if skip else batch
        skip = 0
