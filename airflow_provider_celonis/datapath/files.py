"""Where file sources are: paths, globs, folders and ObjectStoragePaths to a list of files, and their format."""

from __future__ import annotations

import glob as globlib
import io
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from airflow_provider_celonis.datapath.memory import data_pool
from airflow_provider_celonis.hooks.errors import CelonisConfigError

#: Under ``airflow.task`` so that these lines land in the task log next to the operator's own.
log = logging.getLogger(f"airflow.task.{__name__}")

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".csv.bz2", ".csv.zst")
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz")
#: A compressed file's suffix -> Arrow's codec: such files are read decompressed (``open_stream``, ``open_raw``).
CODECS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}


def is_file_source(source: Any) -> bool:
    return isinstance(source, str | os.PathLike) or (
        isinstance(source, list | tuple) and all(isinstance(s, str | os.PathLike) for s in source)
    )


def is_object_storage_path(item: Any) -> bool:
    return type(item).__name__ == "ObjectStoragePath" or (
        hasattr(item, "protocol") and hasattr(item, "open") and hasattr(item, "iterdir")
    )


def expand_paths(source: Any, what: str = "source") -> list[Any]:
    """Paths, globs and ObjectStoragePaths to a sorted list of existing files; missing ones are an error."""
    items = list(source) if isinstance(source, list | tuple) else [source]
    if not items:
        raise CelonisConfigError(f"{what} is an empty list of paths")
    found: list[Any] = []
    for item in items:
        if is_object_storage_path(item):
            if item.is_dir():
                found.extend(sorted(p for p in item.iterdir() if p.is_file()))
            elif item.exists():
                found.append(item)
            else:
                raise CelonisConfigError(f"{what}: {item} does not exist")
            continue
        text = os.fspath(item)
        if any(ch in text for ch in "*?["):
            matches = sorted(m for m in globlib.glob(text, recursive=True) if os.path.isfile(m))
            if not matches:
                raise CelonisConfigError(f"{what}: the pattern {text!r} matches no file")
            found.extend(matches)
        elif os.path.isdir(text):
            files = sorted(str(p) for p in Path(text).iterdir() if p.is_file() and not p.name.startswith("."))
            if not files:
                raise CelonisConfigError(f"{what}: the folder {text!r} holds no file")
            found.extend(files)
        elif os.path.isfile(text):
            if not os.access(text, os.R_OK):
                raise CelonisConfigError(f"{what}: {text!r} is not readable")
            found.append(text)
        else:
            raise CelonisConfigError(f"{what}: {text!r} does not exist")
    return found


def file_format(path: Any) -> str:
    name = str(path).lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(JSON_SUFFIXES):
        return "json"
    raise CelonisConfigError(
        f"{path}: cannot tell the file format from the name; use .parquet, .csv or .jsonl "
        "(or pass a DataFrame, an Arrow table or a callable)"
    )


def compression_of(path: Any) -> str | None:
    """The Arrow codec a file is compressed with, by its suffix (None: not compressed)."""
    name = str(path).lower()
    return next((codec for suffix, codec in CODECS.items() if name.endswith(suffix)), None)


def open_stream(path: Any) -> pa.NativeFile:
    """A file's bytes as Arrow reads them, local or object storage, decompressed by suffix.

    The one opener of file sources. A local file's reads use ``data_pool`` (a push's 4 MiB blocks are most
    of the memory it churns). Parquet suffixes name no codec, so a parquet handle stays seekable.
    """
    if is_object_storage_path(path):
        handle = pa.PythonFile(path.open("rb"), mode="r")
    else:
        handle = pa.OSFile(str(path), "rb", memory_pool=data_pool())
    codec = compression_of(path)
    return handle if codec is None else pa.CompressedInputStream(handle, codec)


def open_raw(path: Any) -> io.BufferedReader:
    """The bytes ``open_stream`` gives as a Python binary file, read by lines: for byte-level checks
    (encoding, the line an error is on) that must see what the CSV reader sees."""
    return io.BufferedReader(_RawStream(open_stream(path)))


class _RawStream(io.RawIOBase):
    """An Arrow input stream as a Python raw stream, so that it can be buffered and read by lines."""

    def __init__(self, stream: pa.NativeFile) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return int(self._stream.readinto(buffer))

    def close(self) -> None:
        self._stream.close()
        super().close()


class HeldBack(io.RawIOBase):
    """A stream whose reads past its first ``hold`` bytes wait for ``release()`` (or ``timeout`` seconds).

    pyarrow's CSV reader reads 32 blocks ahead of its parser from the moment it opens (ARROW-12090): on a busy
    core, copying up to 128 MiB delayed the first batch, and so the push's first byte, by 40-50 ms (64 MB to
    1 GB files, one core, 2026-12-04); decompressing or downloading them, by more. Held back until the first
    batch is out and its chunk written, the reader decodes it first and reads on at the same pace after.
    ``source`` is ``open_stream``'s: reads come as Arrow buffers (a local file's from ``data_pool``), which
    Arrow takes without a copy. ``timeout`` only guards against a reader that needs more than ``hold`` bytes
    for its first batch.
    """

    def __init__(self, source: pa.NativeFile, hold: int, timeout: float) -> None:
        self._source = source
        self._hold = hold
        self._timeout = timeout
        self._released = threading.Event()
        self._position = 0
        #: Whether a read waited out ``timeout`` (tests: the hold is never what the first batch waits on).
        self.timed_out = False

    @property
    def position(self) -> int:
        """Bytes read so far."""
        return self._position

    def release(self) -> None:
        self._released.set()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> Any:
        if self._position >= self._hold and not self._released.is_set():
            self.timed_out = not self._released.wait(self._timeout)
        buffer = self._source.read_buffer(None if size < 0 else size)
        self._position += buffer.size
        return buffer

    def close(self) -> None:
        self._released.set()
        self._source.close()
        super().close()


def without_empty(paths: Sequence[Any], what: str) -> list[Any]:
    """``paths`` without the text files that hold no byte once decompressed (an export that wrote nothing
    this hour): no header and no row, so nothing to read, nor to lose by skipping them. An empty parquet
    file is not parquet: its read names that."""
    kept = []
    for path in paths:
        if str(path).lower().endswith(PARQUET_SUFFIXES):
            kept.append(path)
            continue
        try:
            with open_stream(path) as stream:
                empty = not stream.read(1)
        except (OSError, pa.ArrowInvalid):
            empty = False  # the read names what is wrong with it
        if empty:
            log.warning("%s: %s is empty (no header, no rows): skipped", what, path)
        else:
            kept.append(path)
    return kept
