"""``wait_at_most``: the bounded wait every Celonis trigger and status board uses (real asyncio, no server).

The CI lane on Python 3.10 runs these against ``async_timeout``; the others against ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio

import pytest

from airflow_provider_celonis.triggers.budget import wait_at_most


def test_a_result_in_time_is_returned() -> None:
    async def answer() -> str:
        await asyncio.sleep(0.01)
        return "done"

    assert asyncio.run(wait_at_most(answer(), 5)) == "done"  # type: ignore[arg-type]


def test_no_timeout_hands_back_the_awaitable_itself() -> None:
    """A waiting trigger holds no wrapper around its wait when it has no deadline."""

    async def check() -> None:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        assert wait_at_most(future, None) is future
        future.set_result(3)
        assert await wait_at_most(future, None) == 3

    asyncio.run(check())


def test_a_timeout_returns_none_and_cancels_the_wait() -> None:
    async def check() -> tuple[object, bool]:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        got = await wait_at_most(future, 0.05)
        return got, future.cancelled()

    assert asyncio.run(check()) == (None, True)


def test_the_waiting_task_goes_on_after_a_timeout() -> None:
    """The timeout cancels the wait, not the task: the next wait (a board's next refresh) still runs."""

    async def check() -> list[object]:
        loop = asyncio.get_running_loop()
        results: list[object] = [await wait_at_most(loop.create_future(), 0.02)]
        later = loop.create_future()
        loop.call_later(0.01, later.set_result, "next")
        results.append(await wait_at_most(later, 5))
        await asyncio.sleep(0)  # a cancel left pending on the task would land here
        return results

    assert asyncio.run(check()) == [None, "next"]


def test_a_cancel_from_outside_is_not_taken_for_a_timeout() -> None:
    """The triggerer cancelling a trigger must end it, not look like a deadline that passed."""

    async def check() -> None:
        waiting = asyncio.ensure_future(wait_at_most(asyncio.get_running_loop().create_future(), 5))
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    asyncio.run(check())
