"""CSV pass-through: split a big CSV file into header-prefixed chunks at record boundaries.

Celonis Data Push caps the size of one uploaded file, so a big CSV is sent as several CSV chunks, each
starting with the file's header line (Celonis maps columns by it) followed by whole records. Values are
never parsed: a chunk is a byte range of the source file, found by tracking only whether a position is
inside a quoted field, and read lazily at upload time. No temporary files are written.

How the end of a chunk is found, quickly and in constant memory:

* With quote doubling (``""`` inside a quoted field), a position is inside a quoted field exactly when the
  number of quote bytes since the last record boundary is odd. ``bytearray.count`` gives that parity at C
  speed, block by block, up to the largest offset the chunk may reach; then the walk goes back from
  newline to newline, adjusting the parity, to the last newline outside quotes.
* With an escape byte (``\\"``), an escape makes the next byte literal, so an escaped quote or newline
  must not count. Blocks holding no escape byte take the fast path; the others are walked from escape
  to escape in Python, subtracting escaped quotes from the counts (several times slower, still fast).

Assumptions, as for any splitter that does not parse: quote bytes open or close a field or are doubled
inside it (RFC 4180); a quote in the middle of an unquoted field (``ab"c``) would be taken as an opening
quote. The escape byte is honoured inside and outside quoted fields, as Python's ``csv`` module does. Where
readers could disagree, no split is made there: with ``\\r\\n`` endings a bare ``\\n`` never ends a record.
"""

from __future__ import annotations

import io
import os
import re
from array import array
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from airflow_provider_celonis.hooks.errors import CelonisConfigError

__all__ = [
    "BLOCK_SIZE",
    "CsvChunk",
    "CsvChunkReader",
    "CsvHeaders",
    "check_csv_headers",
    "csv_header",
    "split_csv",
]

#: Bytes read at a time while looking for chunk ends; memory use is one such buffer.
BLOCK_SIZE = 8 << 20

_NL = 0x0A
UTF8_BOM = b"\xef\xbb\xbf"
_CR = 0x0D


@dataclass(frozen=True, kw_only=True)
class CsvChunk:
    """One chunk to upload: ``header + source[start:end]``, at most ``max_bytes`` long."""

    path: Path
    name: str
    header: bytes = field(repr=False)
    start: int
    end: int
    #: Number of records: record terminators outside quoted fields (a last one without line ending too).
    records: int

    @property
    def size(self) -> int:
        return len(self.header) + self.end - self.start

    def open(self) -> CsvChunkReader:
        return CsvChunkReader(self.path, self.header, self.start, self.end)


class CsvChunkReader:
    """A read-only binary stream of ``header + source[start:end]``, for ``MultipartEncoder`` or requests.

    Deliberately not an ``io.IOBase`` and without ``fileno``, ``tell``, ``getvalue`` or ``__len__``:
    requests and requests-toolbelt size a body from those, and would then measure the whole source file
    (``fstat``) or subtract a position from it. They fall back to ``len``, the bytes still to be read.
    """

    def __init__(self, path: str | os.PathLike[str], header: bytes, start: int, end: int) -> None:
        if not 0 <= start <= end:
            raise ValueError(f"invalid byte range {start}..{end}")
        self._path = os.fspath(path)
        self._header = header
        self._header_pos = 0
        self._left = end - start
        self._file: BinaryIO = open(self._path, "rb")  # noqa: SIM115 -- closed by close()/__exit__
        self._file.seek(start)

    @property
    def len(self) -> int:
        """Bytes left to read (what requests-toolbelt's ``total_len`` looks for)."""
        return len(self._header) - self._header_pos + self._left

    @property
    def closed(self) -> bool:
        return self._file.closed

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        """Read up to ``size`` bytes (all that is left if ``size`` is None or negative)."""
        if self._file.closed:
            raise ValueError("I/O operation on closed chunk reader")
        if size is None or size < 0:
            size = self.len
        out = b""
        if self._header_pos < len(self._header):
            out = self._header[self._header_pos : self._header_pos + size]
            self._header_pos += len(out)
            size -= len(out)
        if size > 0 and self._left > 0:
            want = min(size, self._left)
            data = self._file.read(want)
            if len(data) < want:  # a buffered file reads short only at its end
                # Never return b"" while ``len`` is positive: MultipartEncoder would loop forever.
                raise OSError(
                    f"{self._path}: ended {self._left} bytes early, was it changed while uploading?"
                )
            self._left -= len(data)
            out = out + data if out else data
        return out

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> CsvChunkReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def split_csv(
    path: str | os.PathLike[str],
    max_bytes: int,
    *,
    quote: bytes = b'"',
    escape: bytes | None = None,
    line_ending: bytes | None = None,
    has_header: bool = True,
    header: bytes | None = None,
) -> Iterator[CsvChunk]:
    """Yield chunks of at most ``max_bytes`` (header included), each ending on a record boundary.

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
    )


def _split(
    path: Path,
    max_bytes: int,
    quote: int,
    escape: int | None,
    line_ending: bytes | None,
    has_header: bool,
    new_header: bytes | None,
) -> Iterator[CsvChunk]:
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        skip = len(UTF8_BOM) if f.read(len(UTF8_BOM)) == UTF8_BOM else 0
        if size <= skip:
            return
        sc = _Scanner(f, path, size, quote, escape, BLOCK_SIZE)
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
            if size - pos <= budget:
                in_quote, records = sc.scan(pos, size, find_last=False)
                if in_quote:
                    raise sc.unterminated(pos)
                end = size
            else:
                end, records = sc.scan(pos, pos + budget, find_last=True)
                if end < 0:
                    if sc.scan(pos, size, find_last=False)[0]:
                        raise sc.unterminated(pos)
                    raise ValueError(
                        f"{path}: the record starting at byte offset {pos} (line {sc.line_of(pos)}) does not "
                        f"fit in max_bytes={max_bytes} ({len(header)} header bytes + at most {budget} bytes "
                        "of records); raise max_bytes"
                    )
            part += 1
            yield CsvChunk(
                path=path,
                name=f"{path.name}.part-{part:05d}.csv",
                header=header,
                start=pos,
                end=end,
                records=records,
            )
            pos = end


class _Scanner:
    """Finds record boundaries in one open file, reusing a single block buffer."""

    def __init__(
        self, f: io.FileIO, path: Path, size: int, quote: int, escape: int | None, block: int
    ) -> None:
        self._f = f
        self._path = path
        self._size = size
        self._buf = bytearray(max(1, block))
        self._view = memoryview(self._buf)
        self._q = quote
        self._qb = bytes([quote])
        self._e = -1 if escape is None else escape
        self._eb = None if escape is None else bytes([escape])
        self.crlf = False
        chars = re.escape(self._qb) + (b"" if self._eb is None else re.escape(self._eb)) + b"\n"
        self._events = re.compile(b"[" + chars + b"]")

    # -- reading ---------------------------------------------------------------------------------------

    def _read(self, pos: int, n: int) -> None:
        """Fill ``buf[:n]`` with ``source[pos:pos+n]``."""
        self._f.seek(pos)
        got = 0
        while got < n:
            k = self._f.readinto(self._view[got:n])
            if not k:
                raise OSError(f"{self._path}: ended at byte {pos + got}, was it changed while splitting?")
            got += k

    def read_bytes(self, pos: int, n: int) -> bytes:
        self._f.seek(pos)
        data = self._f.read(n)
        if len(data) != n:
            raise OSError(f"{self._path}: ended at byte {pos + len(data)}, was it changed while splitting?")
        return data

    # -- per block -------------------------------------------------------------------------------------

    def _advance_escaped(self, n: int, in_quote: int, pending: bool) -> tuple[int, bool]:
        """Quote state after ``buf[:n]`` when escapes count; ``pending``: the block ended on an escape."""
        buf, qb, eb = self._buf, self._qb, self._eb
        assert eb is not None
        i = 1 if pending else 0
        while True:
            j = buf.find(eb, i, n)
            if j < 0:
                return in_quote ^ (buf.count(qb, i, n) & 1), False
            in_quote ^= buf.count(qb, i, j) & 1
            if j + 1 >= n:
                return in_quote, True
            i = j + 2  # the escaped byte is literal, whatever it is

    def _first_in_block(self, n: int, in_quote: int, pending: bool, prev: int) -> tuple[int, bool]:
        """Index just past the first record boundary in ``buf[:n]`` (or -1), and whether ``\\r`` preceded it.

        Event by event (quote, escape, newline): slow per byte, but only used to find the header line.
        """
        buf, search, q, e, crlf = self._buf, self._events.search, self._q, self._e, self.crlf
        i = 1 if pending else 0
        while (m := search(buf, i, n)) is not None:
            j = m.start()
            c = buf[j]
            if c == e:
                i = j + 2
                continue
            if c == q:
                in_quote ^= 1
            elif not in_quote:
                cr = (buf[j - 1] if j else prev) == _CR
                if cr or not crlf:
                    return j + 1, cr
            i = j + 1
        return -1, False

    def _last_in_block(self, n: int, in_quote: int, pending: bool, prev: int) -> int:
        """Index just past the last record boundary in ``buf[:n]`` given the state at its start, or -1."""
        buf, qb = self._buf, self._qb
        if self._eb is not None and (pending or buf.find(self._eb, 0, n) >= 0):
            return self._last_in_escaped_block(n, in_quote, pending, prev)
        parity = in_quote ^ (buf.count(qb, 0, n) & 1)
        cur = n
        while (nl := buf.rfind(b"\n", 0, cur)) >= 0:
            parity ^= buf.count(qb, nl + 1, cur) & 1  # now the state just after (and at) this newline
            if not parity and (not self.crlf or (buf[nl - 1] if nl else prev) == _CR):
                return nl + 1
            cur = nl
        return -1

    def _last_in_escaped_block(self, n: int, in_quote: int, pending: bool, prev: int) -> int:
        """``_last_in_block`` for a block holding escapes: the same backward walk, minus escaped bytes."""
        buf, qb, eb, q = self._buf, self._qb, self._eb, self._q
        assert eb is not None
        # Positions of escaped quotes (which flip nothing) and escaped newlines (which end nothing).
        lit_quotes: array[int] = array("q")
        lit_newlines: array[int] = array("q")
        i, lit = 0, (0 if pending else -1)
        while True:
            if lit < 0:
                j = buf.find(eb, i, n)
                if j < 0 or j + 1 >= n:
                    break
                lit = j + 1
            c = buf[lit]
            if c == q:
                lit_quotes.append(lit)
            elif c == _NL:
                lit_newlines.append(lit)
            i, lit = lit + 1, -1
        parity = in_quote ^ ((buf.count(qb, 0, n) - len(lit_quotes)) & 1)
        cur = n
        while (nl := buf.rfind(b"\n", 0, cur)) >= 0:
            escaped_quotes = bisect_left(lit_quotes, cur) - bisect_left(lit_quotes, nl + 1)
            parity ^= (buf.count(qb, nl + 1, cur) - escaped_quotes) & 1
            k = bisect_left(lit_newlines, nl)
            escaped = k < len(lit_newlines) and lit_newlines[k] == nl
            if not parity and not escaped and (not self.crlf or (buf[nl - 1] if nl else prev) == _CR):
                return nl + 1
            cur = nl
        return -1

    def _terminators(self, lo: int, hi: int, prev: int) -> int:
        """Line endings in ``buf[lo:hi]``: the record count of quote-free data."""
        if not self.crlf:
            return self._buf.count(b"\n", lo, hi)
        straddles = prev == _CR and lo == 0 and hi > 0 and self._buf[0] == _NL
        return self._buf.count(b"\r\n", lo, hi) + straddles

    # -- over a byte range -----------------------------------------------------------------------------

    def scan(self, lo: int, hi: int, *, find_last: bool) -> tuple[int, int]:
        """Scan ``source[lo:hi]``, ``lo`` being a record start (outside quotes).

        ``find_last``: return the offset just past the last record boundary in ``(lo, hi]`` (-1 if none)
        and the records before it. Otherwise return the quote state at ``hi`` (1: inside a quoted field)
        and the records in the range, an unterminated last one included.
        """
        assert lo < hi
        block = len(self._buf)
        # Only the first block may be short, so the block where the chunk must end is a full one.
        b_lo, b_hi = lo, lo + ((hi - lo) % block or block)
        in_quote, pending, prev = 0, False, _NL  # ``lo`` follows a newline or is the file start
        records = 0
        blocks: list[tuple[int, int, int, bool, int, int]] = []
        while True:
            n = b_hi - b_lo
            self._read(b_lo, n)
            if find_last:
                blocks.append((b_lo, n, in_quote, pending, prev, records))
                if b_hi == hi:
                    break
            records += self._records(n, in_quote, pending, prev)
            if self._eb is None:
                in_quote ^= self._buf.count(self._qb, 0, n) & 1
            else:
                in_quote, pending = self._advance_escaped(n, in_quote, pending)
            if b_hi == hi:
                before = self._buf[n - 2] if n >= 2 else prev
                # a last record without line ending
                records += self._buf[n - 1] != _NL or (self.crlf and before != _CR) or bool(in_quote)
                return in_quote, records
            prev = self._buf[n - 1]
            b_lo, b_hi = b_hi, b_hi + block

        for i in range(len(blocks) - 1, -1, -1):
            b_lo, n, in_quote, pending, prev, records = blocks[i]
            if i != len(blocks) - 1:
                self._read(b_lo, n)  # rare: no boundary in the last block (a huge record)
            end = self._last_in_block(n, in_quote, pending, prev)
            if end >= 0:
                return b_lo + end, records + self._records(end, in_quote, pending, prev)
        return -1, 0

    def _records(self, n: int, in_quote: int, pending: bool, prev: int) -> int:
        """Record terminators outside quotes in ``buf[:n]``, given the state at its start.

        Quote-free data is a plain line count at C speed; otherwise numpy finds the quote and newline
        bytes, and the running quote parity at each newline tells whether it is outside quotes.
        """
        buf, qb, eb = self._buf, self._qb, self._eb
        escaped = eb is not None and (pending or buf.find(eb, 0, n) >= 0)
        if not escaped and buf.find(qb, 0, n) < 0:
            return 0 if in_quote else self._terminators(0, n, prev)
        import numpy as np

        data = np.frombuffer(buf, dtype=np.uint8, count=n)
        events = np.flatnonzero((data == self._q) | (data == _NL))
        if escaped:
            literal = np.asarray(self._escaped_positions(n, pending), dtype=events.dtype)
            events = np.setdiff1d(events, literal, assume_unique=True)
        is_quote = data[events] == self._q
        parity = (np.cumsum(is_quote, dtype=np.uint8) + in_quote) & 1  # a newline leaves it as it was
        ends = ~is_quote & (parity == 0)
        if self.crlf:
            before = np.where(events > 0, data[np.maximum(events - 1, 0)], prev)
            ends &= before == _CR
        return int(np.count_nonzero(ends))

    def _escaped_positions(self, n: int, pending: bool) -> list[int]:
        """Positions in ``buf[:n]`` of bytes made literal by an escape byte."""
        buf, eb = self._buf, self._eb
        assert eb is not None
        out = [0] if pending else []
        i = 1 if pending else 0
        while (j := buf.find(eb, i, n)) >= 0 and j + 1 < n:
            out.append(j + 1)
            i = j + 2
        return out

    def first_boundary(self) -> tuple[int, bool]:
        """Offset just past the first record boundary of the file (-1 if none), and whether ``\\r\\n`` ended it."""
        size = len(self._buf)
        in_quote, pending, prev, pos = 0, False, _NL, 0
        while pos < self._size:
            n = min(size, self._size - pos)
            self._read(pos, n)
            end, cr = self._first_in_block(n, in_quote, pending, prev)
            if end >= 0:
                return pos + end, cr
            if self._eb is None:
                in_quote ^= self._buf.count(self._qb, 0, n) & 1
            else:
                in_quote, pending = self._advance_escaped(n, in_quote, pending)
            prev = self._buf[n - 1]
            pos += n
        return -1, False

    # -- errors ----------------------------------------------------------------------------------------

    def line_of(self, offset: int) -> int:
        """1-based physical line number of a byte offset (only for error messages: it reads up to there)."""
        lines, pos, size = 1, 0, len(self._buf)
        while pos < offset:
            n = min(size, offset - pos)
            self._read(pos, n)
            lines += self._buf.count(b"\n", 0, n)
            pos += n
        return lines

    def unterminated(self, lo: int) -> ValueError:
        """The error for a quote still open at the end of the file, the scan having started at ``lo``."""
        # The open quote is in the record after the last boundary outside quotes.
        start, _ = self.scan(lo, self._size, find_last=True)
        start = lo if start < 0 else start
        return ValueError(
            f"{self._path}: unterminated quoted field starting near line {self.line_of(start)} "
            f"(in the record at byte offset {start})"
        )


def csv_header(path: str | os.PathLike[str], options: Mapping[str, Any], what: str) -> tuple[list[str], bool]:
    """The column names in a CSV file's first record (job's separator, quote and charset), and whether
    a record with a value follows the header (looked for in the first MiB).

    A UTF-8 byte-order mark is not part of the first name; a UTF-16/32 one, or bytes that are not the
    declared charset, are a clear error naming the file and the charset.
    """
    import codecs
    import csv

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
    return [h.strip() for h in header], has_rows


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
        columns = column_names(raw, sanitize=sanitize, what=what)
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
    try:
        codec = codecs.lookup(encoding).name
        given = (options or {}).get("charSet")
        if given and codecs.lookup(str(given)).name != codec:
            raise CelonisConfigError(
                f"encoding={encoding!r} and csv_parsing_options charSet={given!r} disagree; give one"
            )
    except LookupError as exc:
        raise CelonisConfigError(f"unknown encoding {encoding!r}") from exc
    if codec.startswith(("utf-16", "utf-32")):
        raise CelonisConfigError(
            f"file_type='CSV' sends the file's bytes split at line breaks, which {encoding} does not allow: "
            "use file_type='PARQUET' with this encoding, or convert the file to UTF-8"
        )
    return {**(options or {}), "charSet": encoding}
