"""One status poll per data pool, shared by every trigger waiting on a job of that pool.

A thousand deferred pushes into one pool cost one ``GET jobs/`` per poll interval instead of a thousand
``GET jobs/{id}``: each trigger wakes on every refresh and reads its job from the list, so it fires within
one poll interval of its job finishing, and the triggerer stays inside its request budget. The board
polls fast right after a trigger joins (small jobs finish in seconds) and backs off to the shortest poll
interval among its triggers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_celonis.hooks.celonis import CelonisHook
from airflow_provider_celonis.triggers.budget import request_budget, wait_at_most

FIRST_DELAY = 1.0


@dataclass
class Snapshot:
    """One refresh: the pool's jobs by id, or the error the list call raised."""

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: BaseException | None = None


class PoolStatusBoard:
    """Polls one pool's job list while at least one trigger subscribes."""

    def __init__(self, celonis_conn_id: str, pool: str) -> None:
        self.celonis_conn_id = celonis_conn_id
        self.pool = pool
        self._hook: asyncio.Future[CelonisHook] | None = None
        self.intervals: list[float] = []
        self._delay = FIRST_DELAY
        self._snapshot = Snapshot()
        self._updated = asyncio.Event()
        self._poke = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def hook(self) -> CelonisHook:
        """The board's hook, created once (reading the connection must not run once per trigger)."""
        if self._hook is None:
            self._hook = asyncio.ensure_future(CelonisHook.for_trigger(self.celonis_conn_id))
        return await asyncio.shield(self._hook)

    def subscribe(self, poll_interval: float) -> None:
        self.intervals.append(poll_interval)
        self._delay = min(FIRST_DELAY, poll_interval)
        self._poke.set()  # a newcomer gets a fresh status now, not after the current sleep
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def unsubscribe(self, poll_interval: float) -> bool:
        """Returns True when this was the last subscriber (the board is then stopped)."""
        self.intervals.remove(poll_interval)
        if self.intervals:
            return False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._hook is not None and self._hook.done() and not self._hook.exception():
            await self._hook.result().aclose()
        return True

    async def next_snapshot(self) -> Snapshot:
        """Wait for the next refresh and return it."""
        await self._updated.wait()
        return self._snapshot

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self.intervals:
            await request_budget().acquire()
            started = loop.time()
            try:
                jobs = await (await self.hook()).alist_jobs(self.pool)
                snapshot = Snapshot({str(job.get("id")): job for job in jobs})
            except Exception as exc:  # noqa: BLE001 - handed to every waiting trigger, which raises it
                snapshot = Snapshot(error=exc)
            self._snapshot = snapshot
            updated, self._updated = self._updated, asyncio.Event()
            updated.set()
            self._poke.clear()
            # Refreshes start one delay apart, so a status is never older than one poll interval.
            await wait_at_most(self._poke.wait(), max(0.0, started + self._delay - loop.time()))
            # A tenth of margin for the list call itself: a status is never a full interval old.
            self._delay = min(self._delay * 2, 0.9 * min(self.intervals, default=self._delay))


_boards: dict[tuple[int, str, str], PoolStatusBoard] = {}


@contextlib.asynccontextmanager
async def pool_board(celonis_conn_id: str, pool: str, poll_interval: float) -> AsyncIterator[PoolStatusBoard]:
    """Join the board of (event loop, connection, pool), creating it on first use."""
    key = (id(asyncio.get_running_loop()), celonis_conn_id, pool)
    board = _boards.get(key)
    if board is None:  # no await between the lookup and the insert: one board per key, even at a rush
        board = _boards[key] = PoolStatusBoard(celonis_conn_id, pool)
    board.subscribe(poll_interval)
    try:
        yield board
    finally:
        if await board.unsubscribe(poll_interval) and _boards.get(key) is board:
            del _boards[key]
