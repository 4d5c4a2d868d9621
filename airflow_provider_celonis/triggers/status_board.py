"""One status poll per data pool and feed, shared by every trigger waiting on an item of that feed.

A ``Feed`` is one call that answers many items' statuses at once: the pool's data push jobs (``GET jobs/``),
its data jobs (``logs/status``), or one data model's current load (``load-info-sync``).

A thousand deferred pushes into one pool cost one ``GET jobs/`` per poll interval instead of a thousand
``GET jobs/{id}``: each trigger wakes on every refresh and reads its job from the list, so it fires within
one poll interval of its job finishing, and the triggerer stays inside its request budget. The board
polls fast right after a trigger joins (small jobs finish in seconds) and backs off to the shortest poll
interval among its triggers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_celonis.hooks.celonis import CelonisHook
from airflow_provider_celonis.triggers.budget import request_budget, wait_at_most

FIRST_DELAY = 1.0
#: Triggers woken per event-loop iteration after a refresh. Each logs and judges its item (~70 µs); waking a
#: thousand at once stalled the triggerer's loop for over 100 ms.
WAKE_BATCH = 100


@dataclass
class Snapshot:
    """One refresh: the feed's items (jobs, data job statuses, a model's load) by id, or the call's error."""

    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: BaseException | None = None


@dataclass(frozen=True)
class Feed:
    """What a board polls: ``fetch(hook, pool)`` answers items by id in one call; ``name`` keys the board."""

    name: str
    fetch: Callable[[CelonisHook, str], Awaitable[dict[str, dict[str, Any]]]]


async def _push_jobs(hook: CelonisHook, pool: str) -> dict[str, dict[str, Any]]:
    return {str(job.get("id")): job for job in await hook.alist_jobs(pool)}


async def _data_job_statuses(hook: CelonisHook, pool: str) -> dict[str, dict[str, Any]]:
    return await hook.adata_job_statuses(pool)


PUSH_JOBS = Feed("data-push-jobs", _push_jobs)
DATA_JOB_STATUSES = Feed("data-job-statuses", _data_job_statuses)


def data_model_load_feed(model_id: str) -> Feed:
    """One data model's current load, as the item ``model_id`` (``{}`` while never loaded)."""

    async def fetch(hook: CelonisHook, pool: str) -> dict[str, dict[str, Any]]:
        return {model_id: await hook.adata_model_load(model_id, pool) or {}}

    return Feed(f"data-model-load:{model_id}", fetch)


class PoolStatusBoard:
    """Polls one pool's feed while at least one trigger subscribes."""

    def __init__(self, celonis_conn_id: str, pool: str, feed: Feed = PUSH_JOBS) -> None:
        self.celonis_conn_id = celonis_conn_id
        self.pool = pool
        self.feed = feed
        self._hook: asyncio.Future[CelonisHook] | None = None
        self.intervals: list[float] = []
        self._delay = FIRST_DELAY
        self._waiters: list[asyncio.Future[Snapshot]] = []
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

    def next_snapshot(self) -> asyncio.Future[Snapshot]:
        """The next refresh, as a future: a waiting trigger holds it, not a coroutine around it."""
        waiter: asyncio.Future[Snapshot] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return waiter

    async def _wake(self, snapshot: Snapshot) -> None:
        """Hand the refresh to every waiting trigger, ``WAKE_BATCH`` per loop iteration."""
        waiters, self._waiters = self._waiters, []
        for number, waiter in enumerate(waiters, start=1):
            if not waiter.done():  # a wait given up (its deadline passed) is skipped
                waiter.set_result(snapshot)
            if number % WAKE_BATCH == 0:
                await asyncio.sleep(0)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self.intervals:
            await request_budget().acquire()
            started = loop.time()
            try:
                snapshot = Snapshot(await self.feed.fetch(await self.hook(), self.pool))
            except Exception as exc:  # noqa: BLE001 - handed to every waiting trigger, which raises it
                snapshot = Snapshot(error=exc)
            self._poke.clear()
            await self._wake(snapshot)
            # Refreshes start one delay apart, so a status is never older than one poll interval.
            await wait_at_most(self._poke.wait(), max(0.0, started + self._delay - loop.time()))
            # A tenth of margin for the list call itself: a status is never a full interval old.
            self._delay = min(self._delay * 2, 0.9 * min(self.intervals, default=self._delay))


_boards: dict[tuple[int, str, str, str], PoolStatusBoard] = {}


class _Membership:
    """A trigger's place on a board for the length of an ``async with``.

    A class rather than an ``asynccontextmanager``: a waiting trigger then holds this one object instead of
    an async generator, its context manager and the event loop's weak reference to it (four objects per
    trigger for the garbage collector to walk, docs/performance.md).
    """

    __slots__ = ("board", "celonis_conn_id", "feed", "key", "poll_interval", "pool")

    def __init__(self, celonis_conn_id: str, pool: str, poll_interval: float, feed: Feed) -> None:
        self.celonis_conn_id = celonis_conn_id
        self.pool = pool
        self.poll_interval = poll_interval
        self.feed = feed

    async def __aenter__(self) -> PoolStatusBoard:
        self.key = key = (id(asyncio.get_running_loop()), self.celonis_conn_id, self.pool, self.feed.name)
        board = _boards.get(key)
        if board is None:  # no await between the lookup and the insert: one board per key, even at a rush
            board = _boards[key] = PoolStatusBoard(self.celonis_conn_id, self.pool, self.feed)
        board.subscribe(self.poll_interval)
        self.board = board
        return board

    async def __aexit__(self, *exc_info: object) -> None:
        if await self.board.unsubscribe(self.poll_interval) and _boards.get(self.key) is self.board:
            del _boards[self.key]


def pool_board(
    celonis_conn_id: str, pool: str, poll_interval: float, feed: Feed = PUSH_JOBS
) -> AbstractAsyncContextManager[PoolStatusBoard]:
    """Join the board of (event loop, connection, pool, feed), creating it on first use (``async with``)."""
    return _Membership(celonis_conn_id, pool, poll_interval, feed)
