"""Exceptions raised by the Celonis hooks.

Every API failure names the HTTP status, the call and Celonis' own message so that a failed task's log
says what to fix without a trip to the network tab. Credentials never reach these texts: the URLs we
build hold no secrets and the request headers are never formatted into a message.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk.exceptions import AirflowException


class CelonisError(AirflowException):
    """Base class of every error this provider raises on purpose."""


class CelonisConfigError(CelonisError, ValueError):
    """The connection or an operator parameter is wrong; nothing was sent to Celonis."""


class CelonisApiError(CelonisError):
    """Celonis answered with an HTTP error (or no usable answer at all)."""

    def __init__(self, call: str, status: int | None, message: str) -> None:
        self.call = call
        self.status = status
        self.api_message = message
        where = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"Celonis {call} failed ({where}): {message}")


class CelonisAuthError(CelonisApiError):
    """401 or 403: the key, secret or token is wrong, expired or not allowed on this pool."""


class CelonisNotFoundError(CelonisApiError):
    """404: unknown data pool or job."""


class CelonisConflictError(CelonisApiError):
    """409: the job is not in a state that allows the call (e.g. executing a job that is not NEW)."""


class CelonisRateLimitError(CelonisApiError):
    """429 that outlasts what the hook will wait for inline (typically the team's hourly execute budget).

    ``resume_at`` is when the window reopens: the operator defers or sleeps until then instead of failing.
    """

    def __init__(self, call: str, message: str, retry_after: float, resume_at: datetime) -> None:
        self.retry_after = retry_after
        self.resume_at = resume_at
        super().__init__(call, 429, f"{message} (retry after {retry_after:.0f}s, at {resume_at.isoformat()})")


class CelonisJobFailedError(CelonisError):
    """The job ended in ERROR or CANCELED; the message carries Celonis' job logs."""

    def __init__(self, job_id: str, status: str, logs: list[str]) -> None:
        self.job_id = job_id
        self.status = status
        self.logs = logs
        detail = "; ".join(logs[-20:]) if logs else "no logs"
        super().__init__(f"Celonis data push job {job_id} ended {status}: {detail}")


class CelonisDataJobFailedError(CelonisError):
    """A data job execution ended FAIL, CANCEL or SKIPPED; the message carries the failed tasks' log messages."""

    def __init__(self, job_id: str, status: str, messages: list[str]) -> None:
        self.job_id = job_id
        self.status = status
        self.messages = messages
        detail = "; ".join(messages[-20:]) if messages else "no log messages"
        super().__init__(f"Celonis data job {job_id} ended {status}: {detail}")


class CelonisDataModelLoadError(CelonisError):
    """A data model load ended ERROR or CANCELED (or could not be followed); the message is Celonis' own."""

    def __init__(self, model_id: str, status: str, message: str) -> None:
        self.model_id = model_id
        self.status = status
        super().__init__(f"Celonis data model {model_id} load ended {status}: {message or 'no message'}")


class CelonisTimeoutError(CelonisError):
    """A wait for a job outlived its deadline."""


class ChunkUploadUndecided(CelonisError):
    """A chunk upload's answer was lost and the job's chunk list cannot tell whether it was stored."""
