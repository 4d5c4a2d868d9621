"""A request budget shared by every Celonis trigger in one triggerer process.

Polls are spaced so that the triggerer as a whole stays under ``[celonis] trigger_requests_per_second``
(default 10): with few waiting jobs each polls at its own interval, with a thousand they queue for slots
and each polls less often, instead of flooding the team's API.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

from airflow_provider_celonis.hooks.options import celonis_option

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


async def wait_at_most(awaitable: Awaitable[T], timeout: float | None) -> T | None:
    """The awaitable's result, or None when ``timeout`` seconds pass first (it is then cancelled).

    ``asyncio.wait_for`` raises ``asyncio.TimeoutError``, which before Python 3.11 is not the builtin
    ``TimeoutError``: catching the builtin one there lets every deferred wait die at its first timeout.
    """
    try:
        return await asyncio.wait_for(awaitable, timeout=timeout)
    except asyncio.TimeoutError:
        return None
