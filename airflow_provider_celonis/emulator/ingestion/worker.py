"""The ingestion queue: each stored object becomes one file applied first in, first out by one thread.

A failing file changes nothing (one DuckDB transaction per file) and is recorded with the error type
Celonis shows on the connection's monitoring page.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..storage import Tables, q
from .files import IngestionFile, now_iso
from .loader import INTERNAL, FileLoad, IngestionFailure

log = logging.getLogger(__name__)


class IngestionWorker:
    """The FIFO queue of uploaded files and the thread that applies them; errors are kept for the API."""

    def __init__(self, tables: Tables) -> None:
        self._tables = tables
        self._queue: queue.Queue[IngestionFile | None] = queue.Queue()
        self._lock = threading.Lock()
        self._files: list[IngestionFile] = []
        self._errors: list[dict[str, Any]] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="celonis-emulator-ingestion", daemon=True)
        #: Called with a file's path once it was applied (the object store frees overwritten files).
        self.on_applied: Callable[[Path], None] | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=30)

    def submit(self, **fields: Any) -> IngestionFile:
        """Queue a received object (``IngestionFile`` fields except ``seq`` and ``received``)."""
        with self._lock:
            item = IngestionFile(seq=len(self._files) + 1, received=now_iso(), **fields)
            self._files.append(item)
        self._queue.put(item)
        return item

    def in_use(self, path: Path) -> bool:
        """Whether a queued file still needs ``path`` (overwritten objects are deleted after applying)."""
        with self._lock:
            return any(f.path == path and f.status == "PENDING" for f in self._files)

    def status(self) -> dict[str, Any]:
        with self._lock:
            counts = {s: sum(f.status == s for f in self._files) for s in ("PENDING", "DONE", "FAILED")}
            return {
                "pending": counts["PENDING"],
                "processed": counts["DONE"],
                "failed": counts["FAILED"],
                "files": [f.public() for f in self._files],
            }

    def errors(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._errors)

    def pools(self) -> set[str]:
        with self._lock:
            return {f.pool_id for f in self._files}

    def _loop(self) -> None:
        while not self._stopping.is_set():
            item = self._queue.get()
            if item is None:
                break
            rows = 0
            try:
                rows = self._apply(item)
                outcome, message = "DONE", f"{rows} rows applied"
            except IngestionFailure as exc:
                outcome, message = "FAILED", exc.message
                self._record(item, exc.error_type, exc.message)
            except Exception as exc:  # the worker must survive anything a file does
                log.exception("ingestion of %s failed unexpectedly", item.key)
                outcome, message = "FAILED", str(exc)
                self._record(item, INTERNAL, str(exc))
            with self._lock:
                item.status, item.message, item.rows = outcome, message, rows
            if self.on_applied is not None:
                self.on_applied(item.path)

    def _record(self, item: IngestionFile, error_type: str, message: str) -> None:
        with self._lock:
            self._errors.append(
                {
                    "time": now_iso(),
                    "connectionId": item.connection_id,
                    "poolId": item.pool_id,
                    "table": item.table,
                    "file": item.key,
                    "errorType": error_type,
                    "message": message,
                }
            )

    def _apply(self, item: IngestionFile) -> int:
        cur = self._tables.cursor()
        try:
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {q(item.pool_id)}")
            cur.begin()
            try:
                rows = FileLoad(cur, item).run()
                cur.commit()
                return rows
            except BaseException:
                cur.rollback()
                raise
        finally:
            cur.close()
