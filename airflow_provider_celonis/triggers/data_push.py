"""``DataPushJobTrigger``: waits in the triggerer for a data push job to reach a terminal status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.triggers.base import TriggerEvent

from airflow_provider_celonis.hooks.celonis import TERMINAL_STATUSES, CelonisHook
from airflow_provider_celonis.hooks.executions import Verdict
from airflow_provider_celonis.triggers.base import CANCEL_BUDGET, DEFER_MARGIN, CelonisStatusTrigger
from airflow_provider_celonis.triggers.budget import request_budget
from airflow_provider_celonis.triggers.status_board import PUSH_JOBS, Feed, PoolStatusBoard

__all__ = ["CANCEL_BUDGET", "DEFER_MARGIN", "DataPushJobTrigger"]


class DataPushJobTrigger(CelonisStatusTrigger):
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
        self.job_id = self.item_id = job_id
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

    def feed(self) -> Feed:
        return PUSH_JOBS

    def verdict(self, entry: Mapping[str, Any] | None) -> Verdict:
        status = (entry or {}).get("status")
        if entry is None:
            return Verdict.NOT_YET
        if status == "DONE":
            return Verdict.SUCCEEDED
        return Verdict.FAILED if status in TERMINAL_STATUSES else Verdict.RUNNING

    def status_of(self, entry: Mapping[str, Any] | None) -> Any:
        return (entry or {}).get("status")

    def event(self, outcome: str, entry: Mapping[str, Any] | None = None, message: str = "") -> TriggerEvent:
        return TriggerEvent(
            {
                "status": outcome,
                "job_id": self.job_id,
                "data_pool_id": self.data_pool_id,
                "job_status": (entry or {}).get("status"),
                "logs": list((entry or {}).get("logs") or [])[-50:],
                "message": message,
                "push": self.push,
            }
        )

    async def missing(self, board: PoolStatusBoard) -> dict[str, Any] | None:
        """A job the pool's list does not hold is asked for directly."""
        await request_budget().acquire()
        return await (await board.hook()).aget_job(self.job_id, self.data_pool_id)

    async def cancel(self, hook: CelonisHook) -> None:
        await hook.acancel_job(self.job_id, self.data_pool_id)

    async def on_kill(self) -> None:
        if self.cancel_on_kill:
            await self.cancel_now("the task was cleared or marked by a user")
