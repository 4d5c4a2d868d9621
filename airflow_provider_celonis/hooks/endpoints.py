"""Every Celonis call the hooks make, and what each may do after an ambiguous failure (``on_ambiguous``).

``http_policy.decide`` reads this table; nothing else decides whether a call may be sent twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AmbiguousRule = Literal["retry", "reconcile"]


@dataclass(frozen=True)
class Endpoint:
    """One Celonis call: how to reach it, whether its answer is read, and what an ambiguous failure allows.

    ``reads_answer`` is False where the docs promise "No Content": such answers are never parsed, so a
    body, an empty answer or a text answer all mean the same.
    """

    name: str
    method: str
    path: str  # Data Push: relative to ``{base}/v1/data-push/{pool}/``; Integration: to ``/integration/api/``
    on_ambiguous: AmbiguousRule
    why: str
    reads_answer: bool = True
    api: Literal["data_push", "integration"] = "data_push"


def _read(name: str, path: str) -> Endpoint:
    return Endpoint(name, "GET", path, "retry", "a read", api="integration")


#: The Integration API (data jobs, data model loads, pool tables), as pycelonis calls it. Execute and the
#: two loads are not idempotent: a lost answer is reconciled from the status, never sent twice blindly.
INTEGRATION_ENDPOINTS = (
    _read("list_data_jobs", "pools/{pool}/jobs"),
    _read("list_data_job_tasks", "pools/{pool}/jobs/{job_id}/tasks/"),
    _read("list_data_job_loads", "pools/{pool}/jobs/{job_id}/loads"),
    _read("data_job_statuses", "pools/{pool}/logs/status"),
    _read("data_job_executions", "pools/{pool}/logs/{job_id}/executions"),
    _read("task_executions", "pools/{pool}/logs/executions"),
    _read("execution_log", "pools/{pool}/logs/executions/detail"),
    _read("list_data_models", "pools/{pool}/data-models"),
    _read("list_data_model_tables", "pools/{pool}/data-model/{model_id}/tables"),
    _read("data_model_load_info", "pools/{pool}/data-models/{model_id}/load-history/load-info-sync"),
    _read("list_pool_tables", "pools/{pool}/tables"),
    _read("list_pool_columns", "pools/{pool}/columns"),
    Endpoint(
        "execute_data_job",
        "POST",
        "pools/{pool}/jobs/{job_id}/execute",
        "reconcile",
        "a lost answer may hide a started execution: the hook reads the job's status (logs/status) until it "
        "shows an execution newer than the one before, for a grace period, and sends again only if none shows",
        False,
        "integration",
    ),
    Endpoint(
        "cancel_data_job",
        "POST",
        "pools/{pool}/jobs/{job_id}/cancel",
        "retry",
        "cancelling twice leaves the same state",
        False,
        "integration",
    ),
    Endpoint(
        "reload_data_model",
        "POST",
        "pools/{pool}/data-models/{model_id}/reload",
        "reconcile",
        "a lost answer may hide a started load: the hook reads the current load (load-info-sync) until it "
        "shows a load other than the one before, for a grace period, and sends again only if none shows",
        False,
        "integration",
    ),
    Endpoint(
        "partial_load_data_model",
        "POST",
        "v1/data-pools/{pool}/data-models/{model_id}/load/partial-sync",
        "reconcile",
        "as reload_data_model: a new current load means the partial load started",
        False,
        "integration",
    ),
)

ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        Endpoint("list_jobs", "GET", "jobs/", "retry", "a read"),
        Endpoint("get_job", "GET", "jobs/{job_id}", "retry", "a read"),
        Endpoint("list_chunks", "GET", "jobs/{job_id}/chunks", "retry", "a read"),
        Endpoint(
            "delete_job",
            "DELETE",
            "jobs/{job_id}",
            "reconcile",
            "a delete that took effect answers a resend with 404: a lost answer is settled by looking",
            False,
        ),
        Endpoint(
            "cancel_job",
            "POST",
            "jobs/{job_id}/cancel",
            "retry",
            "cancelling twice leaves the same state; a refusal on the retry is read as 'already terminal'",
            False,
        ),
        Endpoint(
            "create_job",
            "POST",
            "jobs/",
            "reconcile",
            "a lost answer may hide a created job: the hook lists the pool's jobs and adopts the new NEW job "
            "for this target instead of creating a second one",
        ),
        Endpoint(
            "execute_job",
            "POST",
            "jobs/{job_id}",
            "reconcile",
            "a lost answer may hide an accepted execute: the hook reads the job and treats any status past "
            "NEW as done (a second execute would only get 409 and spend hourly quota)",
            False,
        ),
        Endpoint(
            "upload_chunk",
            "POST",
            "jobs/{job_id}/chunks/{kind}",
            "reconcile",
            "a lost answer may hide a stored chunk: the job has one writer, so the hook lists its chunks "
            "again: one new chunk means stored, an unchanged list means send again, anything else is "
            "undecidable (ChunkUploadUndecided)",
            False,
        ),
        Endpoint("oauth_token", "POST", "", "retry", "asking for a token twice only yields two tokens"),
        *INTEGRATION_ENDPOINTS,
    )
}
