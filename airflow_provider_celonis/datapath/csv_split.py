"""CSV pass-through: split a big CSV file into header-prefixed chunks at record boundaries.

Celonis Data Push caps the size of one uploaded file, so a big CSV is sent as several CSV chunks, each
starting with the file's header line (Celonis maps columns by it) followed by whole records. Values are
never parsed: a chunk is a byte range of the source file, found by tracking only whether a position is
inside a quoted field, and read lazily at upload time. No temporary files are written.

``csv_scan`` finds the record boundaries, ``csv_chunk`` reads a chunk back, ``csv_header`` checks the
header lines and options before any job exists.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from airflow_provider_celonis.datapath.csv_chunk import CsvChunk, CsvChunkReader
from airflow_provider_celonis.datapath.csv_header import (
    CsvHeaders,
    check_csv_headers,
    csv_header,
    passthrough_options,
)
from airflow_provider_celonis.datapath.csv_scan import Scanner

# Re-exported: callers import the chunk, reader and header checks from here.
__all__ = [
    "BLOCK_SIZE",
    "UTF8_BOM",
    "CsvChunk",
    "CsvChunkReader",
    "CsvHeaders",
    "check_csv_headers",
    "csv_header",
    "passthrough_options",
    "split_csv",
]

#: Bytes read at a time while looking for chunk ends; memory use is one such buffer.
BLOCK_SIZE = 8 << 20

UTF8_BOM = b"\xef\xbb\xbf"


def split_csv(
    path: str | os.PathLike[str],
    max_bytes: int,
    *,
    quote: bytes = b'"',
    escape: bytes | None = None,
    line_ending: bytes | None = None,
    has_header: bool = True,
    header: bytes | None = None,
    first_bytes: int | None = None,
) -> Iterator[CsvChunk]:
    """Yield chunks of at most ``max_bytes`` (header included), each ending on a record boundary.

    ``first_bytes``: the first chunk holds at most this many bytes, each next one twice the last, up to
    ``max_bytes``, so the first chunk is found (and sent) early; a record too long for a grown cap still
    gets a chunk of its own up to ``max_bytes``.

    A UTF-8 byte-order mark is not sent (every chunk starts with the header line); ``header``, when
    given, is sent instead of the file's header line (without line ending: the file's is appended),
    e.g. with sanitized column names. ``CsvChunk.records`` counts the records outside quotes.

    Chunks are found lazily, so the first one can be uploaded while the rest of the file is scanned.
    ``line_ending`` None takes the ending of the header line (of the first line without a header).
    Raises ``ValueError`` for a record that cannot fit in one chunk and for a quote left open at the
    end of the file; arguments are checked at once, the file only when iterating.
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ValueError(f"max_bytes must be a positive int, got {max_bytes!r}")
    if not isinstance(quote, bytes) or len(quote) != 1:
        raise ValueError(f"quote must be a single byte, got {quote!r}")
    if escape is not None and (not isinstance(escape, bytes) or len(escape) != 1):
        raise ValueError(f"escape must be a single byte or None, got {escape!r}")
    if line_ending not in (None, b"\n", b"\r\n"):
        raise ValueError(f"line_ending must be b'\\n', b'\\r\\n' or None, got {line_ending!r}")
    if first_bytes is not None and (
        isinstance(first_bytes, bool) or not isinstance(first_bytes, int) or first_bytes <= 0
    ):
        raise ValueError(f"first_bytes must be a positive int or None, got {first_bytes!r}")
    if escape == quote:
        escape = None  # an escape equal to the quote is just quote doubling
    elif escape is not None and escape in b"\r\n":
        raise ValueError(f"escape {escape!r} cannot be a line ending byte")
    return _split(
        Path(path),
        max_bytes,
        quote[0],
        None if escape is None else escape[0],
        line_ending,
        has_header,
        header,
        first_bytes,
    )


def _split(
    path: Path,
    max_bytes: int,
    quote: int,
    escape: int | None,
    line_ending: bytes | None,
    has_header: bool,
    new_header: bytes | None,
    first_bytes: int | None = None,
) -> Iterator[CsvChunk]:
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        skip = len(UTF8_BOM) if f.read(len(UTF8_BOM)) == UTF8_BOM else 0
        if size <= skip:
            return
        sc = Scanner(f, path, size, quote, escape, BLOCK_SIZE)
        sc.crlf = line_ending == b"\r\n"
        first, preceded_by_cr = sc.first_boundary()
        if line_ending is None:
            sc.crlf = preceded_by_cr

        header = b""
        if has_header:
            if first < 0:  # nothing but a header
                if sc.scan(0, size, find_last=False)[0]:
                    raise sc.unterminated(0)
                return
            if first >= max_bytes:
                raise ValueError(
                    f"{path}: the header line is {first} bytes, max_bytes={max_bytes} leaves no room for records"
                )
            header = sc.read_bytes(skip, first - skip)
            if new_header is not None:
                header = new_header + (b"\r\n" if sc.crlf else b"\n")
        budget = max_bytes - len(header)

        pos = first if has_header else skip
        part = 0
        while pos < size:
            part += 1
            cap = max_bytes if first_bytes is None else min(max_bytes, first_bytes << min(part - 1, 40))
            end, records = _grown_end(sc, size, pos, cap - len(header) if cap < max_bytes else 0)
            if end < 0:
                end, records = _chunk_end(sc, path, size, pos, budget, max_bytes, len(header))
            yield CsvChunk(
                path=path,
                name=f"{path.name}.part-{part:05d}.csv",
                header=header,
                start=pos,
                end=end,
                records=records,
            )
            pos = end


def _grown_end(sc: Scanner, size: int, pos: int, budget: int) -> tuple[int, int]:
    """The end of a chunk capped below ``max_bytes`` (``first_bytes`` grown), or -1: fall back to the cap."""
    if budget <= 0 or size - pos <= budget:
        return -1, 0
    return sc.scan(pos, pos + budget, find_last=True)


def _chunk_end(
    sc: Scanner, path: Path, size: int, pos: int, budget: int, max_bytes: int, header_bytes: int
) -> tuple[int, int]:
    """Where the chunk starting at ``pos`` ends (after its last whole record) and how many records it holds."""
    if size - pos <= budget:
        in_quote, records = sc.scan(pos, size, find_last=False)
        if in_quote:
            raise sc.unterminated(pos)
        return size, records
    end, records = sc.scan(pos, pos + budget, find_last=True)
    if end < 0:
        if sc.scan(pos, size, find_last=False)[0]:
            raise sc.unterminated(pos)
        raise ValueError(
            f"{path}: the record starting at byte offset {pos} (line {sc.line_of(pos)}) does not "
            f"fit in max_bytes={max_bytes} ({header_bytes} header bytes + at most {budget} bytes "
            "of records); raise max_bytes"
        )
    return end, records
