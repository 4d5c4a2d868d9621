"""StatusLog: a line per status change and a reminder at a bounded interval while unchanged."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_celonis.hooks.status_log import StatusLog


def test_logs_changes_and_reminders(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    status_log = StatusLog(logging.getLogger("t"), "j1", interval=60, clock=lambda: now[0])
    seen = []
    with caplog.at_level("INFO"):
        for t, status in [
            (0, "QUEUED"),
            (10, "QUEUED"),
            (20, "RUNNING"),
            (79, "RUNNING"),
            (80, "RUNNING"),
            (100, "RUNNING"),
            (141, "RUNNING"),
            (142, "DONE"),
        ]:
            now[0] = float(t)
            seen.append(status_log.seen(status))
    assert seen == [True, False, True, False, True, False, True, True]
    assert caplog.messages == [
        "Celonis job j1 is QUEUED",
        "Celonis job j1 is RUNNING",
        "Celonis job j1 is still RUNNING (for 60s)",
        "Celonis job j1 is still RUNNING (for 121s)",
        "Celonis job j1 is DONE",
    ]
