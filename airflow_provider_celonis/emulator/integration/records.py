"""What the Integration API remembers: executions of data jobs (with their tasks) and data model loads.

Every record is read and changed under :attr:`Registry.lock` only, by the HTTP handlers and the runner thread.
Dates are epoch milliseconds (what pycelonis' transports parse); ``*_mono`` are monotonic seconds for the lag.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .config import DataJob, DataModel, ModelTable, Transformation

# ExecutionStatus (pycelonis): a job's and a task's status.
QUEUED, RUNNING, SUCCESS, FAIL, CANCEL, SKIPPED = "QUEUED", "RUNNING", "SUCCESS", "FAIL", "CANCEL", "SKIPPED"
IN_PROGRESS = frozenset({QUEUED, RUNNING})
# DataModelLoadStatus (pycelonis) and DataLoadType.
LOAD_RUNNING, LOAD_SUCCESS, LOAD_WARNING, LOAD_ERROR = "RUNNING", "SUCCESS", "WARNING", "ERROR"
LOAD_IN_PROGRESS = frozenset({"RUNNING", "LOST_CONNECTION", "CANCELLING"})
COMPLETE, FROM_CACHE, PARTIAL = "COMPLETE", "FROM_CACHE", "PARTIAL"


def now_ms() -> int:
    return int(time.time() * 1000)


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class LogMessage:
    level: str
    text: str
    date: int = field(default_factory=now_ms)
    id: str = field(default_factory=new_id)


@dataclass
class TaskRun:
    """One transformation within one execution."""

    task: Transformation
    order: int
    status: str = QUEUED
    start: int | None = None
    end: int | None = None
    messages: list[LogMessage] = field(default_factory=list)
    item_id: str = field(default_factory=new_id)

    def finish(self, status: str, level: str | None = None, text: str | None = None) -> None:
        self.status, self.end = status, now_ms()
        if level is not None and text is not None:
            self.messages.append(LogMessage(level, text))


@dataclass
class LoadRequest:
    """A data model load an execution starts once its transformations succeeded."""

    model_execution_id: str
    model: DataModel
    tables: tuple[ModelTable, ...]
    partial: bool


@dataclass
class Execution:
    """One execution of a data job: received as QUEUED, then RUNNING, then SUCCESS, FAIL or CANCEL."""

    pool_id: str
    job: DataJob
    configuration: dict[str, Any]
    tasks: list[TaskRun]
    loads: list[LoadRequest]
    status: str = QUEUED
    start: int = field(default_factory=now_ms)
    start_mono: float = field(default_factory=time.monotonic)
    end: int | None = None
    id: str = field(default_factory=new_id)
    item_id: str = field(default_factory=new_id)
    history: list[dict[str, Any]] = field(default_factory=list)
    messages: list[LogMessage] = field(default_factory=list)
    load_ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.history.append({"status": self.status, "date": self.start})

    def set_status(self, status: str) -> None:
        self.status = status
        stamp = now_ms()
        self.history.append({"status": status, "date": stamp})
        if status not in IN_PROGRESS:
            self.end = stamp

    def task(self, task_id: str) -> TaskRun | None:
        return next((t for t in self.tasks if t.task.id == task_id), None)


@dataclass
class Load:
    """One data model load: RUNNING, then SUCCESS, WARNING or ERROR."""

    pool_id: str
    model: DataModel
    load_type: str
    tables: tuple[ModelTable, ...]
    execution_id: str | None = None
    status: str = LOAD_RUNNING
    message: str | None = None
    start: int = field(default_factory=now_ms)
    start_mono: float = field(default_factory=time.monotonic)
    end: int | None = None
    id: str = field(default_factory=new_id)

    def finish(self, status: str, message: str | None) -> None:
        self.status, self.message, self.end = status, message, now_ms()


class Registry:
    """Executions per job and loads per data model (oldest first), and the injected load outcomes."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.executions: dict[tuple[str, str], list[Execution]] = {}
        self.loads: dict[tuple[str, str], list[Load]] = {}
        #: (pool, model) -> [(status, message)] the next loads of that model end with
        self.load_outcomes: dict[tuple[str, str], list[tuple[str, str]]] = {}

    def job_executions(self, pool_id: str, job_id: str) -> list[Execution]:
        return self.executions.setdefault((pool_id, job_id), [])

    def model_loads(self, pool_id: str, model_id: str) -> list[Load]:
        return self.loads.setdefault((pool_id, model_id), [])

    def execution(self, pool_id: str, execution_id: str) -> Execution | None:
        for (pool, _), runs in self.executions.items():
            if pool == pool_id:
                found = next((e for e in runs if e.id == execution_id), None)
                if found is not None:
                    return found
        return None

    def take_outcome(self, pool_id: str, model_id: str) -> tuple[str, str] | None:
        pending = self.load_outcomes.get((pool_id, model_id))
        return pending.pop(0) if pending else None


Record = TypeVar("Record", Execution, Load)


def visible(records: list[Record], lag: float) -> Record | None:
    """What a lagging summary status shows: the newest record, but while it is younger than ``lag`` seconds
    the one before it (None when there is none)."""
    if not records:
        return None
    if time.monotonic() - records[-1].start_mono >= lag:
        return records[-1]
    return records[-2] if len(records) > 1 else None
