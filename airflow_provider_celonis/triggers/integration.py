"""Triggers for the Integration API: a data job execution and a data model load, waited for in the triggerer.

Both read a pool's shared status board (one ``logs/status`` per pool for every waiting data job, one
``load-info-sync`` per data model) within the triggerer's request budget, and judge each refresh against
the ``Baseline`` taken before the run started, so the previous run's SUCCESS is never taken for this one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from airflow.triggers.base import TriggerEvent

from airflow_provider_celonis.hooks.celonis import CelonisHook
from airflow_provider_celonis.hooks.executions import Baseline, Verdict, judge_execution, judge_load
from airflow_provider_celonis.triggers.base import CelonisStatusTrigger
from airflow_provider_celonis.triggers.status_board import DATA_JOB_STATUSES, Feed, data_model_load_feed


class _RunTrigger(CelonisStatusTrigger):
    """What the data job and data model triggers share: the baseline, the deadlines, the event."""

    kind = ""
    status_field = ""

    def __init__(
        self,
        item_id: str,
        data_pool_id: str,
        baseline: Mapping[str, Any] | None = None,
        celonis_conn_id: str = CelonisHook.default_conn_name,
        poll_interval: float = 10.0,
        end_time: float | None = None,
        cancel_on_kill: bool = True,
        cancel_at_deadline: bool | None = None,
        appear_by: float | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """:param baseline: ``Baseline.as_dict()`` of the status before the run (``{}``: any run counts).
        :param appear_by: UNIX time by which the run must show in the status, else the trigger fails.
        :param context: carried to the event untouched (what the task needs to build its XCom)."""
        super().__init__()  # type: ignore[no-untyped-call]  # BaseTrigger.__init__ is unannotated
        self.item_id = item_id
        self.data_pool_id = data_pool_id
        self.baseline = dict(baseline or {})
        self.celonis_conn_id = celonis_conn_id
        self.poll_interval = float(poll_interval)
        self.end_time = end_time
        self.cancel_on_kill = cancel_on_kill
        self.cancel_at_deadline = cancel_on_kill if cancel_at_deadline is None else cancel_at_deadline
        self.appear_by = appear_by
        self.context = dict(context or {})

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Only ids, numbers and the baseline: credentials are read from the connection in the triggerer."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "item_id": self.item_id,
                "data_pool_id": self.data_pool_id,
                "baseline": self.baseline,
                "celonis_conn_id": self.celonis_conn_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "cancel_on_kill": self.cancel_on_kill,
                "cancel_at_deadline": self.cancel_at_deadline,
                "appear_by": self.appear_by,
                "context": self.context,
            },
        )

    def status_of(self, entry: Mapping[str, Any] | None) -> Any:
        return (entry or {}).get(self.status_field)

    def stalled(self, verdict: Verdict) -> str | None:
        if verdict is Verdict.NOT_YET and self.appear_by is not None and time.time() > self.appear_by:
            return (
                f"Celonis still shows no {self.what} run newer than the one before ours "
                f"({self.baseline.get('run')}); it was started but never appeared in its status"
            )
        return None

    def event(self, outcome: str, entry: Mapping[str, Any] | None = None, message: str = "") -> TriggerEvent:
        return TriggerEvent(
            {
                "status": outcome,
                "kind": self.kind,
                "id": self.item_id,
                "data_pool_id": self.data_pool_id,
                "run_status": self.status_of(entry),
                "entry": dict(entry or {}),
                "message": message,
                "context": self.context,
            }
        )

    async def on_kill(self) -> None:
        if self.cancel_on_kill:
            await self.cancel_now("the task was cleared or marked by a user")


class DataJobTrigger(_RunTrigger):
    """Waits for the data job execution started after ``baseline`` to end (SUCCESS, or FAIL/CANCEL/SKIPPED).

    The deadline (``end_time``) cancels the execution when this task owns it (``cancel_at_deadline``).
    """

    kind = "data_job"
    what = "data job"
    status_field = "status"

    def feed(self) -> Feed:
        return DATA_JOB_STATUSES

    def verdict(self, entry: Mapping[str, Any] | None) -> Verdict:
        return judge_execution(entry, Baseline.from_dict(self.baseline))

    async def cancel(self, hook: CelonisHook) -> None:
        await hook.acancel_data_job(self.item_id, self.data_pool_id)


class DataModelLoadTrigger(_RunTrigger):
    """Waits for the data model load started after ``baseline`` to end (SUCCESS/WARNING, or ERROR/CANCELED).

    Celonis (pycelonis) has no call to cancel a load: at the deadline the trigger reports it and leaves it.
    """

    kind = "data_model_load"
    what = "data model"
    status_field = "loadStatus"

    def feed(self) -> Feed:
        return data_model_load_feed(self.item_id)

    def verdict(self, entry: Mapping[str, Any] | None) -> Verdict:
        return judge_load(entry or None, Baseline.from_dict(self.baseline))

    async def cancel(self, hook: CelonisHook) -> None:
        del hook
        raise NotImplementedError("Celonis has no documented call to cancel a data model load")

    async def on_kill(self) -> None:
        """Nothing to cancel: pycelonis knows no call that stops a data model load."""
