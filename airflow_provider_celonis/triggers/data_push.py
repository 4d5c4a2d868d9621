"""``DataPushJobTrigger``: waits in the triggerer for a data push job to reach a terminal status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_celonis.hooks.celonis import TERMINAL_STATUSES, CelonisHook
from airflow_provider_celonis.hooks.errors import CelonisApiError, CelonisRateLimitError
from airflow_provider_celonis.triggers.budget import request_budget


class DataPushJobTrigger(BaseTrigger):
    """Polls a job without blocking the event loop and fires once with its outcome.

    :param end_time: wall-clock deadline (UNIX seconds). The trigger enforces it itself and cancels the
        job when it passes, so a deferred task never outlives its timeout while the job runs on.
    :param cancel_on_kill: cancel the job when the task is cleared or marked failed/success by a user
        (``BaseTrigger.on_kill``, Airflow >= 3.3); never on triggerer restarts (``cleanup``).

    Every trigger in one triggerer draws its polls from a shared budget (``[celonis]
    trigger_requests_per_second``, default 10), so a thousand waiting jobs never flood the API: each one
    polls at ``poll_interval`` when the budget allows and less often when it does not.
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
        hook = await CelonisHook.for_trigger(self.celonis_conn_id)
        delay = min(1.0, self.poll_interval)
        while True:
            if self.end_time is not None and time.time() >= self.end_time:
                await self._cancel(hook, "the wait timed out")
                yield self._event(
                    "timeout",
                    message=f"job {self.job_id} did not finish before the task's timeout; cancelled it",
                )
                return
            await request_budget().acquire()
            try:
                job = await hook.aget_job(self.job_id, self.data_pool_id)
            except CelonisRateLimitError as exc:
                await self._sleep(exc.retry_after)
                continue
            except CelonisApiError as exc:
                if exc.status is not None and exc.status < 500 and exc.status != 429:
                    yield self._event("error", message=str(exc))
                    return
                self.log.warning("Polling job %s failed, will retry: %s", self.job_id, exc)
                await self._sleep(self.poll_interval)
                continue
            status = job.get("status")
            if status == "DONE":
                yield self._event("success", job)
                return
            if status in TERMINAL_STATUSES:
                yield self._event("error", job, message=f"job {self.job_id} ended {status}")
                return
            await self._sleep(delay)
            delay = min(self.poll_interval, delay * 2)

    async def _sleep(self, seconds: float) -> None:
        if self.end_time is not None:
            seconds = max(0.0, min(seconds, self.end_time - time.time()))
        await asyncio.sleep(seconds)

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
        await self._cancel(hook, "the task was cleared or marked by a user")
