"""One log line per job status change, and a reminder while the status stays the same."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from airflow_provider_celonis.hooks.options import celonis_option

DEFAULT_INTERVAL = 60.0


def configured_interval() -> float:
    """``[celonis] status_log_interval`` (seconds, default 60)."""
    return celonis_option("status_log_interval", DEFAULT_INTERVAL)


class StatusLog:
    """Logs a job's status when it changes, and every ``interval`` seconds while it does not.

    Without it, a wait of many minutes shows no line between "Executed" and "DONE".
    """

    def __init__(
        self,
        log: Any,
        job_id: str,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        what: str = "job",
    ) -> None:
        self.log, self.job_id, self.clock, self.what = log, job_id, clock, what
        self.interval = configured_interval() if interval is None else interval
        self.status: Any = None
        self.seen_any = False
        self.since = self.logged_at = 0.0

    def seen(self, status: Any) -> bool:
        """Record a poll's status; returns True if a line was logged."""
        now = self.clock()
        if not self.seen_any or status != self.status:
            self.seen_any = True
            self.status, self.since, self.logged_at = status, now, now
            self.log.info("Celonis %s %s is %s", self.what, self.job_id, status)
            return True
        if now - self.logged_at >= self.interval:
            self.logged_at = now
            self.log.info(
                "Celonis %s %s is still %s (for %.0fs)", self.what, self.job_id, status, now - self.since
            )
            return True
        return False
