"""Finding CSV record boundaries without parsing values: the byte scanner behind ``split_csv``.

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
import re
from array import array
from bisect import bisect_left
from pathlib import Path

_NL = 0x0A
_CR = 0x0D


class Scanner:
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

    def _advance(self, n: int, in_quote: int, pending: bool) -> tuple[int, bool]:
        """Quote state after ``buf[:n]`` given the state at its start (see ``_advance_escaped``)."""
        if self._eb is None:
            return in_quote ^ (self._buf.count(self._qb, 0, n) & 1), False
        return self._advance_escaped(n, in_quote, pending)

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
            in_quote, pending = self._advance(n, in_quote, pending)
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
            in_quote, pending = self._advance(n, in_quote, pending)
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
