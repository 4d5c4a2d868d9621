"""Turning whatever a DAG hands us into a stream of Arrow record batches.

A source is opened lazily and read batch by batch, so memory follows the batch size, not the source
size. ``describe()`` and ``paths`` feed logs and lineage; ``schema`` is known before the first batch is
read (from file metadata or a peek), which is what lets the operator validate before creating a job.
"""

from __future__ import annotations

import glob as globlib
import logging
import os
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from airflow_provider_celonis.datapath.drift import SchemaDrift, unify, widen
from airflow_provider_celonis.datapath.names import column_names
from airflow_provider_celonis.hooks.errors import CelonisConfigError

#: Under ``airflow.task`` so that these lines land in the task log next to the operator's own.
log = logging.getLogger(f"airflow.task.{__name__}")

#: Rows per batch: big enough for vectorised work, small enough that a batch is a few MB.
BATCH_ROWS = 65_536
#: pyarrow's streaming CSV reader keeps dozens of blocks in flight: 16 MiB blocks peaked at ~600 MB of
#: Arrow memory, 4 MiB ones at ~150 MB, just as fast (benchmarks/push_throughput.py).
CSV_BLOCK_BYTES = 4 << 20
#: Batches decoded ahead in a thread while the caller encodes parquet (both release the GIL).
READ_AHEAD = 2
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".csv.bz2", ".csv.zst")
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz")
#: Byte-order marks of encodings a CSV read as UTF-8 cannot be (a UTF-8 BOM is skipped by every reader).
FOREIGN_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


@dataclass(frozen=True)
class ReadSettings:
    """How text sources are read; the same defaults for every source kind and both file types.

    ``null_values``: unquoted field values read as NULL. A quoted value is never NULL, so ``""`` is an
    empty string and an unquoted empty field is NULL, as in PostgreSQL's ``COPY ... CSV``, DuckDB and
    Spark. ``encoding``: the files' text encoding (UTF-8, with or without a byte-order mark, when None).
    ``sanitize_names``: map characters Celonis rejects in column names to ``_`` instead of failing.
    ``column_types``: types forced per column (set when a column was widened, see ``drift``).
    """

    null_values: tuple[str, ...] = ("",)
    encoding: str | None = None
    sanitize_names: bool = False
    column_types: tuple[tuple[str, pa.DataType], ...] = ()

    def with_type(self, column: str, new: pa.DataType) -> ReadSettings:
        types = dict(self.column_types)
        types[column] = new
        return replace(self, column_types=tuple(types.items()))


@dataclass
class BatchSource:
    """A stream of record batches with its schema known up front."""

    schema: pa.Schema
    _batches: Callable[[], Iterator[pa.RecordBatch]]
    description: str
    paths: list[str] = field(default_factory=list)
    #: ``batches()`` may be called again and yields the same rows (files, tables): see ``drift``.
    rereadable: bool = False

    def batches(self) -> Iterator[pa.RecordBatch]:
        return self._batches()


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


def is_file_source(source: Any) -> bool:
    return isinstance(source, str | os.PathLike) or (
        isinstance(source, list | tuple) and all(isinstance(s, str | os.PathLike) for s in source)
    )


def expand_paths(source: Any, what: str = "source") -> list[Any]:
    """Paths, globs and ObjectStoragePaths to a sorted list of existing files; missing ones are an error."""
    items = list(source) if isinstance(source, list | tuple) else [source]
    if not items:
        raise CelonisConfigError(f"{what} is an empty list of paths")
    found: list[Any] = []
    for item in items:
        if _is_object_storage_path(item):
            if item.is_dir():
                found.extend(sorted(p for p in item.iterdir() if p.is_file()))
            elif item.exists():
                found.append(item)
            else:
                raise CelonisConfigError(f"{what}: {item} does not exist")
            continue
        text = os.fspath(item)
        if any(ch in text for ch in "*?["):
            matches = sorted(m for m in globlib.glob(text, recursive=True) if os.path.isfile(m))
            if not matches:
                raise CelonisConfigError(f"{what}: the pattern {text!r} matches no file")
            found.extend(matches)
        elif os.path.isdir(text):
            files = sorted(str(p) for p in Path(text).iterdir() if p.is_file() and not p.name.startswith("."))
            if not files:
                raise CelonisConfigError(f"{what}: the folder {text!r} holds no file")
            found.extend(files)
        elif os.path.isfile(text):
            if not os.access(text, os.R_OK):
                raise CelonisConfigError(f"{what}: {text!r} is not readable")
            found.append(text)
        else:
            raise CelonisConfigError(f"{what}: {text!r} does not exist")
    return found


def _is_object_storage_path(item: Any) -> bool:
    return type(item).__name__ == "ObjectStoragePath" or (
        hasattr(item, "protocol") and hasattr(item, "open") and hasattr(item, "iterdir")
    )


def file_format(path: Any) -> str:
    name = str(path).lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(JSON_SUFFIXES):
        return "json"
    raise CelonisConfigError(
        f"{path}: cannot tell the file format from the name; use .parquet, .csv or .jsonl "
        "(or pass a DataFrame, an Arrow table or a callable)"
    )


def open_source(
    source: Any,
    *,
    what: str = "source",
    null_values: Sequence[str] | None = None,
    encoding: str | None = None,
    sanitize_names: bool = False,
) -> BatchSource:
    """Open any supported source kind as a ``BatchSource``; raises ``CelonisConfigError`` on bad input.

    ``null_values``, ``encoding`` and ``sanitize_names``: see ``ReadSettings``.
    """
    settings = ReadSettings(
        null_values=("",) if null_values is None else tuple(str(v) for v in null_values),
        encoding=encoding or None,
        sanitize_names=bool(sanitize_names),
    )
    opened = _open_any(source, what, settings)
    return _renamed(opened, what) if sanitize_names else opened


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
    if _is_dataframe(source):
        return _open_any(pa.Table.from_pandas(source, preserve_index=False), what, settings)
    if is_file_source(source) or _is_object_storage_path(source):
        return _open_files(expand_paths(source, what), what, settings)
    if isinstance(source, Iterable) and not isinstance(source, str | bytes | dict):
        return _open_iterable(iter(source), what)
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

    return BatchSource(schema, batches, source.description, source.paths, source.rereadable)


def _is_dataframe(obj: Any) -> bool:
    return type(obj).__name__ == "DataFrame" and hasattr(obj, "to_records")


def _to_batch(item: Any, what: str) -> pa.RecordBatch:
    if isinstance(item, pa.RecordBatch):
        return item
    if isinstance(item, pa.Table):
        return (
            item.combine_chunks().to_batches()[0]
            if item.num_rows
            else pa.RecordBatch.from_pylist([], item.schema)
        )
    if _is_dataframe(item):
        return pa.RecordBatch.from_pandas(item, preserve_index=False)
    raise CelonisConfigError(
        f"{what}: the iterable yielded a {type(item).__name__}, not a record batch or DataFrame"
    )


def _open_iterable(items: Iterator[Any], what: str) -> BatchSource:
    """Peek the first item for the schema; the rest streams as it comes."""
    first = next(items, None)
    if first is None:
        raise CelonisConfigError(f"{what}: the iterable yielded no data")
    head = _to_batch(first, what)

    def batches() -> Iterator[pa.RecordBatch]:
        yield head
        for item in items:
            batch = _to_batch(item, what)
            if not batch.schema.equals(head.schema):
                try:
                    batch = batch.cast(head.schema)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
                    raise CelonisConfigError(
                        f"{what}: a later batch has a different schema than the first: {exc}"
                    ) from exc
            yield batch

    return BatchSource(head.schema, batches, f"iterable of batches ({what})")


def _open_files(paths: Sequence[Any], what: str, settings: ReadSettings) -> BatchSource:
    formats = {file_format(p) for p in paths}
    if len(formats) > 1:
        raise CelonisConfigError(
            f"{what}: mixes file formats ({', '.join(sorted(formats))}); push them separately"
        )
    fmt = formats.pop()
    if fmt == "csv":
        settings = _csv_timestamps(paths[0], what, settings)
    schemas = [_file_schema(p, fmt, what, settings) for p in paths]
    schema = schemas[0]
    for path, other in zip(paths[1:], schemas[1:], strict=True):
        if other.names != schema.names:
            raise CelonisConfigError(
                f"{what}: {path} has columns {other.names}, but {paths[0]} has {schema.names}"
            )
        for fld, theirs in zip(schema, other, strict=True):
            wider = unify(fld.type, theirs.type)
            if wider is not None:  # files disagree: the column is what holds both (see ``drift``)
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
    if fmt == "csv" and any(not s.equals(schema) for s in schemas):
        # Parse the text straight into the wider type, so that "007" stays "007" in a STRING column.
        for fld in schema:
            if any(not s.field(fld.name).type.equals(fld.type) for s in schemas):
                settings = settings.with_type(fld.name, fld.type)
        return _open_files(paths, what, settings)

    def reopen(column: str, new: pa.DataType) -> BatchSource:
        return _open_files(paths, what, settings.with_type(column, new))

    def batches() -> Iterator[pa.RecordBatch]:
        for path in paths:
            for batch in _file_batches(path, fmt, what, settings, reopen):
                yield batch if batch.schema.equals(schema) else _cast(batch, schema, path, what)

    def read_ahead() -> Iterator[pa.RecordBatch]:
        return _read_ahead(batches())

    return BatchSource(schema, read_ahead, _files_label(paths, fmt), [str(p) for p in paths], True)


def _files_label(paths: Sequence[Any], fmt: str) -> str:
    return str(paths[0]) if len(paths) == 1 else f"{len(paths)} {fmt} files ({paths[0]} ...)"


_DONE = object()


def _read_ahead(batches: Iterator[pa.RecordBatch], depth: int = READ_AHEAD) -> Iterator[pa.RecordBatch]:
    """Decode the next ``depth`` batches in a thread while the caller works on this one.

    Without it, decoding (CSV parsing) and encoding (parquet writing) take turns on one thread; both run
    in Arrow's C++ without the GIL, so overlapping them uses a second core. Errors surface in the caller;
    closing the iterator stops the thread and closes the underlying reader.
    """
    handoff: queue.Queue[Any] = queue.Queue(depth)
    stop = threading.Event()

    def offer(item: Any) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not offer(batch):
                    return
            offer(_DONE)
        except BaseException as exc:
            offer(exc)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="celonis-read-ahead", daemon=True)
    thread.start()
    try:
        while (item := handoff.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _cast(batch: pa.RecordBatch, schema: pa.Schema, path: Any, what: str) -> pa.RecordBatch:
    try:
        return batch.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        raise CelonisConfigError(
            f"{what}: {path} has column types that differ from the first file: {exc}"
        ) from exc


def _open_binary(path: Any) -> Any:
    return path.open("rb") if _is_object_storage_path(path) else pa.OSFile(str(path), "rb")


def _file_schema(path: Any, fmt: str, what: str, settings: ReadSettings) -> pa.Schema:
    try:
        if fmt == "parquet":
            with _open_binary(path) as handle:
                return pq.ParquetFile(handle).schema_arrow
        if fmt == "csv":
            _check_encoding(path, settings, what)
            with _open_csv(path, settings) as reader:
                return reader.schema
        return _read_json(path).schema
    except CelonisConfigError:
        raise
    except pa.ArrowInvalid as exc:
        if fmt == "csv":
            raise _csv_error(what, path, exc, None, settings) from exc
        raise CelonisConfigError(f"{what}: cannot read {fmt} file {path}: {exc}") from exc
    except (OSError, ValueError) as exc:
        raise CelonisConfigError(f"{what}: cannot read {fmt} file {path}: {exc}") from exc


_TIMESTAMP = r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?"
_NAIVE = f"^{_TIMESTAMP}$"
_ZONED = f"^{_TIMESTAMP}(Z|[+-]\\d{{2}}:?\\d{{2}})$"


def _csv_timestamps(path: Any, what: str, settings: ReadSettings) -> ReadSettings:
    """Read timestamps as microseconds, whatever pyarrow's inference made of the first block.

    pyarrow infers ``timestamp[s]`` or, with fractions, ``timestamp[ns]`` (years 1677-2262 only, so a
    ``9999-12-31`` later on fails), and leaves a column holding both as strings. Microseconds hold
    every year Celonis keeps (1400-9999) and every fraction it keeps (milliseconds).
    """
    import pyarrow.compute as pc

    _check_encoding(path, settings, what)
    try:
        with _open_csv(path, settings) as reader:
            first = reader.read_next_batch()
    except (StopIteration, pa.ArrowInvalid, OSError):
        return settings  # no rows, or an error the schema read names properly
    forced = dict(settings.column_types)
    for fld, col in zip(first.schema, first.columns, strict=True):
        t = fld.type
        if fld.name in forced:
            continue
        if pa.types.is_timestamp(t):
            if t.unit != "us":
                settings = settings.with_type(fld.name, pa.timestamp("us", t.tz))
            continue
        values = col.drop_null()
        if not pa.types.is_string(t) or not len(values):
            continue
        if pc.all(pc.match_substring_regex(values, _NAIVE)).as_py():
            settings = settings.with_type(fld.name, pa.timestamp("us"))
        elif pc.all(pc.match_substring_regex(values, _ZONED)).as_py():
            settings = settings.with_type(fld.name, pa.timestamp("us", "UTC"))
    return settings


def _check_encoding(path: Any, settings: ReadSettings, what: str) -> None:
    """Name the file and its encoding when it is not what it will be read as (UTF-8 unless given).

    Only the first 64 KiB are checked here, before any job exists; a bad byte further on is named by
    the reader's error (see ``_csv_error``).
    """
    import codecs

    with path.open("rb") if _is_object_storage_path(path) else open(path, "rb") as handle:
        head = handle.read(64 << 10)
    if settings.encoding is not None:
        try:
            codecs.getincrementaldecoder(settings.encoding)().decode(head, final=False)
        except LookupError as exc:
            raise CelonisConfigError(f"{what}: unknown encoding {settings.encoding!r}") from exc
        except UnicodeDecodeError as exc:
            raise CelonisConfigError(_not_encoded(what, path, settings.encoding, head, exc)) from exc
        return
    for bom, name in FOREIGN_BOMS:
        if head.startswith(bom):
            raise CelonisConfigError(
                f"{what}: {path} is {name.upper()} (it starts with a {name.upper()} byte-order mark), "
                f"not UTF-8: pass encoding={name!r}"
            )
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise CelonisConfigError(_not_encoded(what, path, "utf-8", head, exc)) from exc


def _not_encoded(what: str, path: Any, encoding: str, head: bytes, exc: UnicodeDecodeError) -> str:
    line = head.count(b"\n", 0, exc.start) + 1
    hint = (
        "pass encoding= with the file's encoding (e.g. encoding='cp1252' or 'latin-1')"
        if encoding == "utf-8"
        else "is encoding= right?"
    )
    return (
        f"{what}: {path} is not valid {encoding.upper()}: byte 0x{head[exc.start]:02x} at offset {exc.start} "
        f"(line {line}); {hint}"
    )


def _open_csv(path: Any, settings: ReadSettings, **convert: Any) -> pacsv.CSVStreamingReader:
    """pyarrow's streaming CSV reader, with the NULL rule of ``ReadSettings`` (quoted values never NULL)."""
    read_options = pacsv.ReadOptions(
        block_size=CSV_BLOCK_BYTES, use_threads=True, encoding=settings.encoding or "utf8"
    )
    # Quoted values may hold line breaks (RFC 4180); without this pyarrow fails on them when a block
    # boundary falls inside one. It costs no measurable throughput (benchmarks/push_throughput.py).
    parse_options = pacsv.ParseOptions(newlines_in_values=True)
    convert.setdefault("column_types", dict(settings.column_types))
    convert_options = pacsv.ConvertOptions(
        null_values=list(settings.null_values),
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        **convert,
    )
    source = path.open("rb") if _is_object_storage_path(path) else str(path)
    return pacsv.open_csv(
        source, read_options=read_options, parse_options=parse_options, convert_options=convert_options
    )


def _read_json(path: Any) -> pa.Table:
    import pyarrow.json as pajson

    with _open_binary(path) as handle:
        table = pajson.read_json(handle)
    return _json_timestamps(table)


def _json_timestamps(table: pa.Table) -> pa.Table:
    """JSON has no timestamp type: ISO timestamp strings become timestamps, as in a CSV file.

    pyarrow's reader takes ``2024-01-02 03:04:05`` but leaves fractions (``.123``) as strings, and
    whole-second ones in ``timestamp[s]``; every column of ISO timestamps becomes ``timestamp[us]``.
    """
    import pyarrow.compute as pc

    for index, fld in enumerate(table.schema):
        col = table.column(index)
        if pa.types.is_timestamp(fld.type) and fld.type.unit != "us":
            target: pa.DataType | None = pa.timestamp("us", fld.type.tz)
        elif not pa.types.is_string(fld.type) or not (values := col.drop_null()).length():
            continue
        elif pc.all(pc.match_substring_regex(values, _NAIVE)).as_py():
            target = pa.timestamp("us")
        elif pc.all(pc.match_substring_regex(values, _ZONED)).as_py():
            target = pa.timestamp("us", "UTC")
        else:
            continue
        try:
            table = table.set_column(index, fld.with_type(target), pc.cast(col, target))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue  # not parseable after all: it stays a string
    return table


def _file_batches(
    path: Any,
    fmt: str,
    what: str,
    settings: ReadSettings,
    reopen: Callable[[str, pa.DataType], BatchSource],
) -> Iterator[pa.RecordBatch]:
    try:
        if fmt == "parquet":
            with _open_binary(path) as handle:
                yield from pq.ParquetFile(handle).iter_batches(batch_size=BATCH_ROWS, use_threads=True)
        elif fmt == "csv":
            with _open_csv(path, settings) as reader:
                try:
                    yield from reader
                except pa.ArrowInvalid as exc:
                    raise _csv_error(what, path, exc, reader.schema, settings, reopen) from exc
        else:
            yield from _read_json(path).to_batches(max_chunksize=BATCH_ROWS)
    except (pa.ArrowInvalid, OSError) as exc:
        raise CelonisConfigError(f"{what}: cannot read {fmt} file {path}: {exc}") from exc


_CSV_COLUMN_ERROR = re.compile(r"In CSV column #(\d+): (.*?invalid value '(.*)')", re.S)
_CSV_FIELDS_ERROR = re.compile(r"Expected (\d+) columns, got (\d+): (.*)", re.S)


def _csv_error(
    what: str,
    path: Any,
    exc: pa.ArrowInvalid,
    schema: pa.Schema | None,
    settings: ReadSettings,
    reopen: Callable[[str, pa.DataType], BatchSource] | None = None,
) -> CelonisConfigError:
    """pyarrow's CSV error with the column name and the row or line added (found by a second read).

    A value that does not fit its column's type is a ``SchemaDrift`` carrying the source re-opened
    with that column widened (see ``drift``).
    """
    text = str(exc)
    if found := _CSV_FIELDS_ERROR.search(text):
        line = _csv_line_of(path, found.group(3))
        where = f"line {line}" if line else "a line"
        return CelonisConfigError(
            f"{what}: {path}: {where} has {found.group(2)} fields, but the header has {found.group(1)}: "
            f"{found.group(3)[:200]!r} (a separator or quote inside an unquoted value?)"
        )
    if "invalid UTF8" in text:
        return CelonisConfigError(
            f"{what}: {path} is not valid {(settings.encoding or 'utf-8').upper()} further on ({text}); "
            "pass encoding= with the file's encoding (e.g. encoding='cp1252' or 'latin-1')"
        )
    found = _CSV_COLUMN_ERROR.search(text)
    if found and schema is not None and int(found.group(1)) < len(schema):
        fld, value = schema.field(int(found.group(1))), found.group(3)
        row = _csv_row_of(path, fld.name, value, settings)
        where = f"row {row}" if row else "a later row"
        message = (
            f"{what}: {path}: column {fld.name!r} holds {value[:100]!r} in {where}, which does not fit the "
            f"type read from the rows before it ({found.group(2)}); make the column's values consistent"
        )
        new = widen(fld.type, value)
        widened = reopen(fld.name, new) if reopen is not None and not new.equals(fld.type) else None
        return SchemaDrift(message, column=fld.name, old=fld.type, new=new, widened=widened, what=what)
    return CelonisConfigError(f"{what}: cannot read csv file {path}: {text}")


def _csv_line_of(path: Any, record: str) -> int | None:
    """The physical line number (1-based) where ``record`` starts; None when it cannot be found."""
    first = record.splitlines()[0].encode() if record else b""
    try:
        with path.open("rb") if _is_object_storage_path(path) else open(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if line.rstrip(b"\r\n") == first:
                    return number
    except (OSError, pa.ArrowException):
        return None
    return None


def _csv_row_of(path: Any, column: str, value: str, settings: ReadSettings) -> int | None:
    """The data row (1-based, header not counted) where ``column`` first holds ``value``."""
    import pyarrow.compute as pc

    seen = 0
    try:
        with _open_csv(
            path, settings, column_types={column: pa.string()}, include_columns=[column]
        ) as reader:
            for batch in reader:
                index = pc.index(batch.column(0), value).as_py()
                if index is not None and index >= 0:
                    return seen + index + 1
                seen += batch.num_rows
    except (OSError, pa.ArrowException):
        return None
    return None
