"""Chunk uploads stream to disk and are cut off at --max-chunk-bytes."""

from __future__ import annotations

from collections.abc import Iterator

import psutil
import pytest

from airflow_provider_celonis.emulator.testing import running_emulator
from tests.emulator.api_client import Api

MIB = 1024 * 1024


def multipart_stream(total: int, boundary: str = "xyzBOUNDARY") -> Iterator[bytes]:
    yield f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big"\r\n\r\n'.encode()
    block = b"\0" * MIB
    for _ in range(total // MIB):
        yield block
    yield f"\r\n--{boundary}--\r\n".encode()


@pytest.mark.slow
def test_oversized_chunk_is_413_without_memory_growth() -> None:
    with running_emulator(max_chunk_bytes=10 * MIB) as emu:
        api = Api(emu)
        job = api.create()
        process = psutil.Process()
        before = process.memory_info().rss
        r = api.session.post(
            f"{api.base}{job['id']}/chunks/upserted",
            data=multipart_stream(200 * MIB),
            headers={"Content-Type": "multipart/form-data; boundary=xyzBOUNDARY"},
        )
        grown = process.memory_info().rss - before
        assert r.status_code == 413
        assert set(r.json()) == {"reference", "message", "shortMessage"}
        assert grown < 40 * MIB, f"RSS grew by {grown / MIB:.0f} MiB for a 200 MiB body"
        assert api.session.get(f"{api.base}{job['id']}/chunks").json() == []
        assert list((emu.data_dir / "uploads").iterdir()) == []


def test_content_length_over_limit_is_413_up_front() -> None:
    with running_emulator(max_chunk_bytes="1MB") as emu:
        api = Api(emu)
        job = api.create()
        r = api.upload(job["id"], b"x" * (2 * MIB))
        assert r.status_code == 413


def test_chunk_at_the_limit_is_accepted() -> None:
    with running_emulator(max_chunk_bytes=1000) as emu:
        api = Api(emu)
        job = api.create()
        assert api.upload(job["id"], b"x" * 1000).status_code == 200
        assert api.upload(job["id"], b"x" * 1001).status_code == 413
