"""The wait every Celonis trigger runs: a shared status board, a verdict per refresh, the deadline, a cancel.

A subclass says what it waits for (``feed``, ``verdict``, ``event``) and how to cancel it; the loop, the
error rules, the deadline and the cancel budget are written once here, for data push jobs, data job
executions and data model loads alike.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_celonis.hooks.celonis import CelonisHook
from airflow_provider_celonis.hooks.errors import CelonisApiError
from airflow_provider_celonis.hooks.executions import Verdict
from airflow_provider_celonis.hooks.status_log import StatusLog
from airflow_provider_celonis.triggers.budget import wait_at_most
from airflow_provider_celonis.triggers.status_board import Feed, PoolStatusBoard, Snapshot, pool_board

#: How long the cancel at the deadline may take. The trigger fires by ``end_time + CANCEL_BUDGET``.
CANCEL_BUDGET = 30.0
#: What a task adds to ``end_time`` for its ``defer(timeout=...)``: the trigger's own deadline (and its
#: cancel) always fires first, so the scheduler's timeout never leaves an owned run going.
DEFER_MARGIN = CANCEL_BUDGET + 30.0


class CelonisStatusTrigger(BaseTrigger):
    """Fires once with the outcome of one item (a job, an execution, a load) read from a pool's board.

    Subclasses set ``item_id``, ``data_pool_id``, ``celonis_conn_id``, ``poll_interval``, ``end_time``
    and ``cancel_at_deadline``, and implement ``feed``, ``verdict``, ``status_of`` and ``event``.
    """

    item_id: str
    data_pool_id: str
    celonis_conn_id: str
    poll_interval: float
    end_time: float | None
    cancel_at_deadline: bool
    #: What log lines call the item ("job", "data job", "data model").
    what = "job"

    def feed(self) -> Feed:
        raise NotImplementedError

    def verdict(self, entry: Mapping[str, Any] | None) -> Verdict:
        raise NotImplementedError

    def status_of(self, entry: Mapping[str, Any] | None) -> Any:
        raise NotImplementedError

    def event(self, outcome: str, entry: Mapping[str, Any] | None = None, message: str = "") -> TriggerEvent:
        raise NotImplementedError

    async def cancel(self, hook: CelonisHook) -> None:
        """Cancel the item; subclasses whose item Celonis cannot cancel raise ``NotImplementedError``."""
        raise NotImplementedError

    def stalled(self, verdict: Verdict) -> str | None:
        """A reason to give up before the deadline (e.g. our execution never showed up), else None."""
        del verdict
        return None

    async def missing(self, board: PoolStatusBoard) -> dict[str, Any] | None:
        """The item when the board's snapshot does not hold it (None: it is not there yet)."""
        del board
        return None

    async def run(self) -> AsyncIterator[TriggerEvent]:
        status_log = StatusLog(self.log, self.item_id, what=self.what)
        feed = self.feed()
        async with pool_board(self.celonis_conn_id, self.data_pool_id, self.poll_interval, feed) as board:
            while True:
                remaining = self._remaining()
                if remaining == 0:
                    yield await self._deadline_event(board, status_log.status)
                    return
                # Every wait is bounded by the deadline, the item's own read after a snapshot too.
                snapshot = await wait_at_most(board.next_snapshot(), remaining)
                if snapshot is None:
                    continue
                try:
                    entry = await wait_at_most(self._entry(board, snapshot), self._remaining())
                except CelonisApiError as exc:
                    if exc.status is not None and exc.status < 500 and exc.status != 429:
                        yield self.event("error", message=str(exc))
                        return
                    self.log.warning("Polling %s %s failed, will retry: %s", self.what, self.item_id, exc)
                    continue
                verdict = self.verdict(entry)
                if verdict is not Verdict.NOT_YET:
                    status_log.seen(self.status_of(entry))
                if verdict is Verdict.SUCCEEDED:
                    yield self.event("success", entry)
                    return
                if verdict is Verdict.FAILED:
                    yield self.event(
                        "error", entry, f"{self.what} {self.item_id} ended {self.status_of(entry)}"
                    )
                    return
                reason = self.stalled(verdict)
                if reason:
                    yield self.event("error", entry, reason)
                    return

    def _remaining(self) -> float | None:
        return None if self.end_time is None else max(self.end_time - time.time(), 0.0)

    async def _entry(self, board: PoolStatusBoard, snapshot: Snapshot) -> dict[str, Any] | None:
        if snapshot.error is not None:
            raise snapshot.error
        entry = snapshot.items.get(self.item_id)
        return entry if entry is not None else await self.missing(board)

    async def _deadline_event(self, board: PoolStatusBoard, last_status: Any) -> TriggerEvent:
        """The deadline passed: cancel only if this task owns the item, never for longer than the budget."""
        late = f"{self.what} {self.item_id} (last seen {last_status}) did not finish before the timeout"
        if not self.cancel_at_deadline:
            return self.event("timeout", message=f"{late}; left it as it is (this task does not own it)")
        cancelled = await wait_at_most(self._cancel(board.hook(), "the wait timed out"), CANCEL_BUDGET)
        what = cancelled or f"could not confirm its cancel within {CANCEL_BUDGET:.0f}s"
        return self.event("timeout", message=f"{late}; {what}")

    async def _cancel(self, hook: Any, why: str) -> str:
        """Cancel the item; ``hook`` may still be pending, so its connection lookup counts in the budget."""
        try:
            ready = hook if isinstance(hook, CelonisHook) else await hook
            await self.cancel(ready)
        except NotImplementedError:
            return "Celonis has no call to cancel it, so it goes on"
        except Exception as exc:  # noqa: BLE001 - a failed cancel is logged and reported, not raised
            self.log.warning("Could not cancel Celonis %s %s: %s", self.what, self.item_id, exc)
            return f"could not cancel it: {exc}"
        self.log.info("Cancelled Celonis %s %s: %s", self.what, self.item_id, why)
        return "cancelled it"

    async def cancel_now(self, why: str) -> None:
        """Cancel with a hook of its own (``on_kill``: the board may be gone)."""
        hook = await CelonisHook.for_trigger(self.celonis_conn_id)
        try:
            await self._cancel(hook, why)
        finally:
            await hook.aclose()
