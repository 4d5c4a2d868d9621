"""JSON lines files, read in blocks: memory follows the block, not the file.

pyarrow's ``read_json`` holds the whole file as a table (a 188 MB file peaked at 648 MB RSS, twice that
file at 1,112 MB; in 4 MiB blocks 253 and 263 MB, 2026-12-05), and its streaming reader fixes the columns
after the first block, so a key that first appears later (a sparse field) would fail. So a file is read
twice, a block at a time, as it was read twice whole before: a first look over every block settles the
columns (every key, in the order they first appear) and their types, the second read converts each block
to them.

The rules are those of one whole read: integers and fractions make a FLOAT; a column holding an integer a
double cannot hold exactly lands as STRING, each number as written; strings that are all ISO timestamps
become timestamps (decided from the text of every block, never from what pyarrow infers from one); a
number and a string in one column fail, naming the rows. A file with nested values (objects or arrays in
a column) is read whole, as before: merging their shapes across blocks is pyarrow's job there, and only
the ingestion API takes them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from airflow_provider_celonis.datapath.files import open_stream
from airflow_provider_celonis.datapath.text_read import (
    CUT_TO_MICROSECONDS,
    EXACT_DOUBLE_INTEGER,
    TIMESTAMP_TEXT,
    beyond_exact,
    temporal_target,
)
from airflow_provider_celonis.hooks.errors import CelonisConfigError

#: Bytes of a file parsed at once (cut between two records); pyarrow parses its 1 MiB pieces on every
#: core. 4 MiB: a 188 MB file peaks at ~260 MB RSS, with 3 % less CPU than 16 MiB blocks.
JSON_BLOCK_BYTES = 4 << 20
_BOM = b"\xef\xbb\xbf"
_ROW = re.compile(r" in row (\d+)")
#: Dates alone and naive timestamps: a column of both holds naive timestamps (a date at midnight).
_DATE_OR_NAIVE = rf"^\d{{4}}-\d{{2}}-\d{{2}}$|^{TIMESTAMP_TEXT}$"


@dataclass
class JsonLook:
    """What the first look over a file's blocks settled."""

    schema: pa.Schema
    #: Columns whose numbers land as written (an integer a double cannot hold exactly is among them).
    as_text: set[str] = field(default_factory=set)
    #: The file holds nested values: it is read whole (``read_whole``).
    nested: bool = False


def json_blocks(path: Any) -> Iterator[bytes]:
    """The file's bytes in pieces of about ``JSON_BLOCK_BYTES``, each ending between two records: after a
    ``}`` that ends a line followed by a line that starts with ``{``. Inside a record that never happens
    (two values need a comma between them), pretty-printed or not, whatever a string holds (a line break in
    a string is written ``\\n``). A record longer than a block makes a longer piece (its parts are joined
    once, not copied per read)."""
    with open_stream(path) as stream:
        head = stream.read(len(_BOM))
        pieces: list[bytes] = [] if head == _BOM else [head]
        last = b"" if head == _BOM else head[-3:]  # the bytes before ``data``: a cut may straddle them
        pending = len(pieces[0]) if pieces else 0
        while True:
            data = stream.read(JSON_BLOCK_BYTES)
            if not data:
                tail = b"".join(pieces)
                if tail.strip():
                    yield tail
                return
            split = _record_start(last + data) - len(last) if pending + len(data) >= JSON_BLOCK_BYTES else -1
            if split >= 0:
                yield b"".join([*pieces, data[:split]])
                pieces, pending = [data[split:]], len(data) - split
            else:
                pieces.append(data)
                pending += len(data)
            last = (last + data)[-3:]


def _record_start(window: bytes) -> int:
    """Where the last record that follows another starts in ``window`` (its ``{``), or -1."""
    found = max((window.rfind(end), len(end)) for end in (b"}\n{", b"}\r\n{"))
    return found[0] + found[1] - 1 if found[0] >= 0 else -1


def parse_block(block: bytes, path: Any, first_row: int, strings: tuple[str, ...] = ()) -> pa.Table:
    """One block as a table (``strings``: columns read as text, never as pyarrow's timestamps); a parse
    error names its row in the file, not in pyarrow's piece of the block."""
    parse = pajson.ParseOptions(
        explicit_schema=pa.schema([(name, pa.string()) for name in strings]) if strings else None,
        unexpected_field_behavior="infer",
        newlines_in_values=True,  # pretty-printed records: pyarrow's own pieces must not cut them either
    )
    try:
        return pajson.read_json(pa.BufferReader(block), parse_options=parse)
    except pa.ArrowInvalid as exc:
        if "from object to array in row 0" in str(exc) or "from array to object in row 0" in str(exc):
            raise CelonisConfigError(
                f"cannot read json file {path}: it holds a JSON array; JSON lines are read, one object per "
                "line (or object after object)"
            ) from exc
        whole = pajson.ReadOptions(block_size=len(block) + 1)
        try:  # again as one piece, so that pyarrow's row number counts from the block's first row
            pajson.read_json(pa.BufferReader(block), read_options=whole, parse_options=parse)
        except pa.ArrowInvalid as again:
            exc = again
        message = _ROW.sub(lambda m: f" in row {first_row + int(m.group(1)) + 1}", str(exc))
        raise CelonisConfigError(f"cannot read json file {path}: {message}") from exc


def json_look(path: Any) -> JsonLook:
    """Every block's columns and types, settled as one whole read would (see the module)."""
    types: dict[str, pa.DataType] = {}
    seen: dict[str, tuple[int, int]] = {}  # the rows of the block where each column's kind was first seen
    stamps: dict[str, pa.DataType | None] = {}  # text columns: their timestamp type, None if not all are
    big_integers: set[str] = set()  # integer columns beyond 2**53: text if the column ends up FLOAT
    as_text: set[str] = set()
    row = 0
    for block in json_blocks(path):
        table = _text_block(block, path, row, stamps)
        rows = (row + 1, row + table.num_rows)
        for fld, col in zip(table.schema, table.columns, strict=True):
            name, have = fld.name, fld.type
            if pa.types.is_nested(have):
                return JsonLook(read_whole(path).schema, nested=True)
            if pa.types.is_null(have) or col.null_count == len(col):  # no value here: no say in its type
                types.setdefault(name, pa.null())
                continue
            if pa.types.is_integer(have) and _beyond_exact_integer(col):
                big_integers.add(name)
            elif pa.types.is_floating(have) and name not in as_text and beyond_exact(col):
                written = _written(block, {name}, path, table.num_rows)[name]
                if not all(exact_integer(v) for v in written if v is not None):
                    as_text.add(name)  # beyond int64, or beyond 2**53 beside fractions: a double rounds it
            if pa.types.is_string(have) and (name not in stamps or stamps[name] is not None):
                stamp = _stamp(fld, col)  # once a column is not all timestamps, nothing makes it one
                stamps[name] = stamp if stamps.get(name, stamp) == stamp else None
            types[name] = _merged(types.get(name), have, name, path, seen.setdefault(name, rows), rows)
        row += table.num_rows
    as_text |= {name for name, kind in types.items() if pa.types.is_floating(kind) and name in big_integers}
    fields = [
        pa.field(name, pa.string() if name in as_text else stamps.get(name) or kind)
        for name, kind in types.items()
    ]
    return JsonLook(pa.schema(fields), as_text)


def _text_block(block: bytes, path: Any, first_row: int, text: dict[str, Any]) -> pa.Table:
    """A block with the columns known to hold text (``text``'s keys) read as text, and so is any column
    pyarrow would take as timestamps: whether a column is one is decided from its text in every block
    (``_stamp``), never by what pyarrow infers from one block (whole seconds with an offset become naive
    instants, a date alone a timestamp)."""
    table = parse_block(block, path, first_row, tuple(text))
    inferred = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
    if not inferred:
        return table
    # pyarrow puts the columns it is told first: keep the order the keys come in (the columns' order).
    return parse_block(block, path, first_row, (*text, *inferred)).select(table.column_names)


def _stamp(fld: pa.Field, col: Any) -> pa.DataType | None:
    """The timestamp type a text column of one block reads as (None: not all its values are ISO timestamps
    of one kind): naive, or with an offset (their instants in UTC). A date alone is a naive timestamp at
    midnight, as pyarrow's reader took it, beside other dates or naive timestamps."""
    target = temporal_target(fld, col)
    if target is not None and pa.types.is_timestamp(target):
        return target
    values = col.drop_null()
    # The first values answer for most columns (names, ids) at a fraction of the cost of all of them.
    if len(values) and all(
        pc.all(pc.match_substring_regex(part, _DATE_OR_NAIVE)).as_py()
        for part in (values.slice(0, 64), values)
    ):
        return pa.timestamp("us")
    return None


def _beyond_exact_integer(col: Any) -> bool:
    """Whether an integer column holds one a double cannot hold exactly (beyond 2**53: 2**53 itself it can)."""
    low, high = (v.as_py() for v in pc.min_max(col).values())
    return any(v is not None and abs(v) > EXACT_DOUBLE_INTEGER for v in (low, high))


def _merged(
    known: pa.DataType | None,
    have: pa.DataType,
    name: str,
    path: Any,
    seen: tuple[int, int],
    rows: tuple[int, int],
) -> pa.DataType:
    if known is None or pa.types.is_null(known) or known.equals(have):
        return have
    numbers = (pa.types.is_integer, pa.types.is_floating)
    if any(t(known) for t in numbers) and any(t(have) for t in numbers):
        return pa.float64() if pa.types.is_floating(known) or pa.types.is_floating(have) else pa.int64()
    raise CelonisConfigError(
        f"cannot read json file {path}: column {name!r} holds {_kind(known)} values (from rows {seen[0]}-"
        f"{seen[1]} on) and {_kind(have)} values in rows {rows[0]}-{rows[1]}; JSON lines cannot hold both in "
        "one column: quote the numbers, or push the file as CSV or parquet"
    )


def _kind(t: pa.DataType) -> str:
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return "number"
    return "true/false" if pa.types.is_boolean(t) else "string" if pa.types.is_string(t) else str(t)


def json_batches(path: Any, look: JsonLook, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """The file's rows in ``look``'s columns and types, block by block."""
    if look.nested:
        yield from read_whole(path).to_batches(max_chunksize=batch_rows)
        return
    strings = tuple(
        f.name
        for f in look.schema
        if f.name not in look.as_text and (pa.types.is_string(f.type) or pa.types.is_timestamp(f.type))
    )
    row = 0
    for block in json_blocks(path):
        table = parse_block(block, path, row, strings)
        row += table.num_rows
        yield from block_table(table, block, look, path).to_batches(max_chunksize=batch_rows)


def block_table(table: pa.Table, block: bytes, look: JsonLook, path: Any) -> pa.Table:
    """A block's table with every column of the file, in the settled types."""
    texts = _written(block, look.as_text & set(table.column_names), path, table.num_rows)
    columns = []
    for fld in look.schema:
        if fld.name in texts:
            columns.append(pa.array(texts[fld.name], pa.string()))
            continue
        if fld.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, fld.type))
            continue
        col = table.column(fld.name)
        if pa.types.is_timestamp(fld.type) and pa.types.is_string(col.type):
            col = _timestamps(col, fld.type)
        elif not col.type.equals(fld.type):
            col = col.cast(fld.type)  # integers into a FLOAT column: exact, or the look took them as text
        columns.append(col)
    return pa.Table.from_arrays(columns, schema=look.schema)


def _timestamps(text: Any, target: pa.DataType) -> Any:
    """ISO timestamp text as ``target``, more than six fractional digits cut (as in a CSV file; pyarrow's
    parser refuses them, so the cut, a pass over every value, runs only then)."""
    try:
        return pc.cast(text, target)
    except pa.ArrowInvalid:
        return pc.cast(pc.replace_substring_regex(text, *CUT_TO_MICROSECONDS), target)


def _written(block: bytes, names: set[str], path: Any, rows: int) -> dict[str, list[str | None]]:
    """The given columns' numbers as their text, record by record (however the block breaks its lines)."""
    if not names:
        return {}
    texts: dict[str, list[str | None]] = {name: [] for name in names}
    text = block.decode("utf-8")
    decoder = json.JSONDecoder(parse_int=str, parse_float=str)
    position, end = 0, len(text)
    while True:
        while position < end and text[position] in " \t\r\n":
            position += 1
        if position >= end:
            break
        try:
            record, position = decoder.raw_decode(text, position)
        except ValueError as exc:
            raise CelonisConfigError(
                f"cannot read json file {path} again to keep its large integers: {exc}"
            ) from exc
        for name, values in texts.items():
            value = record.get(name) if isinstance(record, dict) else None
            values.append(value if isinstance(value, str) else None)
    for name, values in texts.items():
        if len(values) != rows:
            raise CelonisConfigError(
                f"json file {path}: column {name!r} holds integers a double cannot hold, and reading the file "
                f"again found {len(values)} records where pyarrow read {rows}: quote the numbers"
            )
    return texts


def read_whole(path: Any) -> pa.Table:
    """A file with nested values, read whole (see the module); its large integers and timestamps as in
    every JSON file: a column is timestamps when its text says so (``_stamp``), not when pyarrow's pieces
    infer it (offsets dropped from whole seconds, naive and zoned values mixed)."""
    with open_stream(path) as handle:
        data = handle.read().removeprefix(_BOM)
    table = _text_block(data, path, 0, {})
    suspects = {
        f.name
        for f, c in zip(table.schema, table.columns, strict=True)
        if pa.types.is_floating(f.type) and beyond_exact(c)
    }
    for name, values in _written(data, suspects, path, table.num_rows).items():
        if not all(exact_integer(v) for v in values if v is not None):
            index = table.schema.get_field_index(name)
            table = table.set_column(index, pa.field(name, pa.string()), pa.array(values, pa.string()))
    for index, fld in enumerate(table.schema):
        col = table.column(index)
        if not pa.types.is_string(fld.type) or (target := _stamp(fld, col)) is None:
            continue
        try:
            table = table.set_column(index, fld.with_type(target), _timestamps(col, target))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue  # shaped like timestamps, not all of them are (a 30 February): it stays text
    return table


def exact_integer(text: str) -> bool:
    """Whether a JSON number's text is an integer a double holds exactly."""
    digits = text.lstrip("+-")
    return not digits.isdigit() or int(digits) <= EXACT_DOUBLE_INTEGER
