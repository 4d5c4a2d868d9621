"""``DataPushJobTrigger``: waits in the triggerer for a data push job to reach a terminal status."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_celonis.hooks.celonis import TERMINAL_STATUSES, CelonisHook
from airflow_provider_celonis.hooks.errors import CelonisApiError
from airflow_provider_celonis.hooks.status_log import StatusLog
from airflow_provider_celonis.triggers.budget import request_budget, wait_at_most
from airflow_provider_celonis.triggers.status_board import PoolStatusBoard, Snapshot, pool_board

#: How long the cancel at the deadline may take. The trigger fires by ``end_time + CANCEL_BUDGET``.
CANCEL_BUDGET = 30.0
#: What a task adds to ``end_time`` for its ``defer(timeout=...)``: the trigger's own deadline (and its
#: cancel) always fires first, so the scheduler's timeout never leaves an owned job running.
DEFER_MARGIN = CANCEL_BUDGET + 30.0


class DataPushJobTrigger(BaseTrigger):
    """Polls a job without blocking the event loop and fires once with its outcome.

    :param end_time: wall-clock deadline (UNIX seconds). The trigger enforces it itself and fires a
        ``timeout`` event when it passes (give ``defer(timeout=...)`` at least ``DEFER_MARGIN`` more).
    :param cancel_on_kill: cancel the job when the task is cleared or marked failed/success by a user
        (``BaseTrigger.on_kill``, Airflow >= 3.3); never on triggerer restarts (``cleanup``).
    :param cancel_at_deadline: cancel the job when ``end_time`` passes (within ``CANCEL_BUDGET``). Only
        the task that started the job may ask for this; a sensor waiting on someone else's job must not.
        Defaults to ``cancel_on_kill`` (older serialized triggers carry only that).

    Triggers waiting on jobs of the same pool share one status poll (``status_board``): a thousand
    waiting jobs cost one ``GET jobs/`` per poll interval, each trigger fires within one interval of its
    job finishing, and every request draws from the triggerer's budget (``[celonis]
    trigger_requests_per_second``, default 10).
    """

    def __init__(
        self,
        job_id: str,
        data_pool_id: str,
        celonis_conn_id: str = CelonisHook.default_conn_name,
        poll_interval: float = 10.0,
        end_time: float | None = None,
        cancel_on_kill: bool = True,
        push: dict[str, Any] | None = None,
        cancel_at_deadline: bool | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # BaseTrigger.__init__ is unannotated
        self.job_id = job_id
        self.data_pool_id = data_pool_id
        self.celonis_conn_id = celonis_conn_id
        self.poll_interval = float(poll_interval)
        self.end_time = end_time
        self.cancel_on_kill = cancel_on_kill
        self.cancel_at_deadline = cancel_on_kill if cancel_at_deadline is None else cancel_at_deadline
        self.push = push or {}

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Only ids and numbers: credentials are read from the connection inside the triggerer."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "data_pool_id": self.data_pool_id,
                "celonis_conn_id": self.celonis_conn_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "cancel_on_kill": self.cancel_on_kill,
                "push": self.push,
                "cancel_at_deadline": self.cancel_at_deadline,
            },
        )

    def _event(self, status: str, job: dict[str, Any] | None = None, message: str = "") -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status,
                "job_id": self.job_id,
                "data_pool_id": self.data_pool_id,
                "job_status": (job or {}).get("status"),
                "logs": list((job or {}).get("logs") or [])[-50:],
                "message": message,
                "push": self.push,
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        status_log = StatusLog(self.log, self.job_id)
        async with pool_board(self.celonis_conn_id, self.data_pool_id, self.poll_interval) as board:
            while True:
                remaining = self._remaining()
                if remaining == 0:
                    yield await self._deadline_event(board, status_log.status)
                    return
                # Every wait is bounded by the deadline, the job read after a snapshot too.
                snapshot = await wait_at_most(board.next_snapshot(), remaining)
                if snapshot is None:
                    continue
                try:
                    job = await wait_at_most(self._job(board, snapshot), self._remaining())
                except CelonisApiError as exc:
                    if exc.status is not None and exc.status < 500 and exc.status != 429:
                        yield self._event("error", message=str(exc))
                        return
                    self.log.warning("Polling job %s failed, will retry: %s", self.job_id, exc)
                    continue
                if job is None:
                    continue
                status = job.get("status")
                status_log.seen(status)
                if status == "DONE":
                    yield self._event("success", job)
                    return
                if status in TERMINAL_STATUSES:
                    yield self._event("error", job, message=f"job {self.job_id} ended {status}")
                    return

    def _remaining(self) -> float | None:
        return None if self.end_time is None else max(self.end_time - time.time(), 0.0)

    async def _deadline_event(self, board: PoolStatusBoard, last_status: Any) -> TriggerEvent:
        """The deadline passed: cancel only if this task owns the job, never for longer than the budget."""
        late = f"job {self.job_id} (last seen {last_status}) did not finish before the timeout"
        if not self.cancel_at_deadline:
            return self._event("timeout", message=f"{late}; left it as it is (this task does not own it)")
        cancelled = await wait_at_most(self._cancel(board.hook(), "the wait timed out"), CANCEL_BUDGET)
        what = "cancelled it" if cancelled else f"could not confirm its cancel within {CANCEL_BUDGET:.0f}s"
        return self._event("timeout", message=f"{late}; {what}")

    async def _job(self, board: PoolStatusBoard, snapshot: Snapshot) -> dict[str, Any]:
        """This job from the pool's list; asked for directly if the list does not hold it."""
        if snapshot.error is not None:
            raise snapshot.error
        job = snapshot.jobs.get(self.job_id)
        if job is None:
            await request_budget().acquire()
            job = await (await board.hook()).aget_job(self.job_id, self.data_pool_id)
        return job

    async def _cancel(self, hook: CelonisHook | Awaitable[CelonisHook], why: str) -> bool:
        """Cancel the job; a pending ``hook`` is awaited inside, so its connection lookup counts in the budget."""
        try:
            ready = hook if isinstance(hook, CelonisHook) else await hook
            await ready.acancel_job(self.job_id, self.data_pool_id)
        except Exception as exc:  # noqa: BLE001 - a failed cancel is logged and reported, not raised
            self.log.warning("Could not cancel Celonis job %s: %s", self.job_id, exc)
            return False
        self.log.info("Cancelled Celonis job %s: %s", self.job_id, why)
        return True

    async def on_kill(self) -> None:
        if not self.cancel_on_kill:
            return
        hook = await CelonisHook.for_trigger(self.celonis_conn_id)
        try:
            await self._cancel(hook, "the task was cleared or marked by a user")
        finally:
            await hook.aclose()
