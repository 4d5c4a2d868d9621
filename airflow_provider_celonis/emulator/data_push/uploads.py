"""Receiving a chunk: the multipart body is parsed while it streams in and written straight to disk.

Nothing buffers the file in memory, and a body larger than ``--max-chunk-bytes`` is refused as soon as
the limit is crossed, before the rest arrives.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from python_multipart.multipart import MultipartParser, parse_options_header

from ..errors import ApiError

FILE_FIELDS = frozenset({b"file", b"chunk"})
MULTIPART_OVERHEAD = 64 * 1024  # room for part headers when judging a Content-Length up front


@dataclass
class Upload:
    """A received chunk file: where it is, its size and its digest (the algorithm the caller asked for, or
    "" when it asked for none)."""

    path: Path
    size: int
    digest: str


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"Chunk exceeds the maximum size of {limit} bytes", short="PAYLOAD_TOO_LARGE")


class _FilePartWriter:
    """Callbacks for python-multipart: keep the first ``file``/``chunk`` part, drop every other part."""

    def __init__(self, out: BinaryIO, limit: int, algorithm: str | None) -> None:
        self.out = out
        self.limit = limit
        self.size = 0
        self.hash = hashlib.new(algorithm) if algorithm else None
        self.found = False
        self._header_field = b""
        self._header_value = b""
        self._in_file = False
        self._disposition = b""

    def on_part_begin(self) -> None:
        self._in_file = False
        self._disposition = b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_field.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_field = b""
        self._header_value = b""

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self._disposition)
        self._in_file = not self.found and params.get(b"name") in FILE_FIELDS
        self.found = self.found or self._in_file

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._in_file:
            return
        self.size += end - start
        if self.size > self.limit:
            raise too_large(self.limit)
        piece = data[start:end]
        if self.hash is not None:
            self.hash.update(piece)
        self.out.write(piece)


async def receive_chunk(
    content_type: str,
    content_length: str | None,
    stream: AsyncIterator[bytes],
    directory: Path,
    limit: int,
    algorithm: str | None = "md5",
) -> Upload:
    """Stream a multipart body to a file in ``directory``, hashing it with ``algorithm`` on the way (None:
    no digest, which spares a CPU-second per 300 MB when the listing shows none of the bytes).

    400 if malformed, 413 as soon as the file part crosses ``limit``.
    """
    mime, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if mime != b"multipart/form-data" or not boundary:
        raise ApiError(400, "Expected a multipart/form-data body with a 'file' part", short="BAD_REQUEST")
    if content_length and content_length.isdigit() and int(content_length) > limit + MULTIPART_OVERHEAD:
        raise too_large(limit)
    fd, name = tempfile.mkstemp(dir=directory, suffix=".part")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as out:
            writer = _FilePartWriter(out, limit, algorithm)
            parser = MultipartParser(
                boundary,
                {
                    "on_part_begin": writer.on_part_begin,
                    "on_header_field": writer.on_header_field,
                    "on_header_value": writer.on_header_value,
                    "on_header_end": writer.on_header_end,
                    "on_headers_finished": writer.on_headers_finished,
                    "on_part_data": writer.on_part_data,
                },
            )
            try:
                async for block in stream:
                    parser.write(block)
                parser.finalize()
            except ValueError as exc:  # python-multipart's parse errors derive from ValueError
                raise ApiError(400, f"Malformed multipart body: {exc}", short="BAD_REQUEST") from exc
        if not writer.found:
            raise ApiError(400, "Multipart body has no 'file' (or 'chunk') part", short="BAD_REQUEST")
        return Upload(path, writer.size, writer.hash.hexdigest() if writer.hash is not None else "")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
