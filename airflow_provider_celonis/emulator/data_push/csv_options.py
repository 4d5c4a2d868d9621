"""Turning Celonis ``csvParsingOptions`` into DuckDB ``read_csv`` arguments.

Java date patterns (``yyyy-MM-dd'T'HH:mm:ss``) become strptime patterns; character sets DuckDB cannot
read natively are transcoded to UTF-8 on disk first, streaming, so any Python codec works.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import Any

# Longest tokens first so "MMMM" wins over "MM".
_JAVA_TOKENS: list[tuple[str, str]] = [
    ("yyyy", "%Y"),
    ("YYYY", "%Y"),
    ("uuuu", "%Y"),
    ("yy", "%y"),
    ("MMMM", "%B"),
    ("MMM", "%b"),
    ("MM", "%m"),
    ("M", "%-m"),
    ("dd", "%d"),
    ("d", "%-d"),
    ("HH", "%H"),
    ("H", "%-H"),
    ("hh", "%I"),
    ("h", "%-I"),
    ("mm", "%M"),
    ("m", "%-M"),
    ("ss", "%S"),
    ("s", "%-S"),
    ("SSSSSS", "%f"),
    ("SSS", "%g"),
    ("EEEE", "%A"),
    ("EEE", "%a"),
    ("a", "%p"),
    ("XXX", "%z"),
    ("XX", "%z"),
    ("X", "%z"),
    ("Z", "%z"),
]
_TOKEN_RE = re.compile("|".join(re.escape(t) for t, _ in _JAVA_TOKENS) + r"|'[^']*'|''|.", re.DOTALL)
_TOKEN_MAP = dict(_JAVA_TOKENS)

LINE_ENDINGS = {"\n": "\\n", "\r\n": "\\r\\n", "\r": "\\r", "LF": "\\n", "CRLF": "\\r\\n", "CR": "\\r"}
NATIVE_CHARSETS = {"utf-8", "utf8"}


def java_to_strptime(pattern: str) -> str:
    """Translate a Java ``DateTimeFormatter``/``SimpleDateFormat`` pattern into a strptime pattern."""
    out: list[str] = []
    for token in _TOKEN_RE.findall(pattern):
        if token in _TOKEN_MAP:
            out.append(_TOKEN_MAP[token])
        elif token == "''":
            out.append("'")
        elif token.startswith("'") and token.endswith("'") and len(token) >= 2:
            out.append(token[1:-1].replace("%", "%%"))
        else:
            out.append(token.replace("%", "%%"))
    return "".join(out)


def _decode_escapes(value: str) -> str:
    """Clients send either real control characters or their escaped spelling (``\\t``, ``\\n``)."""
    return {"\\t": "\t", "\\n": "\n", "\\r\\n": "\r\n", "\\r": "\r"}.get(value, value)


def read_csv_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """Keyword arguments for DuckDB's ``read_csv`` (values still to be bound as parameters)."""
    opts = options or {}
    # PostgreSQL COPY CSV / Spark: unquoted empty = NULL, quoted "" = empty string (DuckDB's default is NULL).
    # Separator, quote and escape default to RFC 4180's (what the provider's splitter assumes), never to
    # what DuckDB's sniffer guesses from a chunk's sample: a quoted "" after ~20,000 rows landed as the text
    # "" and a quoted line break failed the job, while the same values early in the chunk landed right.
    result: dict[str, Any] = {
        "header": True,
        # The header is the first line: never lines skipped as a preamble. Without this, rows with one
        # field more than the header made DuckDB take the first data row for the header (the job DONE,
        # the table's columns named after row 1's values, row 1 gone).
        "skip": 0,
        "allow_quoted_nulls": False,
        "delim": _decode_escapes(opts.get("separatorSequence") or ","),
        "quote": opts.get("quoteSequence") or '"',
        "escape": opts.get("escapeSequence") or opts.get("quoteSequence") or '"',
    }
    if opts.get("decimalSeparator"):
        result["decimal_separator"] = opts["decimalSeparator"]
    if opts.get("thousandSeparator"):
        result["thousands"] = opts["thousandSeparator"]
    if opts.get("dateFormat"):
        fmt = java_to_strptime(opts["dateFormat"])
        result["dateformat"] = fmt
        result["timestampformat"] = fmt
    ending = opts.get("lineEnding")
    if ending:
        result["new_line"] = LINE_ENDINGS.get(ending, LINE_ENDINGS.get(_decode_escapes(ending), ending))
    return result


def ragged_record(path: Path, args: dict[str, Any]) -> str | None:
    """Where a CSV chunk's records stop having the header's number of fields (None: they all do, or the
    separator is longer than Python's reader takes), to name it when DuckDB cannot read the chunk."""
    import csv

    delim, quote = str(args["delim"]), str(args["quote"])
    if len(delim) != 1 or len(quote) != 1 or args.get("escape") != quote:
        return None
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delim, quotechar=quote, strict=True)
        try:
            header = next(reader)
            for record in reader:
                if len(record) != len(header):
                    return (
                        f"record {reader.line_num - 1} (ending on line {reader.line_num}) has {len(record)} "
                        f"fields, but the header has {len(header)}"
                    )
        except (csv.Error, StopIteration, UnicodeDecodeError):
            return None
    return None


def ensure_utf8(path: Path, charset: str | None, work_dir: Path) -> Path:
    """Return a UTF-8 version of ``path``: itself when already UTF-8, else a transcoded copy in ``work_dir``."""
    if not charset or charset.strip().lower() in NATIVE_CHARSETS:
        return path
    try:
        codecs.lookup(charset)
    except LookupError as exc:
        raise ValueError(f"unknown charSet {charset!r}") from exc
    target = work_dir / f"{path.name}.utf8.csv"
    with (
        open(path, encoding=charset, newline="") as src,
        open(target, "w", encoding="utf-8", newline="") as dst,
    ):
        while block := src.read(1 << 20):
            dst.write(block)
    return target
