"""The uploader thread: sends finished chunks in order while the next one is written.

The job itself is created on this thread too (``Create``, queued ahead of the first chunk), so that its
requests overlap the writing of the first chunks instead of holding them up.

Chunk files stay on disk until the push is over: when a lost answer cannot be decided from the job's
chunk list (``ChunkUploadUndecided``), the job is started over (deleted, created anew) and every chunk
sent so far is sent again to the new job, so no chunk is dropped or sent twice into one job. The same
start-over serves a ``Widen`` in the queue: a later chunk holds a string longer than the job's STRING
length, so the job is created again, wider, before that chunk is sent (never cut a value).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from airflow_provider_celonis.datapath.pipeline import human_size
from airflow_provider_celonis.hooks.celonis import CelonisHook, ChunkKind
from airflow_provider_celonis.hooks.errors import ChunkUploadUndecided

#: How many times one push may start its job over before giving up.
MAX_RESTARTS = 3


@dataclass(frozen=True)
class Create:
    """Queued ahead of the first chunk: create the job with these STRING lengths (None: as planned)."""

    lengths: Mapping[str, int] | None


@dataclass(frozen=True)
class Widen:
    """Queued before the first chunk that does not fit the job: start it over with these lengths."""

    lengths: Mapping[str, int]
    columns: list[str]


class Uploader(threading.Thread):
    """Creates the job (``Create``) and uploads chunks in queue order; the first error stops it and is
    re-raised by ``put``.

    :param bound: chunks allowed to wait in the queue (0: no limit); the writer blocks beyond it, so at most
        a few finished chunks wait on disk for the link.
    :param create: creates the job with the given STRING lengths (None: as planned); returns its id.
    :param start_over: deletes the job and creates a new one with the given STRING lengths (None: as
        planned); returns the new job's id.
    """

    def __init__(
        self,
        hook: CelonisHook,
        pool: str,
        log: Any,
        bound: int,
        start_over: Callable[[str, Mapping[str, int] | None], str],
        create: Callable[[Mapping[str, int] | None], str] | None = None,
    ) -> None:
        super().__init__(name="celonis-chunk-uploader", daemon=True)
        self.hook, self.pool, self.log, self.start_over = hook, pool, log, start_over
        self.create = create
        self.queue: queue.Queue[Any] = queue.Queue(bound)
        self.job_id = ""
        #: ``time.monotonic()`` when the first chunk's upload started (0: none yet): time to first byte.
        self.first_upload_at = 0.0
        self.error: BaseException | None = None
        self.sent: list[Any] = []
        self.restarts = 0
        self.widenings = 0
        self._busy = False
        #: The STRING lengths the current job was created with (None: as planned).
        self.lengths: Mapping[str, int] | None = None

    @property
    def bytes(self) -> int:
        return sum(int(chunk.size) for chunk in self.sent)

    def run(self) -> None:
        try:
            while (chunk := self.queue.get()) is not None:
                self._busy = True
                if self.error is None:
                    self._send(chunk)
                self._busy = False
        except BaseException as exc:  # noqa: BLE001 - kept and re-raised by the uploading thread's owner
            self.error = exc
            self._drain()

    def _send(self, chunk: Any) -> None:
        if isinstance(chunk, Create):
            assert self.create is not None
            self.lengths = chunk.lengths
            self.job_id = self.create(chunk.lengths)
            return
        if isinstance(chunk, Widen):
            self._widen(chunk)
            return
        while True:
            try:
                self._upload(chunk, len(self.sent) + 1)
                break
            except ChunkUploadUndecided as exc:
                self._restart(exc)
        self.sent.append(chunk)

    def _restart(self, why: ChunkUploadUndecided) -> None:
        """A new job with every chunk sent so far; the undecided chunk is sent again by the caller."""
        while True:
            self.restarts += 1
            if self.restarts > MAX_RESTARTS:
                raise why
            self.log.warning(
                "Cannot tell whether a chunk of job %s was stored (%s): starting the job over (attempt %d)",
                self.job_id,
                why,
                self.restarts,
            )
            try:
                self._resend()
                return
            except ChunkUploadUndecided as again:
                why = again

    def _widen(self, widen: Widen) -> None:
        self.widenings += 1
        self.log.warning(
            "Column(s) %s hold a value longer than job %s declares: starting the job over with "
            "fieldLength %s and sending its %d chunk(s) again",
            ", ".join(map(repr, widen.columns)),
            self.job_id,
            {c: widen.lengths[c] for c in widen.columns},
            len(self.sent),
        )
        self.lengths = widen.lengths
        try:
            self._resend()
        except ChunkUploadUndecided as exc:
            self._restart(exc)

    def _resend(self) -> None:
        """A new job (``self.lengths``) holding every chunk sent so far."""
        self.job_id = self.start_over(self.job_id, self.lengths)
        for number, chunk in enumerate(self.sent, 1):
            self._upload(chunk, number)

    def _upload(self, chunk: Any, number: int) -> None:
        started = time.monotonic()
        self.first_upload_at = self.first_upload_at or started
        # The job holds the ``number - 1`` chunks this push had confirmed: it is their only writer, and a new
        # job (created, adopted or started over) holds none.
        self.hook.upload_chunk(
            self.job_id, chunk, cast(ChunkKind, chunk.kind), self.pool, chunks_before=number - 1
        )
        elapsed = max(time.monotonic() - started, 1e-6)
        self.log.info(
            "Uploaded %s chunk %d (%s rows, %s) in %.2fs: %s/s",
            chunk.kind,
            number,
            f"{chunk.rows:,}",
            human_size(chunk.size),
            elapsed,
            human_size(chunk.size / elapsed),
        )

    def _drain(self) -> None:
        while True:
            try:
                item = self.queue.get(timeout=0.05)
            except queue.Empty:
                if not self.is_alive():
                    return
                continue
            if item is None:
                return

    def idle(self) -> bool:
        """Nothing queued and nothing being sent: the link waits for the next chunk."""
        return not self._busy and self.queue.empty()

    def put(self, chunk: Any) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.queue.put(chunk, timeout=0.2)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Wait for every queued chunk; re-raises the upload's error."""
        self.queue.put(None)
        self.join()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        self.error = self.error or RuntimeError("push aborted")
        self.queue.put(None)
        self.join()
