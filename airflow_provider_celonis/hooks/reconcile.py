"""Deciding whether a call whose answer was lost took effect, from what Celonis lists afterwards."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_celonis.hooks.errors import ChunkUploadUndecided


def _identity(chunk: Mapping[str, Any]) -> str:
    """A chunk's id when the listing has one, else the whole record (the docs promise no id)."""
    if chunk.get("id") not in (None, ""):
        return f"id:{chunk['id']}"
    return "record:" + json.dumps(chunk, sort_keys=True, default=str)


def chunk_upload_stored(
    job_id: str, before: int | Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]
) -> dict[str, Any] | None:
    """Was the upload stored? ``before``: the job's chunk list before an upload whose answer was lost, or
    how many chunks it held; ``after``: its list now.

    A job has one writer (this task), so: one more chunk means stored, and the same count (and, given a
    list, the same records) means not stored (None: send again); anything else cannot be decided and raises
    ``ChunkUploadUndecided``. Returns the new chunk's record when it can be told apart (a list was given),
    else ``{}``. No checksum is read: its algorithm is not documented.
    """
    if isinstance(before, int):
        if len(after) == before:
            return None
        if len(after) == before + 1:
            return {}
        raise _undecided(job_id, before, len(after), "")
    old, new = Counter(map(_identity, before)), Counter(map(_identity, after))
    if old == new:
        return None
    added, removed = new - old, old - new
    if not removed and sum(added.values()) == 1 and len(after) == len(before) + 1:
        (key,) = added
        return dict(next(chunk for chunk in after if _identity(chunk) == key))
    detail = f" ({sum(added.values())} new, {sum(removed.values())} gone)"
    raise _undecided(job_id, len(before), len(after), detail)


def _undecided(job_id: str, before: int, after: int, detail: str) -> ChunkUploadUndecided:
    return ChunkUploadUndecided(
        f"The answer to a chunk upload of job {job_id} was lost and its chunk list went from "
        f"{before} to {after} chunk(s){detail}: cannot tell whether the chunk was stored, so the job must be "
        "started over"
    )
