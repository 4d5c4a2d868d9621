"""``PushJob``: one Data Push job from creation to its summary, whoever runs it.

create (or adopt after a lost answer) -> upload every chunk (starting over when a lost answer cannot be
decided) -> execute (waiting out the hourly budget) -> wait -> summary; on a retried task, resume the
earlier try's job; after a failure, abandon the job (delete it while NEW, cancel it once submitted).
The operators keep only Airflow's part: templating, deferral, XCom, links, lineage.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from airflow_provider_celonis.datapath.pipeline import (
    CsvPart,
    Part,
    PushReport,
    PushSpec,
    csv_pass_chunks,
    declared_lengths,
    job_spec,
    outgrown,
    parquet_chunks,
    summary_line,
)
from airflow_provider_celonis.datapath.upload import Create, Uploader, Widen
from airflow_provider_celonis.hooks.celonis import ACTIVE_STATUSES, CelonisHook
from airflow_provider_celonis.hooks.errors import (
    CelonisConfigError,
    CelonisNotFoundError,
    CelonisRateLimitError,
    CelonisTimeoutError,
)
from airflow_provider_celonis.task_state import mark_finished, was_finished

STATE_KEY = "celonis_data_push_job"
#: Seconds between execute and the first looks at a job's status, before the hook's own polling.
EARLY_POLLS = (0.1, 0.3, 0.5)
MAYBE_LEFT = "a NEW job may be left behind for Celonis to expire"


class JobState:
    """The job this task instance created, kept across tries in ``task_state_store`` (Airflow >= 3.3)."""

    def __init__(self, store: Any = None) -> None:
        self.store = store

    def load(self) -> dict[str, Any] | None:
        value = self.store.get(STATE_KEY) if self.store is not None else None
        return dict(value) if isinstance(value, dict) and value.get("job_id") else None

    def save(self, value: dict[str, Any]) -> None:
        if self.store is not None:
            self.store.set(STATE_KEY, value)


class PushJob:
    """The lifecycle of one push into ``spec.target_table`` of data pool ``pool``.

    :param state: where the job id survives a retried task (``JobState``).
    :param on_job: called with each job id this push creates or adopts (the operator's ``on_kill``).
    """

    def __init__(
        self,
        hook: CelonisHook,
        pool: str,
        spec: PushSpec,
        log: Any,
        *,
        state: JobState | None = None,
        on_job: Callable[[str], None] | None = None,
        workdir: str | Path | None = None,
    ) -> None:
        self.hook, self.pool, self.spec, self.log = hook, pool, spec, log
        self.state = state or JobState()
        self.on_job = on_job
        self.workdir = workdir
        self.job_id: str | None = None
        #: The pool's job list from ``check_access``, for the first ``create`` (taken once, then listed anew).
        self._jobs_listed: list[dict[str, Any]] | None = None

    # -- before reading the source ------------------------------------------------------------------

    def check_access(self) -> None:
        """One cheap call that needs the key, the secret and the pool: a wrong one fails before conversion.

        The list it returns is the one the first ``create`` compares with after a lost answer, so creating the
        job waits for no list of its own (a round trip before the first byte)."""
        self._jobs_listed = self.hook.list_jobs(self.pool)

    @contextmanager
    def access_checked(self) -> Iterator[None]:
        """``check_access`` on a worker thread while the body takes its first look at the source: over a real
        link its round trip (two with OAuth, the token first) hides behind that look instead of delaying
        the first byte. A wrong key, secret or pool still fails before any conversion or job, and ahead of
        an error of the body (which stays attached as its context)."""
        with ThreadPoolExecutor(1, thread_name_prefix="celonis-access") as worker:
            checked = worker.submit(self.check_access)
            try:
                yield
            except BaseException:
                checked.result()
                raise
            checked.result()

    def resume(self) -> dict[str, Any] | None:
        """On a retry, the earlier try's job instead of pushing the data twice (None: push anew).

        DONE or QUEUED/RUNNING: its summary (finish it, or wait for it). NEW (the worker died
        mid-upload): deleted, push anew. ERROR, CANCELED or gone: push anew, unless the earlier try saw
        it DONE before deleting it (``delete_job_on_success``). A try that returned (``finished``) leaves
        nothing to resume: the task runs again because it was cleared, so it pushes anew. Needs
        ``task_state_store`` (Airflow >= 3.3); on 3.2 every try pushes anew, and an earlier try's NEW job
        is left behind.
        """
        saved = self.state.load()
        if not saved:
            return None
        job_id, pool = str(saved["job_id"]), str(saved["data_pool_id"])
        if was_finished(saved):
            self.log.info("The try that pushed job %s succeeded; the task was cleared: pushing anew", job_id)
            return None
        try:
            status = str(self.hook.get_job(job_id, pool).get("status"))
        except CelonisNotFoundError:
            if saved.get("status") == "DONE":
                self.log.info("Job %s of an earlier try was DONE and is deleted; not pushing again", job_id)
                self.job_id = job_id
                return {**saved, "status": "DONE"}
            self.log.info("Job %s of an earlier try is gone; pushing anew", job_id)
            return None
        if status == "DONE":
            self.log.info("Job %s of an earlier try is already DONE; not pushing again", job_id)
        elif status in ACTIVE_STATUSES:
            self.log.info(
                "Job %s of an earlier try is %s; waiting for it instead of pushing again", job_id, status
            )
        elif status == "NEW":
            self.log.warning(
                "Job %s of an earlier try was never executed; deleting it and pushing anew", job_id
            )
            self.hook.delete_job(job_id, pool)
            return None
        else:
            self.log.info("Job %s of an earlier try ended %s; pushing anew", job_id, status)
            return None
        self.job_id = job_id
        return {**saved, "status": status}

    # -- create -----------------------------------------------------------------------------------

    def create(self, parts: Sequence[Part | CsvPart], lengths: Mapping[str, int] | None = None) -> str:
        """Create the job; after a lost answer adopt one only when it is provably this push's.

        ``lengths``: STRING ``fieldLength`` for measured columns, when created before the source is read.

        Provably: listed after the request and not before it, for this table, NEW, holding no chunk, the
        only such job, and no other job of this table was NEW, QUEUED or RUNNING before the request (no
        other writer). Anything less creates another job: adopting another task's job would mix pushes.
        "Before" is ``check_access``' list for the first job (a job another writer created since shows as a
        second new one, so nothing is adopted), a list taken now for any later one (a start-over).
        """
        table = self.spec.target_table.lower()
        before, self._jobs_listed = self._jobs_listed, None
        if before is None:
            before = self.hook.list_jobs(self.pool)
        known = {j.get("id") for j in before}
        busy = [j for j in before if _target(j) == table and j.get("status") in ("NEW", *ACTIVE_STATUSES)]

        def adopt() -> dict[str, Any] | None:
            fresh = [
                j for j in self.hook.list_jobs(self.pool) if j.get("id") not in known and _target(j) == table
            ]
            if (
                not busy
                and len(fresh) == 1
                and fresh[0].get("status") == "NEW"
                and not self.hook.list_chunks(str(fresh[0]["id"]), self.pool)
            ):
                self.log.warning(
                    "The answer to creating the job was lost or named no job; job %s is this push's",
                    fresh[0]["id"],
                )
                return fresh[0]
            self.log.warning(
                "The answer to creating the job was lost or named no job, and the job list cannot prove which is this "
                "push's (%d new, %d other active for this table): adopting none; %s",
                len(fresh),
                len(busy),
                MAYBE_LEFT,
            )
            return None

        job = self.hook.create_job(data_pool_id=self.pool, adopt=adopt, **job_spec(self.spec, parts, lengths))
        self._adopt(str(job["id"]))
        return str(job["id"])

    def _adopt(self, job_id: str) -> None:
        self.job_id = job_id
        self.state.save({"job_id": job_id, "data_pool_id": self.pool, "target_table": self.spec.target_table})
        if self.on_job is not None:
            self.on_job(job_id)

    def _start_over(self, parts: Sequence[Part | CsvPart]) -> Callable[[str, Mapping[str, int] | None], str]:
        def start_over(job_id: str, lengths: Mapping[str, int] | None) -> str:
            self.hook.delete_job(job_id, self.pool)
            self.log.info("Deleted job %s to start the push over", job_id)
            return self.create(parts, lengths)

        return start_over

    # -- upload -----------------------------------------------------------------------------------

    def push(self, parts: Sequence[Part | CsvPart]) -> PushReport:
        """Write and upload every part; the job exists (NEW, all chunks in) when this returns.

        Each chunk uploads while the next is written (at most two queue), the first ones small
        (``FIRST_CHUNK_BYTES``, growing) so that sending starts early. The job is created on the upload
        thread (``Create``): at once when the STRING lengths are known, else with the first chunk, its
        lengths ``declared_lengths`` of what was read so far; a later longer value starts the job over,
        wider (``_fit``).
        """
        started = time.monotonic()
        report = PushReport(job_id="", data_pool_id=self.pool, target_table=self.spec.target_table)
        parts = self._non_empty(parts, report)
        if report.skipped:
            return report
        measured = next(
            (p for p in parts if isinstance(p, Part) and p.kind == "upserted" and p.plan.measured), None
        )
        workdir = Path(tempfile.mkdtemp(prefix="celonis-push-", dir=self.workdir))
        uploader = Uploader(
            self.hook,
            self.pool,
            self.log,
            2,
            self._start_over(parts),
            create=lambda lengths: self.create(parts, lengths),
        )
        uploader.start()
        declared: dict[str, int] | None = None
        try:
            if measured is None:
                uploader.put(Create(None))
            else:
                self.log.info(
                    "STRING lengths are measured from the data: the job is created with the first chunk, "
                    "with room to spare (a longer value later starts it over, wider)"
                )
            for part in parts:
                chunks = (
                    csv_pass_chunks(part, self.spec)
                    if isinstance(part, CsvPart)
                    else parquet_chunks(part, workdir, self.spec, self.log, uploader.idle)
                )
                for chunk in chunks:
                    if measured is not None:
                        declared = self._fit(uploader, measured, declared)
                    uploader.put(chunk)
                    if part.kind == "upserted":
                        report.rows += chunk.rows
                    else:
                        report.deleted_rows += chunk.rows
            uploader.finish()
        except BaseException:
            uploader.abort()
            raise
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        report.job_id = uploader.job_id
        report.chunks = len(uploader.sent)
        report.bytes = uploader.bytes
        report.seconds = time.monotonic() - started
        report.first_upload_seconds = uploader.first_upload_at - started if uploader.first_upload_at else None
        return report

    @staticmethod
    def _fit(uploader: Uploader, measured: Part, declared: dict[str, int] | None) -> dict[str, int]:
        """Before a chunk is queued: queue the job's creation (first chunk) or a start-over when the data
        read so far (which covers the chunk) is longer than the job declares. Returns the lengths the
        job will have when the chunk is sent.
        """
        longest = dict(measured.plan.lengths)
        if declared is None:
            declared = declared_lengths(longest, measured.plan.measured)
            uploader.put(Create(declared))
        elif grown := outgrown(longest, declared):
            declared = declared_lengths(longest, measured.plan.measured)
            uploader.put(Widen(declared, grown))
        return declared

    def _non_empty(self, parts: Sequence[Part | CsvPart], report: PushReport) -> list[Part | CsvPart]:
        """Drop empty parts; nothing left: DELTA skips, REPLACE empties the table when the schema is known."""
        left = [p for p in parts if not p.empty]
        if left:
            return left
        if self.spec.job_type != "REPLACE":
            self.log.info("The source holds no rows: nothing to push, no job created")
            report.skipped = True
            return []
        part = parts[0]
        if isinstance(part, Part) and not part.source.schema.names:
            raise CelonisConfigError(
                f"source {part.source.description}: every file is empty (no header, no rows), so REPLACE has no "
                "column to empty the table with: give a file with a header, or on_empty='fail'"
            )
        untyped = part.untyped(self.spec.table_schema) if isinstance(part, Part) else list(part.columns)
        if isinstance(part, CsvPart) and self.spec.table_schema:
            untyped = []
        if untyped:
            raise CelonisConfigError(
                f"source has no rows and the type of column(s) {', '.join(map(repr, untyped))} is unknown, so "
                "REPLACE cannot empty the table: give those columns in table_schema, or on_empty='fail'"
            )
        if isinstance(part, CsvPart):
            raise CelonisConfigError("source has no rows: REPLACE with file_type='CSV' needs a data row")
        self.log.info("The source holds no rows: replacing %s with an empty table", self.spec.target_table)
        return [part]

    # -- execute and wait -------------------------------------------------------------------------

    def execute(
        self,
        duplicate_removal_column: str | None = None,
        on_quota: Callable[[CelonisRateLimitError], None] | None = None,
    ) -> None:
        """Submit the job; when the team's hourly budget is spent, wait for the window instead of failing.

        ``on_quota`` may defer the task (the operator's deferral raises); otherwise this sleeps.
        """
        assert self.job_id
        while True:
            try:
                self.hook.execute_job(self.job_id, self.pool, duplicate_removal_column)
                return
            except CelonisRateLimitError as exc:
                self.log.warning(
                    "Celonis' execute budget is spent; job %s will be executed at %s (in %.0fs)",
                    self.job_id,
                    exc.resume_at.isoformat(),
                    exc.retry_after,
                )
                if on_quota is not None:
                    on_quota(exc)
                time.sleep(max(exc.retry_after, 1.0))

    def wait(self, poll_interval: float, timeout: float | None) -> str:
        """Poll until DONE (returns the status); a job still running at the timeout is cancelled.

        A small job is often done within a second: it is looked at after ``EARLY_POLLS`` first (about as
        pycelonis does), then the hook polls from 1 s up to ``poll_interval``.
        """
        assert self.job_id
        started = time.monotonic()
        for delay in EARLY_POLLS:
            if delay > poll_interval or (
                timeout is not None and time.monotonic() + delay - started > timeout
            ):
                break
            time.sleep(delay)
            if self.hook.get_job(self.job_id, self.pool).get("status") not in ACTIVE_STATUSES:
                break  # DONE, or a failure the hook's loop reports with the job's logs
        if timeout is not None:
            timeout = max(timeout - (time.monotonic() - started), 0.0)
        try:
            job = self.hook.wait_for_job(self.job_id, self.pool, poll_interval, timeout)
        except CelonisTimeoutError as exc:
            self.hook.cancel_job(self.job_id, self.pool)
            raise CelonisTimeoutError(f"{exc}; cancelled the job") from None
        return str(job.get("status"))

    def finish(self, push: dict[str, Any], status: str, delete_job: bool = False) -> dict[str, Any]:
        """The summary with the final status; the job deleted when asked (its chunks are no longer needed).

        The status is saved before the delete: a try that fails after it (the delete's answer lost, the
        worker gone) leaves a retry that knows the data landed, though the job is gone.
        """
        push["status"] = status
        if delete_job and push.get("job_id"):
            self.state.save(push)
            try:
                self.hook.delete_job(str(push["job_id"]), str(push["data_pool_id"]))
            except CelonisNotFoundError:  # deleted by an earlier try that saw it DONE
                self.log.info("Job %s is already deleted", push["job_id"])
        self.log.info(summary_line(push, status))
        self.finished()
        return push

    def finished(self) -> None:
        """The try is returning: a later run of this task instance is a cleared task, not a retry."""
        mark_finished(self.state.store, STATE_KEY)

    def start_afresh(self) -> None:
        """Before pushing again from the start (a widened column): no job of the earlier attempt stays."""
        self.abandon()
        self.job_id = None

    def abandon(self) -> None:
        """After a failure: leave no NEW job behind (delete it), and stop one already submitted."""
        if not self.job_id:
            return
        try:
            status = self.hook.get_job(self.job_id, self.pool).get("status")
            if status == "NEW":
                self.hook.delete_job(self.job_id, self.pool)
                self.log.info("Deleted the unexecuted job %s after the failure", self.job_id)
            elif status in ACTIVE_STATUSES:
                self.hook.cancel_job(self.job_id, self.pool)
                self.log.info("Cancelled job %s after the failure", self.job_id)
        except Exception as exc:  # noqa: BLE001 - the original failure matters more than the clean-up's
            self.log.warning("Could not clean up job %s after the failure: %s", self.job_id, exc)


def _target(job: dict[str, Any]) -> str:
    return str(job.get("targetName", "")).lower()
