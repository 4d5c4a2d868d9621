"""Runs executed jobs one at a time in a background thread, outside any request.

Jobs that were QUEUED or RUNNING when the emulator stopped are queued again at start: their chunks are
on disk and nothing of them was committed (a job commits in one DuckDB transaction).
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from ..faults import FaultRegistry
from ..settings import EmulatorSettings
from .engine import Engine, JobAborted, JobFailed
from .models import JobStatus
from .store import Store

log = logging.getLogger(__name__)
_STOP = "__stop__"


class Worker:
    """A single worker thread: Celonis serialises pushes per table, one queue models that simply."""

    def __init__(
        self, store: Store, engine: Engine, settings: EmulatorSettings, faults: FaultRegistry
    ) -> None:
        self._store = store
        self._engine = engine
        self._settings = settings
        self._faults = faults
        self._queue: queue.Queue[str] = queue.Queue()
        self._stopping = threading.Event()
        self._current: str | None = None
        self._thread = threading.Thread(target=self._loop, name="celonis-emulator-worker", daemon=True)

    def start(self) -> None:
        for job_id in self._store.job_ids_with_status([JobStatus.QUEUED, JobStatus.RUNNING]):
            self._store.transition(
                job_id, [JobStatus.RUNNING], JobStatus.QUEUED, log="re-queued after an emulator restart"
            )
            self._queue.put(job_id)
        self._thread.start()

    def submit(self, job_id: str) -> None:
        self._queue.put(job_id)

    def cancel(self, job_id: str) -> None:
        """Interrupt the job if it is the one running now (its status is already set by the caller)."""
        if self._current == job_id:
            self._engine.interrupt()

    def stop(self) -> None:
        self._stopping.set()
        self._engine.interrupt()
        self._queue.put(_STOP)
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            job_id = self._queue.get()
            if job_id == _STOP:
                break
            self._current = job_id
            try:
                self._process(job_id)
            except Exception:  # the worker must survive anything a job does
                log.exception("job %s crashed the worker step", job_id)
            finally:
                self._current = None

    def _aborted(self, job_id: str) -> bool:
        if self._stopping.is_set():
            return True
        job = self._store.get_job(job_id)
        return job is None or job["status"] != JobStatus.RUNNING.value

    def _process(self, job_id: str) -> None:
        job = self._store.transition(job_id, [JobStatus.QUEUED], JobStatus.RUNNING, ping=True)
        if job is None:  # canceled or deleted while queued
            return
        deadline = time.monotonic() + self._settings.job_duration
        try:
            while (left := deadline - time.monotonic()) > 0:  # let clients observe RUNNING
                if self._aborted(job_id):
                    raise JobAborted()
                self._stopping.wait(min(left, 0.05))
            injected = self._faults.take_job_error()
            if injected is not None:
                raise JobFailed(injected)
            chunks = self._store.list_chunks(job_id)
            dedup = self._store.dedup_column(job_id)
            logs = self._engine.apply_job(job, chunks, dedup, lambda: self._aborted(job_id))
        except JobAborted:
            return  # canceled (status set by the canceller) or stopping (re-run at next start)
        except JobFailed as exc:
            self._store.transition(job_id, [JobStatus.RUNNING], JobStatus.ERROR, log=str(exc))
            return
        except Exception as exc:
            log.exception("job %s failed unexpectedly", job_id)
            self._store.transition(job_id, [JobStatus.RUNNING], JobStatus.ERROR, log=f"Internal error: {exc}")
            return
        self._store.transition(job_id, [JobStatus.RUNNING], JobStatus.DONE, log="; ".join(logs))
