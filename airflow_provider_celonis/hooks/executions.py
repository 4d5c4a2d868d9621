"""Telling *this* data job execution or data model load from the previous one: pure rules, no I/O.

Celonis keeps one status per data job (``logs/status``: ``EntityStatus``) and one current load per data
model (``load-info-sync``: ``currentComputeLoad``). Right after an execute or a reload, both may still show
the previous run's SUCCESS (pycelonis does not guard against this). So every wait starts from a
``Baseline``, what the status showed before we started, and accepts a terminal status only from a run
that differs from it: a data job execution with another ``lastExecutionStartDate`` (or in progress), a load
with another ``dataLoadId``. Server values are compared with server values, so clock skew between Airflow
and Celonis does not matter. The sync waits, the triggers and the sensors all judge with ``judge_*`` here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

#: ``ExecutionStatus`` (pycelonis): a data job execution or one of its tasks.
EXECUTION_IN_PROGRESS = frozenset({"QUEUED", "RUNNING"})
EXECUTION_FAILED = frozenset({"FAIL", "CANCEL", "SKIPPED"})
#: ``DataModelLoadStatus`` (pycelonis): WARNING is a success whose message is logged.
LOAD_IN_PROGRESS = frozenset({"RUNNING", "LOST_CONNECTION", "CANCELLING"})
LOAD_SUCCEEDED = frozenset({"SUCCESS", "WARNING"})
LOAD_FAILED = frozenset({"ERROR", "CANCELED"})


class Verdict(Enum):
    """What a status says about the run we wait for."""

    NOT_YET = "not yet"  # still the previous run (or nothing): ours has not shown up
    RUNNING = "running"  # ours (or, for a sensor, the one it waits for) is in progress
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def epoch_ms(value: Any) -> int | None:
    """A Celonis datetime (epoch milliseconds, or an ISO 8601 string) as epoch milliseconds."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
        return int(number if number > 1e11 else number * 1000)  # seconds from a lenient server
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return epoch_ms(int(text))
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp() * 1000)


def iso(value: Any) -> str | None:
    """A Celonis datetime as an ISO 8601 UTC string, for XComs and logs."""
    ms = epoch_ms(value)
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Baseline:
    """What the status showed before our execute or reload: the run a terminal status must not come from.

    ``run`` is the previous execution's start (epoch ms) or the previous load's id; None when there was
    none. ``after`` (epoch ms, optional) also rejects runs that started before it (a sensor's
    ``started_after``).
    """

    run: str | int | None = None
    after: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"run": self.run, "after": self.after}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Baseline:
        data = data or {}
        return cls(data.get("run"), data.get("after"))


def execution_baseline(entry: Mapping[str, Any] | None, after: int | None = None) -> Baseline:
    return Baseline(epoch_ms((entry or {}).get("lastExecutionStartDate")), after)


def load_baseline(load: Mapping[str, Any] | None, after: int | None = None) -> Baseline:
    return Baseline(_load_id(load), after)


def _load_id(load: Mapping[str, Any] | None) -> str | None:
    if not load:
        return None
    found = load.get("dataLoadId") or load.get("id")
    if found:
        return str(found)
    started = epoch_ms(load.get("startDate"))
    return None if started is None else f"started:{started}"


def judge_execution(entry: Mapping[str, Any] | None, baseline: Baseline) -> Verdict:
    """The verdict on a data job's ``EntityStatus`` for the execution started after ``baseline``.

    An execution in progress is ours unless its start date falls before ``after`` and is not the previous
    run's (which a queued status may still carry): that one was started by someone else while we waited
    for the server's clock. Every start first waits until nothing is in progress, so only one started at
    the same moment as ours could be another's, and nobody can tell those apart.
    """
    if not entry:
        return Verdict.NOT_YET
    status = str(entry.get("status") or "")
    started = epoch_ms(entry.get("lastExecutionStartDate"))
    if status in EXECUTION_IN_PROGRESS:
        before_ours = baseline.after is not None and started is not None and started < baseline.after
        foreign = before_ours and (baseline.run is None or started != int(baseline.run))
        return Verdict.NOT_YET if foreign else Verdict.RUNNING
    if started is None or (baseline.run is not None and started <= int(baseline.run)):
        return Verdict.NOT_YET
    if baseline.after is not None and started < baseline.after:
        return Verdict.NOT_YET
    if status == "SUCCESS":
        return Verdict.SUCCEEDED
    return Verdict.FAILED if status else Verdict.NOT_YET


def judge_load(load: Mapping[str, Any] | None, baseline: Baseline) -> Verdict:
    """The verdict on a data model's ``currentComputeLoad`` for the load started after ``baseline``."""
    load_id = _load_id(load)
    if load is None or load_id is None or load_id == baseline.run:
        return Verdict.NOT_YET
    started = epoch_ms(load.get("startDate"))
    if baseline.after is not None and (started is None or started < baseline.after):
        return Verdict.NOT_YET
    status = str(load.get("loadStatus") or "")
    if status in LOAD_IN_PROGRESS:
        return Verdict.RUNNING
    if status in LOAD_SUCCEEDED:
        return Verdict.SUCCEEDED
    return Verdict.FAILED if status else Verdict.NOT_YET


def execution_in_progress(entry: Mapping[str, Any] | None) -> bool:
    return str((entry or {}).get("status") or "") in EXECUTION_IN_PROGRESS


def load_in_progress(load: Mapping[str, Any] | None) -> bool:
    return str((load or {}).get("loadStatus") or "") in LOAD_IN_PROGRESS
