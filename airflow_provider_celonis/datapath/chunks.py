"""Writing record batches as parquet chunk files capped by size.

Parquet settings, chosen for what Celonis' (Java) parquet reader handles and for speed:

* timestamps as TIMESTAMP(MILLIS), not INT96: Celonis stores milliseconds, INT96 is deprecated and is
  what makes pycelonis' uploads lose time zones; ``coerce_timestamps="ms"`` drops sub-millisecond digits;
* strings as plain UTF8 ``string`` (never ``large_string`` or Arrow dictionaries, which carry Arrow-only
  schema metadata); ``store_schema=False`` so the file holds parquet types only;
* parquet's own dictionary encoding (every parquet reader supports it) only for columns that repeat: the
  first batch decides (``dictionary_columns``), from the second file on when the first is a small early one.
  Trying it on mostly-unique columns doubled the writer's CPU time and made files bigger; data page V1 for
  the widest reader support;
* snappy compression: decoded everywhere, and cheap enough that writing keeps pace with the upload.

One writer serves every path; what differs is a parameter: the Data Push parquet chunks (snappy,
``upserted-00001.parquet``), the ingestion files (uncompressed, ``<stamp>-000001.parquet``). The CSV
pass-through writes nothing: ``csv_chunks`` yields byte ranges of the source files with the same
``rows``/``size``/``kind`` the uploader reads from a ``ChunkFile``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from airflow_provider_celonis.datapath.memory import data_pool

PARQUET_OPTIONS = {
    "compression": "snappy",
    "use_dictionary": True,
    "coerce_timestamps": "ms",
    "allow_truncated_timestamps": True,
    "version": "2.6",
    "data_page_version": "1.0",
    "store_schema": False,
    "write_statistics": True,
}
#: Room kept for the footer and for estimates that run a little short.
FOOTER_RESERVE = 64 << 10
#: Chunk files are written through a buffer this big: the parquet writer hands over each page header and page
#: on its own, ~3,000 writes for a 24 MB chunk set (~5 ms of kernel time for a 79 MB CSV, 2026-12-05).
WRITE_BUFFER_BYTES = 1 << 20
#: Dictionary-encode a column when at most this share of the first batch's values are distinct.
DICTIONARY_MAX_DISTINCT = 0.5


def dictionary_columns(batch: pa.RecordBatch) -> list[str]:
    """Columns worth parquet dictionary encoding, judged from one batch (see the module docstring)."""
    limit = max(1, int(batch.num_rows * DICTIONARY_MAX_DISTINCT))
    return [
        name
        for name, column in zip(batch.schema.names, batch.columns, strict=True)
        # Nested columns (ingestion API) have no distinct count; parquet encodes their leaves as it likes.
        if not pa.types.is_nested(column.type) and pc.count_distinct(column, mode="all").as_py() <= limit
    ]


@dataclass(frozen=True)
class ChunkFile:
    """A finished chunk on local disk."""

    path: Path
    index: int
    rows: int
    size: int
    kind: str  # "upserted" or "deleted"

    @property
    def name(self) -> str:
        return self.path.name

    def open(self) -> pa.NativeFile:
        return open(self.path, "rb")


def grown_cap(max_bytes: int, first_bytes: int | None, index: int) -> int:
    """The cap of the ``index``-th chunk (1-based): ``first_bytes`` doubled per chunk, at most ``max_bytes``."""
    if first_bytes is None or first_bytes >= max_bytes:
        return max_bytes
    return min(max_bytes, first_bytes << min(index - 1, 40))


def kind_names(kind: str) -> Callable[[int], str]:
    """Data Push chunk names: ``upserted-00001.parquet``, ``deleted-00001.parquet``, ..."""
    return lambda index: f"{kind}-{index:05d}.parquet"


class ParquetChunker:
    """Writes batches into numbered parquet files, each at most ``max_bytes`` long.

    The size of the next batch is estimated from the compression seen so far (pessimistically), and a new
    file is started before a batch would cross the cap; a batch too big for one chunk is sliced.

    :param name: file name of the n-th file (1-based); default ``<kind>-00001.parquet``.
    :param compression: parquet codec (``"snappy"`` for Data Push, ``"NONE"`` for the ingestion API).
    :param dictionary: ``"auto"`` dictionary-encodes the columns that repeat in the first batch
        (``dictionary_columns``); ``False`` encodes none.
    :param first_bytes: the first file's cap; each next one's is twice the last, up to ``max_bytes``
        (``grown_cap``), so the first file is done, and can be sent, early. None: every file ``max_bytes``.
    """

    def __init__(
        self,
        out_dir: Path,
        schema: pa.Schema,
        max_bytes: int,
        kind: str = "upserted",
        *,
        name: Callable[[int], str] | None = None,
        compression: str = "snappy",
        dictionary: Literal["auto"] | Literal[False] = "auto",
        first_bytes: int | None = None,
    ) -> None:
        self.out_dir = out_dir
        self.schema = schema
        self.max_bytes = max_bytes
        self.kind = kind
        self.name = name or kind_names(kind)
        self.options = {**PARQUET_OPTIONS, "compression": compression}
        self.dictionary = dictionary
        self.first_bytes = first_bytes
        self._index = 0
        self._budget = self._budget_of(1)
        self._writer: pq.ParquetWriter | None = None
        self._sink: pa.NativeFile | None = None
        self._path: Path | None = None
        self._rows = 0
        self._finished = 0  # bytes in the files already closed
        self._ratio = 1.0  # encoded bytes per in-memory byte, the largest seen
        self._dictionary: list[str] | None = None  # decided on the first batch, kept for every chunk
        self._first_batch: pa.RecordBatch | None = None  # until it has decided

    def write_iter(self, batch: pa.RecordBatch) -> Iterator[ChunkFile]:
        """Write ``batch``, handing over each chunk it finishes at once, not after the rest of the batch: the
        uploader starts on it while the batch's remaining rows are encoded into the next."""
        if self._first_batch is None:  # the whole first batch decides, however small the first file
            self._first_batch = batch
        for piece in self._slices(batch):
            estimate = int(piece.nbytes * self._ratio * 1.25) + 1024
            if self._writer is not None and self._rows and self._position() + estimate > self._budget:
                yield self._close_current()
            if self._writer is None:
                self._open_next()
            before = self._position()
            assert self._writer is not None
            self._writer.write_batch(piece)
            self._rows += piece.num_rows
            written = self._position() - before
            if piece.nbytes:
                self._ratio = max(self._ratio * 0.5, written / piece.nbytes, 0.05)

    @property
    def pending(self) -> int:
        """Bytes written to the open chunk so far (0: none open)."""
        return self._position()

    @property
    def written(self) -> int:
        """Bytes written to every chunk so far, the open one included."""
        return self._finished + self._position()

    def close(self) -> list[ChunkFile]:
        """Finish the open chunk; a later ``write`` starts the next one."""
        return [self._close_current()] if self._writer is not None and self._rows else self._discard()

    def empty(self) -> ChunkFile:
        """A chunk with the schema and no rows: a REPLACE of an empty source empties the table."""
        self._dictionary = []
        self._open_next()
        return self._close_current()

    def _discard(self) -> list[ChunkFile]:
        if self._writer is not None:
            self._writer.close()
            if self._sink is not None:
                self._sink.close()
            assert self._path is not None
            self._path.unlink(missing_ok=True)
            self._writer, self._sink = None, None
        return []

    def _slices(self, batch: pa.RecordBatch) -> list[pa.RecordBatch]:
        limit = max(self._budget // 4, 1)
        estimate = batch.nbytes * self._ratio
        if estimate <= limit or batch.num_rows <= 1:
            return [batch]
        rows = max(int(batch.num_rows * limit / max(estimate, 1)), 1)
        return [batch.slice(offset, rows) for offset in range(0, batch.num_rows, rows)]

    def _budget_of(self, index: int) -> int:
        """Bytes of row data the ``index``-th file (1-based) may hold: its cap less the footer's room."""
        cap = grown_cap(self.max_bytes, self.first_bytes, index)
        return max(cap - FOOTER_RESERVE, cap // 2)

    def _position(self) -> int:
        return self._sink.tell() if self._sink is not None else 0

    def _dictionary_columns(self) -> list[str]:
        """The columns this file dictionary-encodes. A small first file (``first_bytes``) encodes none: judging
        the first batch (a distinct count of every column, ~30 ms for 4 MiB of CSV) would delay the first
        byte, and the next file judges it while the first is on the wire."""
        if self._dictionary is not None:
            return self._dictionary
        if self.dictionary != "auto" or self._first_batch is None:
            self._dictionary = []
        elif self._index == 1 and grown_cap(self.max_bytes, self.first_bytes, 1) < self.max_bytes:
            return []
        else:
            self._dictionary = dictionary_columns(self._first_batch)
        self._first_batch = None
        return self._dictionary

    def _open_next(self) -> None:
        self._index += 1
        self._budget = self._budget_of(self._index)
        self._path = self.out_dir / self.name(self._index)
        self._sink = pa.BufferedOutputStream(pa.OSFile(str(self._path), "wb"), WRITE_BUFFER_BYTES)
        options = {**self.options, "use_dictionary": self._dictionary_columns() or False}
        self._writer = pq.ParquetWriter(self._sink, self.schema, memory_pool=data_pool(), **options)
        self._rows = 0

    def _close_current(self) -> ChunkFile:
        assert self._writer is not None
        assert self._sink is not None
        assert self._path is not None
        self._writer.close()
        self._sink.close()
        size = self._path.stat().st_size
        self._finished += size
        chunk = ChunkFile(self._path, self._index, self._rows, size, self.kind)
        self._writer, self._sink = None, None
        return chunk


@dataclass(frozen=True)
class CsvPassChunk:
    """A byte range of a CSV file sent as it is (``file_type="CSV"``), with its record count."""

    part: Any  # csv_split.CsvChunk
    rows: int
    kind: str

    @property
    def name(self) -> str:
        return str(self.part.name)

    @property
    def size(self) -> int:
        return int(self.part.size)

    def open(self) -> Any:
        return self.part.open()


def csv_chunks(
    paths: Sequence[str],
    options: Mapping[str, Any],
    max_bytes: int,
    kind: str,
    header: bytes | None = None,
    first_bytes: int | None = None,
) -> Iterator[CsvPassChunk]:
    """Header-prefixed chunks of each CSV file, split at record boundaries, each with its record count.

    ``header``: the header line sent instead of the files' (``sanitize_names``); ``first_bytes``: the
    first chunk's cap, doubled per chunk up to ``max_bytes`` (``grown_cap``).
    """
    from airflow_provider_celonis.datapath.csv_split import split_csv

    quote = str(options.get("quoteSequence") or '"').encode()
    escape = str(options["escapeSequence"]).encode() if options.get("escapeSequence") else None
    line_ending = _line_ending(options.get("lineEnding"))
    for path in paths:
        for part in split_csv(
            path,
            max_bytes,
            quote=quote,
            escape=escape,
            line_ending=line_ending,
            header=header,
            first_bytes=first_bytes,
        ):
            yield CsvPassChunk(part, part.records, kind)


def _line_ending(value: Any) -> bytes | None:
    if not value:
        return None
    text = str(value).replace("\\r", "\r").replace("\\n", "\n")
    return text.encode() if text in ("\n", "\r\n") else None
