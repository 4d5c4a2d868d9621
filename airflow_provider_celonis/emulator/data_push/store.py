"""Persistence of jobs and chunk metadata (SQLite) and chunk files (plain files) under ``--data-dir``.

SQLite keeps every state change durable at once, so a restart finds jobs exactly as they were.
All access goes through one lock: requests, the worker and inspection all touch it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .models import JobStatus, now_iso

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, pool_id TEXT NOT NULL, seq INTEGER NOT NULL, status TEXT NOT NULL,
    doc TEXT NOT NULL, dedup_column TEXT, queued_seq INTEGER
);
CREATE TABLE IF NOT EXISTS chunks (
    id TEXT PRIMARY KEY, job_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,
    checksum TEXT NOT NULL, creation_date TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_job ON chunks(job_id, seq);
"""


class Store:
    """Jobs, chunks and their files; every method is thread-safe."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.chunk_root = data_dir / "chunks"
        self.upload_dir = data_dir / "uploads"
        self.chunk_root.mkdir(parents=True, exist_ok=True)
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.upload_dir.iterdir():  # half-received uploads of a previous run
            leftover.unlink(missing_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            data_dir / "emulator.sqlite", check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _next_seq(self, table: str, where: str = "", args: Iterable[Any] = ()) -> int:
        row = self._db.execute(
            f"SELECT COALESCE(MAX(seq), 0) + 1 FROM {table} {where}", tuple(args)
        ).fetchone()
        return int(row[0])

    # jobs -------------------------------------------------------------------------------------------
    def add_job(self, job: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs (id, pool_id, seq, status, doc) VALUES (?, ?, ?, ?, ?)",
                (job["id"], job["dataPoolId"], self._next_seq("jobs"), job["status"], json.dumps(job)),
            )

    def get_job(self, job_id: str, pool_id: str | None = None) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT doc, pool_id FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None or (pool_id is not None and row[1] != pool_id):
            return None
        return dict(json.loads(row[0]))

    def list_jobs(self, pool_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            if pool_id is None:
                rows = self._db.execute("SELECT doc FROM jobs ORDER BY seq").fetchall()
            else:
                sql = "SELECT doc FROM jobs WHERE pool_id = ? ORDER BY seq"
                rows = self._db.execute(sql, (pool_id,)).fetchall()
        return [dict(json.loads(r[0])) for r in rows]

    def dedup_column(self, job_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT dedup_column FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else row[0]

    def transition(
        self,
        job_id: str,
        allowed_from: Iterable[JobStatus],
        to: JobStatus,
        *,
        log: str | None = None,
        dedup_column: str | None = None,
        ping: bool = False,
    ) -> dict[str, Any] | None:
        """Atomically move a job to ``to`` if it is in one of ``allowed_from``; None if it was not."""
        allowed = {s.value for s in allowed_from}
        with self._lock:
            job = self.get_job(job_id)
            if job is None or job["status"] not in allowed:
                return None
            stamp = now_iso()
            job["status"] = to.value
            job["lastModified"] = stamp
            job["changeDate"] = stamp
            if ping:
                job["lastPing"] = stamp
            if log:
                job["logs"].append(log)
            queued = to is JobStatus.QUEUED
            self._db.execute(
                "UPDATE jobs SET status = ?, doc = ?, dedup_column = CASE WHEN ? THEN ? ELSE dedup_column END, "
                "queued_seq = CASE WHEN ? THEN (SELECT COALESCE(MAX(queued_seq), 0) + 1 FROM jobs) "
                "ELSE queued_seq END WHERE id = ?",
                (to.value, json.dumps(job), queued, dedup_column, queued, job_id),
            )
            return job

    def job_ids_with_status(self, statuses: Iterable[JobStatus]) -> list[str]:
        """Jobs in the given states, in the order they were queued (for re-queueing after a restart)."""
        values = [s.value for s in statuses]
        marks = ",".join("?" * len(values))
        with self._lock:
            rows = self._db.execute(
                f"SELECT id FROM jobs WHERE status IN ({marks}) ORDER BY queued_seq, seq", values
            ).fetchall()
        return [r[0] for r in rows]

    def status_counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        return {str(s): int(n) for s, n in rows}

    def delete_job(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM chunks WHERE job_id = ?", (job_id,))
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        shutil.rmtree(self.chunk_root / job_id, ignore_errors=True)

    # chunks -----------------------------------------------------------------------------------------
    def add_chunk(
        self,
        job_id: str,
        chunk: dict[str, Any],
        upload: Path,
        size: int,
        still_open: Callable[[dict[str, Any]], bool],
    ) -> bool:
        """Move a received upload into place and record it, unless the job left NEW meanwhile."""
        with self._lock:
            job = self.get_job(job_id)
            if job is None or not still_open(job):
                return False
            target_dir = self.chunk_root / job_id
            target_dir.mkdir(parents=True, exist_ok=True)
            target = target_dir / chunk["id"]
            upload.replace(target)
            seq = self._next_seq("chunks", "WHERE job_id = ?", (job_id,))
            self._db.execute(
                "INSERT INTO chunks (id, job_id, seq, type, checksum, creation_date, path, size) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    chunk["id"],
                    job_id,
                    seq,
                    chunk["type"],
                    chunk["checksum"],
                    chunk["creationDate"],
                    str(target),
                    size,
                ),
            )
            return True

    def list_chunks(self, job_id: str) -> list[dict[str, Any]]:
        """Chunks in upload order, with the private ``path`` and ``size`` the worker needs."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, creation_date, type, checksum, path, size FROM chunks WHERE job_id = ? ORDER BY seq",
                (job_id,),
            ).fetchall()
        return [
            {
                "id": r[0],
                "creationDate": r[1],
                "type": r[2],
                "pushJobId": job_id,
                "checksum": r[3],
                "path": r[4],
                "size": r[5],
            }
            for r in rows
        ]


def public_chunk(chunk: dict[str, Any]) -> dict[str, Any]:
    """A chunk as the API shows it (without our file path and size)."""
    return {k: chunk[k] for k in ("id", "creationDate", "type", "pushJobId", "checksum")}
