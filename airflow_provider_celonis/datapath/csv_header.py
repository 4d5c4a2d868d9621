"""The CSV pass-through's checks before any job exists: header names, encoding, keys, parsing options."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_celonis.datapath.files import compression_of
from airflow_provider_celonis.hooks.errors import CelonisConfigError


def csv_header(path: str | os.PathLike[str], options: Mapping[str, Any], what: str) -> tuple[list[str], bool]:
    """The column names in a CSV file's first record (job's separator, quote and charset), and whether
    a record with a value follows the header (looked for in the first MiB).

    A UTF-8 byte-order mark is not part of the first name; a UTF-16/32 one, or bytes that are not the
    declared charset, are a clear error naming the file and the charset.
    """
    import codecs
    import csv

    if compression_of(path):
        raise CelonisConfigError(
            f"{what}: {path} is compressed; file_type='CSV' sends a file's bytes as they are, and Celonis reads "
            "them as text: use file_type='PARQUET' (the default), which reads compressed CSV"
        )
    charset = str(options.get("charSet") or "UTF-8")
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 20)
        codec = codecs.lookup(charset).name
        if codec == "utf-8" and head.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
            raise CelonisConfigError(
                f"{what}: {path} starts with a UTF-16/32 byte-order mark, not UTF-8: convert it to UTF-8 "
                "(or set csv_parsing_options charSet)"
            )
        if b"\r" in head and b"\n" not in head:
            # The split finds records by their line feeds: this file would be one header line and no rows,
            # and a REPLACE would empty the table.
            raise CelonisConfigError(
                f"{what}: {path} ends its lines with a carriage return alone (old Mac style); the CSV "
                "pass-through needs LF or CRLF line endings: convert the file, or push it with "
                'file_type="PARQUET" (the default)'
            )
        text = codecs.getincrementaldecoder("utf-8-sig" if codec == "utf-8" else charset)().decode(head)
    except LookupError as exc:
        raise CelonisConfigError(f"{what}: unknown charSet {charset!r} for {path}") from exc
    except UnicodeDecodeError as exc:
        raise CelonisConfigError(
            f"{what}: {path} is not valid {charset}: byte 0x{head[exc.start]:02x} at offset {exc.start}; "
            "set csv_parsing_options charSet (or encoding=) to the file's encoding"
        ) from exc
    except OSError as exc:
        raise CelonisConfigError(f"{what}: cannot read the header of {path}: {exc}") from exc
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=str(options.get("separatorSequence") or ","),
        quotechar=str(options.get("quoteSequence") or '"'),
        escapechar=str(options["escapeSequence"]) if options.get("escapeSequence") else None,
    )
    header = next(reader, None)
    if not header:
        raise CelonisConfigError(f"{what}: {path} is empty (no header line)")
    has_rows = any(any(value.strip() for value in record) for record in reader)
    # Names as written: what Celonis makes of a space around one is not documented, and the PARQUET
    # conversion's name rule refuses it; stripping it here would key a column Celonis may name otherwise.
    return header, has_rows


@dataclass(frozen=True)
class CsvHeaders:
    """What the CSV pass-through checked in its files' header lines."""

    #: The column names as they land (sanitized when asked), of the last file.
    columns: list[str]
    #: Whether any file holds a record with a value after its header.
    has_rows: bool
    #: Per file, the header line to send instead of the file's (only files whose names were sanitized).
    replaced: dict[str, bytes]


def check_csv_headers(
    paths: Sequence[str],
    options: Mapping[str, Any],
    keys: Sequence[str],
    what: str,
    sanitize: bool = False,
) -> CsvHeaders:
    """Pass-through's check before any job exists: encoding, the name rule (``names``), keys present.

    The same name rule as the PARQUET conversion; with ``sanitize`` the renamed header is sent instead.
    """
    from airflow_provider_celonis.datapath.names import column_names

    columns: list[str] = []
    has_rows = False
    replaced: dict[str, bytes] = {}
    separator = str(options.get("separatorSequence") or ",").replace("\\t", "\t")
    for path in paths:
        raw, rows = csv_header(path, options, what)
        has_rows = has_rows or rows
        named = column_names(raw, sanitize=sanitize, what=f"{what}: {path}")
        if columns and [c.lower() for c in named] != [c.lower() for c in columns]:
            # Celonis would take each chunk by its own header: a typo would split a column in two.
            raise CelonisConfigError(
                f"{what}: {path} has columns {raw}, but {paths[0]} has {columns}; every file of one push needs "
                "the same header"
            )
        columns = named
        if columns != raw:
            replaced[str(path)] = separator.join(columns).encode()
        present = {c.lower() for c in columns}
        missing = [k for k in keys if k.lower() not in present]
        if missing:
            raise CelonisConfigError(
                f"{what}: {path} has no key column(s) {', '.join(map(repr, missing))}; header is {columns}"
            )
    return CsvHeaders(columns, has_rows, replaced)


def passthrough_options(
    file_type: str,
    options: Mapping[str, Any] | None,
    encoding: str | None,
    null_values: Sequence[str] | None,
) -> Mapping[str, Any] | None:
    """The job's ``csvParsingOptions``: with ``file_type="CSV"`` the operator's ``encoding`` is sent as
    ``charSet`` (Celonis decodes); ``null_values`` cannot apply there, Celonis parses the values."""
    import codecs

    if str(file_type).upper() != "CSV":
        return options
    if null_values is not None and list(null_values) != [""]:
        raise CelonisConfigError(
            "null_values applies where the client parses (file_type='PARQUET'); with file_type='CSV' Celonis "
            'parses the values (an unquoted empty field is NULL, a quoted "" an empty string)'
        )
    if not encoding:
        return options
    from airflow_provider_celonis.datapath.text_read import check_same_encoding

    try:
        codec = codecs.lookup(encoding).name
    except LookupError as exc:
        raise CelonisConfigError(f"unknown encoding {encoding!r}") from exc
    check_same_encoding(encoding, (options or {}).get("charSet"))
    if codec.startswith(("utf-16", "utf-32")):
        raise CelonisConfigError(
            f"file_type='CSV' sends the file's bytes split at line breaks, which {encoding} does not allow: "
            "use file_type='PARQUET' with this encoding, or convert the file to UTF-8"
        )
    return {**(options or {}), "charSet": encoding}
