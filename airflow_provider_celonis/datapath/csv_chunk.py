"""One CSV chunk to upload (a byte range of the source behind the header line) and its read-only stream."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO


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
