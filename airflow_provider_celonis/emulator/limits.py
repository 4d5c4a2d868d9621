"""The team-wide execute rate limits: N per second and M per window aligned to the epoch (the UTC hour)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from .settings import EmulatorSettings


class ExecuteRateLimiter:
    """Fixed windows, like the Celonis gateway: a new second / a new full hour resets the budget.

    Settings are read on every call so tests can change ``execute_per_hour`` on a running emulator.
    """

    def __init__(self, settings: EmulatorSettings, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._second: tuple[int, int] = (0, 0)  # (window start, count)
        self._window: tuple[int, int] = (0, 0)

    def acquire(self) -> int | None:
        """Count one execute; None if allowed, else the seconds to wait (for ``Retry-After``)."""
        now = self._clock()
        width = max(self._settings.quota_window_seconds, 1e-3)
        with self._lock:
            second = int(now)
            window = int(now // width)
            sec_count = self._second[1] if self._second[0] == second else 0
            win_count = self._window[1] if self._window[0] == window else 0
            if win_count >= self._settings.execute_per_hour:
                return max(1, math.ceil((window + 1) * width - now))
            if sec_count >= self._settings.execute_per_second:
                return 1
            self._second = (second, sec_count + 1)
            self._window = (window, win_count + 1)
            return None
