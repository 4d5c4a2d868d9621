"""How text sources are read: the NULL rule, encodings and byte-order marks, timestamps in CSV and JSON.

``ReadSettings`` carries the reading options of every source kind; ``open_csv`` turns them into
pyarrow's streaming CSV reader; ``check_encoding`` names a file in the wrong encoding before any job.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, NamedTuple, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from airflow_provider_celonis.datapath.files import (
    HeldBack,
    open_raw,
    open_stream,
)
from airflow_provider_celonis.datapath.memory import data_pool
from airflow_provider_celonis.datapath.names import sanitize_name
from airflow_provider_celonis.hooks.errors import CelonisConfigError

T = TypeVar("T")

#: pyarrow's streaming CSV reader keeps dozens of blocks in flight: 16 MiB blocks peaked at ~600 MB of
#: Arrow memory, 4 MiB ones at ~150 MB, just as fast (benchmarks/push_throughput.py).
CSV_BLOCK_BYTES = 4 << 20
#: Blocks of a read told every column's type (the push's: ``sources._every_column_typed``), which infers
#: nothing from its first block. A 1 MiB block is decoded in a quarter of the time, so the first chunk goes out
#: ~40 ms sooner, and a quarter as much is in flight (60 MB less peak RSS on a 79 MB CSV, 2026-12-05). A record
#: longer than a block fails pyarrow's reader ("straddles two block boundaries"); ``sources`` then reads on
#: with ``CSV_BLOCK_BYTES`` blocks (``STRADDLES``).
READ_BLOCK_BYTES = 1 << 20
#: pyarrow's error for a record that does not fit its reader's blocks.
STRADDLES = "straddles two block boundaries"
#: What a first look at a CSV reads (``_head``): the first block, the one completing its last record, and one
#: more.
LOOK_BYTES = 3 * CSV_BLOCK_BYTES
#: How long a push's reader waits for its first batch before reading ahead anyway (``files.HeldBack``): the
#: first batch needs at most three blocks, so this only bounds a wrong guess.
HOLD_TIMEOUT_SECONDS = 2.0
#: Byte-order marks of encodings a CSV read as UTF-8 cannot be (a UTF-8 BOM is skipped by every reader).
FOREIGN_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)

TIMESTAMP_TEXT = r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?"
_NAIVE = f"^{TIMESTAMP_TEXT}$"
_ZONED = f"^{TIMESTAMP_TEXT}(Z|[+-]\\d{{2}}:?\\d{{2}})$"
#: A time of day, with or without a fraction: pyarrow infers ``10:15:30`` but leaves ``10:15:30.123`` as text.
TIME_OF_DAY = r"^\d{2}:\d{2}:\d{2}(\.\d{1,9})?$"
#: What such a column is read as: nanoseconds take every fraction a source writes; Celonis keeps milliseconds.
FINE_TIME = pa.time64("ns")
#: A timestamp with more than six fractional digits (SQL Server's ``datetime2`` writes seven, Java's
#: ``Instant`` and Snowflake's ``FF9`` nine), which pyarrow cannot read as microseconds.
_FINE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}\.\d{7,}(Z|[+-]\d{2}:?\d{2})?\s*$")
CUT_TO_MICROSECONDS = (r"(:\d{2}\.\d{6})\d+", r"\1")


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
    #: Timestamp columns read as text, cut to microseconds and then parsed (``fine_timestamp_type``).
    text_timestamps: tuple[str, ...] = ()
    #: Columns declared STRING (``table_schema``), lower-cased as the table names them: a CSV file's text
    #: is read into them as written (``01067`` stays ``01067``), never parsed into a number first.
    text_columns: tuple[str, ...] = ()
    #: The field separator (``csv_parsing_options``; None: a tab for ``.tsv`` files, else a comma, see
    #: ``csv_dialect``) and quote; ``escape_char`` escapes a quote inside a quoted value besides doubling it
    #: (None: doubling only, as RFC 4180).
    delimiter: str | None = None
    quote_char: str = '"'
    escape_char: str | None = None

    def with_text_timestamps(self, column: str, new: pa.DataType) -> ReadSettings:
        """The column read as ``new`` through its text, cut to microseconds first."""
        return replace(self.with_type(column, new), text_timestamps=(*self.text_timestamps, column))

    def with_type(self, column: str, new: pa.DataType) -> ReadSettings:
        """The column read as ``new`` by pyarrow (no longer through its text, if it was)."""
        types = dict(self.column_types)
        types[column] = new
        text = tuple(name for name in self.text_timestamps if name != column)
        return replace(self, column_types=tuple(types.items()), text_timestamps=text)


def temporal_target(fld: pa.Field, col: Any) -> pa.DataType | None:
    """The ``timestamp[us]`` (or time of day) type the column ``col`` (of field ``fld``) is read as, or None
    to keep it.

    Timestamps in another unit become microseconds; strings that are all ISO timestamps become naive
    or UTC timestamps. Microseconds hold every year Celonis keeps (1400-9999) and every fraction it
    keeps (milliseconds), where pyarrow's ``timestamp[ns]`` holds only years 1677-2262. Strings that are
    all times of day (some with a fraction) become ``FINE_TIME``.
    """
    t = fld.type
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", t.tz) if t.unit != "us" else None
    if not pa.types.is_string(t) or not len(values := col.drop_null()):
        return None
    for pattern, target in (
        (_NAIVE, pa.timestamp("us")),
        (_ZONED, pa.timestamp("us", "UTC")),
        (TIME_OF_DAY, FINE_TIME),
    ):
        # The first values answer for most columns (text, ids) at a fraction of the cost: this runs on the
        # way to the first byte.
        if all(_all_match(part, pattern) for part in (values.slice(0, 64), values)):
            return target
    return None


def fine_timestamp_type(current: pa.DataType, value: str) -> pa.DataType | None:
    """The timestamp type a column of ``current`` type takes when it meets ``value``, a timestamp with more
    than six fractional digits (None: it is not one, or its zone does not fit the column's).

    Celonis keeps milliseconds, so the digits past the sixth are cut (a floor, as the text reads, before
    1970 too): the column is read as text and parsed once cut (``ReadSettings.text_timestamps``), instead
    of failing the push or landing as text.
    """
    found = _FINE.match(value)
    if found is None:
        return None
    tz = "UTC" if found.group(1) else None
    if pa.types.is_null(current) or pa.types.is_date(current):
        return pa.timestamp("us", tz)
    if pa.types.is_timestamp(current) and (current.tz is None) == (tz is None):
        return pa.timestamp("us", current.tz)
    return None


def _all_match(values: Any, pattern: str) -> bool:
    import pyarrow.compute as pc

    return bool(pc.all(pc.match_substring_regex(values, pattern)).as_py())


class FirstLook(NamedTuple):
    """What a look at a CSV's first block found (``csv_first_look``)."""

    settings: ReadSettings
    #: The schema the file reads as with ``settings``; None when the first block cannot be read.
    schema: pa.Schema | None
    #: The first block's rows, in the types pyarrow inferred (timestamps may still be text).
    rows: pa.RecordBatch | None


def csv_first_look(path: Any, what: str, settings: ReadSettings) -> FirstLook:
    """Read timestamps as microseconds, whatever pyarrow's inference made of the first block; and the schema
    the file reads as with them (None when the first block cannot be read: the schema read names why).

    pyarrow infers ``timestamp[s]`` or, with fractions, ``timestamp[ns]`` (so a ``9999-12-31`` later
    on fails), and leaves a column holding both as strings (see ``temporal_target``). The schema comes
    from the same read: every open of a CSV decodes its first block again (0.03-0.13 s of a small push).
    """
    check_encoding(path, settings, what)
    try:
        first = read_first_block(path, settings, lambda reader: reader.read_next_batch())
    except (StopIteration, pa.ArrowInvalid, OSError):
        return FirstLook(settings, None, None)  # no rows, or an error the schema read names properly
    forced = dict(settings.column_types)
    declared = _declared_text(settings, first.schema)
    inexact = _inexact_integer_columns(path, settings, first, {**forced, **dict.fromkeys(declared)})
    fields = []
    for fld, col in zip(first.schema, first.columns, strict=True):
        if fld.name in declared or fld.name in inexact:
            settings = settings.with_type(fld.name, pa.string())
            fld = fld.with_type(pa.string())
        elif fld.name not in forced and (target := temporal_target(fld, col)) is not None:
            settings = settings.with_type(fld.name, target)
            fld = fld.with_type(target)
        fields.append(fld)
    return FirstLook(settings, pa.schema(fields, metadata=first.schema.metadata), first)


def _declared_text(settings: ReadSettings, schema: pa.Schema) -> set[str]:
    """The file's columns declared STRING (``ReadSettings.text_columns``) that pyarrow did not read as text."""
    if not settings.text_columns:
        return set()
    wanted = set(settings.text_columns)
    return {
        fld.name
        for fld in schema
        if (sanitize_name(fld.name) if settings.sanitize_names else fld.name).lower() in wanted
        and not pa.types.is_string(fld.type)
        and fld.name not in dict(settings.column_types)
    }


def csv_block_schema(path: Any, settings: ReadSettings) -> pa.Schema:
    """The schema a CSV file's first block reads as (a file after the first: ``csv_first_look`` reads that
    one), with a column holding an integer a double cannot hold exactly read as text, as there."""

    def look(reader: CsvReader) -> tuple[pa.Schema, pa.RecordBatch | None]:
        try:
            first = reader.read_next_batch()
        except StopIteration:  # a header and no rows
            return reader.schema, None
        return first.schema, first

    schema, first = read_first_block(path, settings, look)
    if first is None:
        return schema
    inexact = _inexact_integer_columns(path, settings, first, dict(settings.column_types))
    return pa.schema(
        [f.with_type(pa.string()) if f.name in inexact else f for f in schema], metadata=schema.metadata
    )


#: Integers above this are not all doubles: 2**53 + 1 read as a double lands as 2**53.
EXACT_DOUBLE_INTEGER = 2**53


def beyond_exact(column: pa.Array) -> bool:
    """Whether a double column holds a value of ``EXACT_DOUBLE_INTEGER`` or more in size. ``min_max``, not
    a comparison: pyarrow's first comparison of doubles in a process costs ~0.27 s (2026-12-05)."""
    low, high = (v.as_py() for v in pc.min_max(column).values())
    return any(v is not None and abs(v) >= EXACT_DOUBLE_INTEGER for v in (low, high))


def _inexact_integer_columns(
    path: Any, settings: ReadSettings, first: pa.RecordBatch, forced: Mapping[str, Any]
) -> set[str]:
    """Columns pyarrow read as double whose first block holds an integer a double cannot hold exactly: one
    beyond int64 (pyarrow then takes double for the whole column, rounding every value) or beyond 2**53
    beside fractions. They are read as text, as the widening ladder has it ("an integer that overflows 64
    bits goes to string"). The text is read again only when a value's size says it may be one (rare)."""
    suspects = [
        fld.name
        for fld, col in zip(first.schema, first.columns, strict=True)
        if pa.types.is_floating(fld.type)
        and fld.name not in forced
        and first.schema.names.count(fld.name) == 1
        and beyond_exact(col)
    ]
    if not suspects:
        return set()
    as_text = settings
    for name in suspects:
        as_text = as_text.with_type(name, pa.string())
    text = read_first_block(path, as_text, lambda reader: reader.read_next_batch())
    found = set()
    for name in suspects:
        column = pc.utf8_trim_whitespace(text.column(name))
        long_integers = pc.filter(
            column,
            pc.and_(pc.match_substring_regex(column, r"^[+-]?\d{16,}$"), pc.is_valid(column)),
        )
        if any(abs(int(v)) > EXACT_DOUBLE_INTEGER for v in long_integers.to_pylist()):
            found.add(name)
    return found


def check_same_encoding(encoding: str | None, charset: Any) -> None:
    """Refuse an ``encoding=`` and a ``csv_parsing_options`` ``charSet`` naming different codecs (spellings
    of one codec, ``utf8`` and ``UTF-8``, agree)."""
    if not encoding or not charset:
        return
    try:
        agree = codecs.lookup(encoding).name == codecs.lookup(str(charset)).name
    except LookupError as exc:
        raise CelonisConfigError(f"unknown encoding {encoding!r} or charSet {charset!r}") from exc
    if not agree:
        raise CelonisConfigError(
            f"encoding={encoding!r} and csv_parsing_options charSet={charset!r} disagree; give one"
        )


def check_encoding(path: Any, settings: ReadSettings, what: str) -> None:
    """Name the file and its encoding when it is not what it will be read as (UTF-8 unless given).

    Only the first 64 KiB are checked here, before any job exists; a bad byte further on is named by
    the reader's error (see ``csv_errors.csv_error``).
    """
    with open_raw(path) as handle:
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


def read_first_block(path: Any, settings: ReadSettings, read: Callable[[Any], T]) -> T:
    """``read`` applied to an unthreaded reader of the file's head (``_head``); of the whole file when the
    head cannot answer, so that a failure is the whole file's."""
    try:
        head = _head(path)
    except OSError:
        head = None  # the whole file's read meets the same error
    if head is not None:
        try:
            with open_csv(head, settings, threads=False) as reader:
                return read(reader)
        except (pa.ArrowException, ValueError, OSError):
            pass  # e.g. a record longer than a block: the whole file's read fails alike, and says so
    with open_csv(path, settings, threads=False) as reader:
        return read(reader)


def _head(path: Any) -> pa.BufferReader | None:
    """A file's first ``LOOK_BYTES`` (decompressed) in memory, for the first look (None: the file is no
    bigger, read it itself).

    pyarrow's reader reads 32 blocks ahead of its parser (Arrow does not expose the depth, ARROW-12090): on the
    whole file, a look at one block copied 140 MiB into fresh memory (0.1-0.6 s on a 1 GB file, against 0.05 s
    on a 50 MB one), and decompressed or downloaded as much. The first batch is the same: the first block's
    records and the one completing them, well inside three blocks (pyarrow fails on a record longer than one
    block).
    """
    with open_stream(path) as handle:
        if handle.seekable() and handle.size() <= LOOK_BYTES:
            return None  # known small without reading it (a folder of small files is read once, not twice)
        head = handle.read_buffer(LOOK_BYTES)
    return pa.BufferReader(head) if head.size == LOOK_BYTES else None


def open_csv(
    path: Any,
    settings: ReadSettings,
    *,
    threads: bool = True,
    block_bytes: int | None = None,
    **convert: Any,
) -> CsvReader:
    """pyarrow's streaming CSV reader, with the NULL rule of ``ReadSettings`` (quoted values never NULL).

    ``threads=False`` for a look at the first block (schema, timestamps): a threaded reader starts decoding
    the blocks after it at once, work thrown away that delays the push's first chunk on a busy core. A
    threaded reader of a UTF-8 file (local, compressed or object storage) holds its read-ahead back, past its
    first three blocks, until the second batch is asked for (``files.HeldBack``, ``CsvReader``).
    ``block_bytes``: ``CSV_BLOCK_BYTES`` when None; pyarrow infers types from the first block, so only a read
    with every type given may take smaller ones (``typed_block_bytes``).
    """
    block_bytes = block_bytes or CSV_BLOCK_BYTES
    read_options = pacsv.ReadOptions(
        block_size=block_bytes, use_threads=threads, encoding=settings.encoding or "utf8"
    )
    # Quoted values may hold line breaks (RFC 4180); without this pyarrow fails on them when a block
    # boundary falls inside one. It costs no measurable throughput (benchmarks/push_throughput.py).
    parse_options = pacsv.ParseOptions(
        delimiter=settings.delimiter or ",",
        quote_char=settings.quote_char,
        escape_char=settings.escape_char or False,
        newlines_in_values=True,
    )
    as_text: dict[str, pa.DataType] = {}
    if "column_types" not in convert:
        types = dict(settings.column_types)
        as_text = {
            name: types[name]
            for name in settings.text_timestamps
            if name in types and pa.types.is_timestamp(types[name])
        }
        convert["column_types"] = {**types, **dict.fromkeys(as_text, pa.string())}
    convert_options = pacsv.ConvertOptions(
        null_values=list(settings.null_values),
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        **convert,
    )
    held: HeldBack | None = None
    if isinstance(path, pa.NativeFile):
        source = path
    elif threads and _holds_back(settings):
        held = HeldBack(open_stream(path), hold=3 * block_bytes, timeout=HOLD_TIMEOUT_SECONDS)
        source = pa.PythonFile(held, mode="r")
    else:
        source = open_stream(path)
    try:
        reader = pacsv.open_csv(
            source,
            read_options=read_options,
            parse_options=parse_options,
            convert_options=convert_options,
            memory_pool=data_pool(),
        )
    except BaseException:
        if held is not None:
            held.close()
        raise
    return CsvReader(reader, held, as_text)


def typed_block_bytes() -> int:
    """The block size of a read told every column's type (``READ_BLOCK_BYTES``, never above the look's)."""
    return min(READ_BLOCK_BYTES, CSV_BLOCK_BYTES)


def _holds_back(settings: ReadSettings) -> bool:
    """Whether a threaded reader reads through ``HeldBack``: a UTF-8 file's first batch is inside its first
    ``LOOK_BYTES`` (a transcoded one's, e.g. UTF-16, may need more raw bytes)."""
    try:
        return settings.encoding is None or codecs.lookup(settings.encoding).name == "utf-8"
    except LookupError:
        return False


class CsvReader:
    """pyarrow's ``CSVStreamingReader`` that lets its file's read-ahead go when the second batch is asked for:
    until then the first batch, and what its caller makes of it (the push's first chunk), have the core."""

    def __init__(
        self,
        reader: pacsv.CSVStreamingReader,
        held: HeldBack | None = None,
        as_text: Mapping[str, pa.DataType] | None = None,
    ) -> None:
        self._reader = reader
        #: The file held back, when it is one (tests read how far it got).
        self.held = held
        self._batches = 0
        #: Timestamp columns read as text, and the types they are parsed into (``text_timestamps``).
        self._as_text = dict(as_text or {})
        schema = reader.schema
        for name, target in self._as_text.items():
            schema = schema.set(schema.get_field_index(name), pa.field(name, target))
        self.schema = schema

    def read_next_batch(self) -> pa.RecordBatch:
        self._batches += 1
        if self._batches > 1 and self.held is not None:
            self.held.release()
        batch = self._reader.read_next_batch()
        if not self._as_text:
            return batch
        columns = list(batch.columns)
        for name, target in self._as_text.items():
            index = batch.schema.get_field_index(name)
            columns[index] = _parse_cut(columns[index], target, index)
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return self

    def __next__(self) -> pa.RecordBatch:
        return self.read_next_batch()

    def close(self) -> None:
        self._reader.close()
        if self.held is not None:
            self.held.close()

    def __enter__(self) -> CsvReader:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _parse_cut(text: pa.Array, target: pa.DataType, index: int) -> pa.Array:
    """Timestamps read as text, cut to microseconds and parsed. A value that is no timestamp fails as
    pyarrow's reader would have (``csv_errors`` widens the column)."""
    cut = pc.replace_substring_regex(pc.utf8_trim_whitespace(text), *CUT_TO_MICROSECONDS)
    try:
        return pc.cast(cut, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        bad = pc.and_(pc.is_valid(cut), pc.invert(pc.fill_null(_parses(cut, target), False)))
        row = pc.index(bad, True).as_py()
        value = text[row].as_py() if row is not None and row >= 0 else ""
        raise pa.ArrowInvalid(
            f"In CSV column #{index}: CSV conversion error to {target}: invalid value '{value}'"
        ) from None


def _parses(values: pa.Array, target: pa.DataType) -> pa.Array:
    """Per value, whether it parses as ``target`` (the failing path only: a cast per value)."""
    ok = []
    for value in values.to_pylist():
        try:
            pc.cast(pa.array([value], pa.string()), target)
            ok.append(True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            ok.append(False)
    return pa.array(ok, pa.bool_())
