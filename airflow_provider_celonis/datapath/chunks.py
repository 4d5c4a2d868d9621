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
#: Batches are gathered into row groups of about this many encoded bytes (a quarter of a smaller chunk's cap):
#: a row group per 1 MiB block of CSV (``text_read.READ_BLOCK_BYTES``) restarted every column's dictionary
#: and statistics four times as often, and made the chunks 3.6 % bigger (2026-12-05).
ROW_GROUP_BYTES = 1 << 20
#: Dictionary-encode a column when at most this share of the first rows' values are distinct.
DICTIONARY_MAX_DISTINCT = 0.5
#: How many first rows judge it, when the early files leave time to gather them. A share of distinct values
#: depends on how many are counted: judged on the 13,779 rows of a 1 MiB block instead of the 54,266 of a
#: 4 MiB one, a column of 20,000 quantities was no longer encoded, and the chunks grew 3.2 % (2026-12-05).
DICTIONARY_SAMPLE_ROWS = 50_000


def dictionary_columns(batch: pa.RecordBatch | pa.Table) -> list[str]:
    """Columns worth parquet dictionary encoding, judged from the first rows (see the module docstring)."""
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
    file is started before a batch would cross the cap; a batch too big for one chunk is sliced. Small
    batches are held and written together as one row group of about ``ROW_GROUP_BYTES``.

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
        self._held: list[pa.RecordBatch] = []  # pieces of the open file's next row group
        self._held_bytes = 0  # their in-memory size
        self._finished = 0  # bytes in the files already closed
        self._ratio = 1.0  # encoded bytes per in-memory byte, the largest seen
        self._ratio_seen = False  # until the first write, estimates are guesses: nothing is held
        self._dictionary: list[str] | None = None  # decided on the first batch, kept for every chunk
        self._sample: list[pa.RecordBatch] = []  # the first rows, until it has decided
        self._sampled = 0

    def write_iter(self, batch: pa.RecordBatch) -> Iterator[ChunkFile]:
        """Write ``batch``, handing over each chunk it finishes at once, not after the rest of the batch: the
        uploader starts on it while the batch's remaining rows are encoded into the next."""
        if self._dictionary is None and self._sampled < DICTIONARY_SAMPLE_ROWS:
            self._sample.append(batch)  # whole batches decide, however small the first files
            self._sampled += batch.num_rows
        for piece in self._slices(batch):
            if (
                self._writer is not None
                and self._has_rows()
                and self.pending + self._estimate(piece) > self._budget
            ):
                yield self._close_current()
            if self._writer is None:
                self._open_next()
            self._held.append(piece)
            self._held_bytes += piece.nbytes
            if not self._ratio_seen or self._held_bytes * self._ratio >= min(
                ROW_GROUP_BYTES, self._budget // 4
            ):
                self._write_held()

    @property
    def pending(self) -> int:
        """Bytes in the open chunk so far, its held rows estimated (0: none open)."""
        return self._position() + int(self._held_bytes * self._ratio)

    @property
    def written(self) -> int:
        """Bytes written to every chunk so far, the open one included."""
        return self._finished + self._position()

    def close(self) -> list[ChunkFile]:
        """Finish the open chunk; a later ``write`` starts the next one."""
        return [self._close_current()] if self._writer is not None and self._has_rows() else self._discard()

    def empty(self) -> ChunkFile:
        """A chunk with the schema and no rows: a REPLACE of an empty source empties the table."""
        self._dictionary = []
        self._open_next()
        return self._close_current()

    def _has_rows(self) -> bool:
        return bool(self._rows or self._held)

    def _estimate(self, piece: pa.RecordBatch) -> int:
        """Encoded bytes ``piece`` will take, from the ratio seen, with a margin: a chunk must not overshoot."""
        return int(piece.nbytes * self._ratio * 1.25) + 1024

    def _write_held(self) -> None:
        """Write the held pieces as one row group; learn the compression ratio from it."""
        if not self._held:
            return
        assert self._writer is not None
        table = pa.Table.from_batches(self._held)
        before = self._position()
        self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        if self._held_bytes:
            self._ratio = max(self._ratio * 0.5, (self._position() - before) / self._held_bytes, 0.05)
        self._rows += table.num_rows
        self._held, self._held_bytes, self._ratio_seen = [], 0, True

    def _discard(self) -> list[ChunkFile]:
        self._held, self._held_bytes = [], 0
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

    def _is_early(self, index: int) -> bool:
        """Whether the ``index``-th file is one of the small first ones (``first_bytes``)."""
        return grown_cap(self.max_bytes, self.first_bytes, index) < self.max_bytes

    def _budget_of(self, index: int) -> int:
        """Bytes of row data the ``index``-th file (1-based) may hold: its cap less the footer's room."""
        cap = grown_cap(self.max_bytes, self.first_bytes, index)
        return max(cap - FOOTER_RESERVE, cap // 2)

    def _position(self) -> int:
        return self._sink.tell() if self._sink is not None else 0

    def _dictionary_columns(self) -> list[str]:
        """The columns this file dictionary-encodes. Small early files (``first_bytes``) encode none until
        ``DICTIONARY_SAMPLE_ROWS`` rows are in: judging them (a distinct count of every column, ~30 ms for
        4 MiB of CSV) would delay the first byte, and a later file judges them while the first is on the wire.
        Without growth the first file judges whatever the first batch holds."""
        if self._dictionary is not None:
            return self._dictionary
        if self.dictionary != "auto" or not self._sample:
            self._dictionary = []
        elif self._sampled < DICTIONARY_SAMPLE_ROWS and self._is_early(self._index):
            return []
        else:
            self._dictionary = dictionary_columns(pa.Table.from_batches(self._sample))
        self._sample, self._sampled = [], 0
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
        self._write_held()
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
