"""``DataPushJobTrigger``: waits in the triggerer for a data push job to reach a terminal status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_celonis.hooks.celonis import TERMINAL_STATUSES, CelonisHook
from airflow_provider_celonis.hooks.errors import CelonisApiError
from airflow_provider_celonis.triggers.budget import request_budget
from airflow_provider_celonis.triggers.status_board import PoolStatusBoard, Snapshot, pool_board


class DataPushJobTrigger(BaseTrigger):
    """Polls a job without blocking the event loop and fires once with its outcome.

    :param end_time: wall-clock deadline (UNIX seconds). The trigger enforces it itself and cancels the
        job when it passes, so a deferred task never outlives its timeout while the job runs on.
    :param cancel_on_kill: cancel the job when the task is cleared or marked failed/success by a user
        (``BaseTrigger.on_kill``, Airflow >= 3.3); never on triggerer restarts (``cleanup``).

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
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.data_pool_id = data_pool_id
        self.celonis_conn_id = celonis_conn_id
        self.poll_interval = float(poll_interval)
        self.end_time = end_time
        self.cancel_on_kill = cancel_on_kill
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
        async with pool_board(self.celonis_conn_id, self.data_pool_id, self.poll_interval) as board:
            while True:
                remaining = None if self.end_time is None else self.end_time - time.time()
                if remaining is not None and remaining <= 0:
                    await self._cancel(await board.hook(), "the wait timed out")
                    yield self._event(
                        "timeout",
                        message=f"job {self.job_id} did not finish before the task's timeout; cancelled it",
                    )
                    return
                try:
                    snapshot = await asyncio.wait_for(board.next_snapshot(), timeout=remaining)
                except TimeoutError:
                    continue
                try:
                    job = await self._job(board, snapshot)
                except CelonisApiError as exc:
                    if exc.status is not None and exc.status < 500 and exc.status != 429:
                        yield self._event("error", message=str(exc))
                        return
                    self.log.warning("Polling job %s failed, will retry: %s", self.job_id, exc)
                    continue
                status = job.get("status")
                if status == "DONE":
                    yield self._event("success", job)
                    return
                if status in TERMINAL_STATUSES:
                    yield self._event("error", job, message=f"job {self.job_id} ended {status}")
                    return

    async def _job(self, board: PoolStatusBoard, snapshot: Snapshot) -> dict[str, Any]:
        """This job from the pool's list; asked for directly if the list does not hold it."""
        if snapshot.error is not None:
            raise snapshot.error
        job = snapshot.jobs.get(self.job_id)
        if job is None:
            await request_budget().acquire()
            job = await (await board.hook()).aget_job(self.job_id, self.data_pool_id)
        return job

    async def _cancel(self, hook: CelonisHook, why: str) -> None:
        try:
            await hook.acancel_job(self.job_id, self.data_pool_id)
            self.log.info("Cancelled Celonis job %s: %s", self.job_id, why)
        except Exception as exc:
            self.log.warning("Could not cancel Celonis job %s: %s", self.job_id, exc)

    async def on_kill(self) -> None:
        if not self.cancel_on_kill:
            return
        hook = await CelonisHook.for_trigger(self.celonis_conn_id)
        try:
            await self._cancel(hook, "the task was cleared or marked by a user")
        finally:
            await hook.aclose()
