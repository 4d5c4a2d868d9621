"""A request budget shared by every Celonis trigger in one triggerer process.

Polls are spaced so that the triggerer as a whole stays under ``[celonis] trigger_requests_per_second``
(default 10): with few waiting jobs each polls at its own interval, with a thousand they queue for slots
and each polls less often, instead of flooding the team's API.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable
from typing import TypeVar

from airflow_provider_celonis.hooks.options import celonis_option

if sys.version_info >= (3, 11):
    from asyncio import timeout as _deadline
else:  # the same, from the package asyncio's came from (aiohttp needs it there too)
    from async_timeout import timeout as _deadline

T = TypeVar("T")

DEFAULT_REQUESTS_PER_SECOND = 10.0


class AsyncRequestBudget:
    """Hands out request slots at a fixed rate; callers await their slot (no lock: one event loop)."""

    def __init__(self, requests_per_second: float) -> None:
        self.interval = 1.0 / max(requests_per_second, 0.01)
        self._next_slot = 0.0

    async def acquire(self) -> None:
        now = time.monotonic()
        slot = max(now, self._next_slot)
        self._next_slot = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


_budgets: dict[int, AsyncRequestBudget] = {}


def configured_rate() -> float:
    """``[celonis] trigger_requests_per_second`` (default 10)."""
    return celonis_option("trigger_requests_per_second", DEFAULT_REQUESTS_PER_SECOND)


def request_budget() -> AsyncRequestBudget:
    """The budget of the running event loop (one per triggerer process)."""
    key = id(asyncio.get_running_loop())
    budget = _budgets.get(key)
    if budget is None:
        budget = _budgets[key] = AsyncRequestBudget(configured_rate())
    return budget


def wait_at_most(awaitable: Awaitable[T], timeout: float | None) -> Awaitable[T | None]:
    """The awaitable's result, or None when ``timeout`` seconds pass first (it is then cancelled).

    Without a timeout this is the awaitable itself, and with one a deadline on the waiting task
    (``asyncio.timeout``), not ``asyncio.wait_for``'s task of its own: a thousand waiting triggers hold a
    few thousand fewer objects for the garbage collector to walk (docs/performance.md, triggerer load).
    """
    return awaitable if timeout is None else _bounded(awaitable, timeout)


async def _bounded(awaitable: Awaitable[T], timeout: float) -> T | None:
    # Before Python 3.11 the timeout raises ``asyncio.TimeoutError``, which is not the builtin
    # ``TimeoutError`` there: catching only the builtin one let every deferred wait die at its first timeout.
    try:
        async with _deadline(timeout):
            return await awaitable
    except (TimeoutError, asyncio.TimeoutError):
        return None
