"""Was a chunk stored when its upload's answer was lost? Decided from the job's chunk list alone."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_celonis.hooks.errors import ChunkUploadUndecided
from airflow_provider_celonis.hooks.reconcile import chunk_upload_stored


def chunks(*ids: str | None, checksum: Any = None) -> list[dict[str, Any]]:
    out = []
    for i in ids:
        chunk: dict[str, Any] = {"type": "UPSERT", "pushJobId": "j"}
        if i is not None:
            chunk["id"] = i
        if checksum is not None:
            chunk["checksum"] = checksum
        out.append(chunk)
    return out


@pytest.mark.parametrize("checksum", [None, "d41d8cd98f00b204e9800998ecf8427e", "a" * 64, "opaque:42"])
def test_one_new_chunk_means_stored_whatever_the_checksum(checksum: Any) -> None:
    before = chunks("c1", "c2", checksum=checksum)
    after = chunks("c1", "c2", "c3", checksum=checksum)
    assert chunk_upload_stored("j", before, after) == after[2]


def test_unchanged_list_means_not_stored() -> None:
    assert chunk_upload_stored("j", chunks("c1"), chunks("c1")) is None
    assert chunk_upload_stored("j", [], []) is None


def test_listing_without_ids_counts_records() -> None:
    """The docs' DataPushChunk has only pushJobId and type: the count still decides."""
    assert chunk_upload_stored("j", chunks(None), chunks(None, None)) == chunks(None)[0]
    assert chunk_upload_stored("j", chunks(None, None), chunks(None, None)) is None


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (chunks("c1"), chunks("c1", "c2", "c3")),  # two new: not this writer alone
        (chunks("c1", "c2"), chunks("c1", "c3")),  # one replaced
        (chunks("c1", "c2"), chunks("c1")),  # one gone
    ],
)
def test_anything_else_is_undecided(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> None:
    with pytest.raises(ChunkUploadUndecided, match="started over"):
        chunk_upload_stored("j", before, after)


def test_a_count_decides_as_the_list_would() -> None:
    """A push counts its confirmed uploads instead of listing the job before each one."""
    assert chunk_upload_stored("j", 2, chunks("c1", "c2", "c3")) == {}
    assert chunk_upload_stored("j", 0, chunks(None)) == {}
    assert chunk_upload_stored("j", 2, chunks("c1", "c2")) is None
    assert chunk_upload_stored("j", 0, []) is None


@pytest.mark.parametrize(("before", "after"), [(1, chunks("c1", "c2", "c3")), (2, chunks("c1")), (1, [])])
def test_any_other_count_is_undecided(before: int, after: list[dict[str, Any]]) -> None:
    with pytest.raises(ChunkUploadUndecided, match=rf"from {before} to {len(after)} chunk\(s\): cannot tell"):
        chunk_upload_stored("j", before, after)
