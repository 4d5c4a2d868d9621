"""The push pipeline: validate, write chunks, upload them while the next one is written.

One thread reads the source and writes chunk files; one uploader thread streams finished chunks over the
hook's keep-alive session, in order. A bounded queue between them keeps at most a couple of chunks on
disk. The job is created as late as possible: before writing when the table schema is already known,
after writing when STRING lengths must be measured from the data (the schema is fixed at creation). In
both cases nothing is created until the sources have been opened and their schemas checked.
"""

from __future__ import annotations

import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pyarrow as pa

from airflow_provider_celonis.datapath.chunks import ChunkFile, ParquetChunker
from airflow_provider_celonis.datapath.schema import SchemaPlan, check_keys_not_null, conform, plan_schema
from airflow_provider_celonis.datapath.sources import BatchSource, expand_paths
from airflow_provider_celonis.hooks.celonis import CelonisHook, ChunkKind, UploadableChunk
from airflow_provider_celonis.hooks.errors import CelonisConfigError

MAX_CHUNK_BYTES = 1 << 30
MIN_CHUNK_BYTES = 64 << 10
DEFAULT_CHUNK_BYTES = 128 << 20


def check_chunk_size(chunk_size_bytes: int) -> int:
    size = int(chunk_size_bytes)
    if size > MAX_CHUNK_BYTES:
        raise CelonisConfigError(
            f"chunk_size_bytes={size} is over Celonis' limit of 1 GiB ({MAX_CHUNK_BYTES} bytes) per chunk"
        )
    if size < MIN_CHUNK_BYTES:
        raise CelonisConfigError(f"chunk_size_bytes={size} is below the minimum of {MIN_CHUNK_BYTES} bytes")
    return size


@dataclass
class PushSpec:
    """What the job should do, in the operator's terms."""

    target_table: str
    job_type: str = "DELTA"
    keys: Sequence[str] = ()
    file_type: str = "PARQUET"
    table_schema: Sequence[Mapping[str, Any]] | None = None
    csv_parsing_options: Mapping[str, Any] | None = None
    connection_id: str | None = None
    upsert_strategy: str | None = None
    fallback_varchar_length: int | None = None
    chunk_size_bytes: int = DEFAULT_CHUNK_BYTES


@dataclass
class PushReport:
    job_id: str
    data_pool_id: str
    target_table: str
    chunks: int = 0
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    chunk_ids: list[str] = field(default_factory=list)

    def as_xcom(self, status: str) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "data_pool_id": self.data_pool_id,
            "target_table": self.target_table,
            "status": status,
            "chunks": self.chunks,
            "rows": self.rows,
            "bytes": self.bytes,
        }


@dataclass
class _Part:
    """One stream to push: upserted or deleted rows, its plan, and an iterator already past validation."""

    kind: str
    source: BatchSource
    plan: SchemaPlan
    batches: Iterator[pa.RecordBatch]


@dataclass
class _CsvPart:
    """CSV files sent as they are (``file_type="CSV"``), split at record boundaries."""

    kind: str
    paths: list[str]
    columns: list[str]


class _Uploader(threading.Thread):
    """Uploads chunks in order once the job id is known; the first error stops it and is re-raised."""

    def __init__(self, hook: CelonisHook, pool: str, log: Any, bound: int) -> None:
        super().__init__(name="celonis-chunk-uploader", daemon=True)
        self.hook, self.pool, self.log = hook, pool, log
        self.queue: queue.Queue[tuple[UploadableChunk, str, int | None, int, bool] | None] = queue.Queue(
            bound
        )
        self.job_ready = threading.Event()
        self.job_id = ""
        self.error: BaseException | None = None
        self.chunk_ids: list[str] = []
        self.bytes = 0

    def run(self) -> None:
        try:
            self.job_ready.wait()
            while (item := self.queue.get()) is not None:
                chunk, kind, rows, size, remove = item
                if self.error is None:
                    self._upload(chunk, kind, rows, size)
                if remove and isinstance(chunk, ChunkFile):
                    chunk.path.unlink(missing_ok=True)
        except BaseException as exc:
            self.error = exc
            self._drain()

    def _upload(self, chunk: UploadableChunk, kind: str, rows: int | None, size: int) -> None:
        started = time.monotonic()
        answer = self.hook.upload_chunk(
            self.job_id,
            chunk,
            cast(ChunkKind, kind),
            self.pool,
            known_chunk_ids=self.chunk_ids,
        )
        elapsed = max(time.monotonic() - started, 1e-6)
        self.chunk_ids.append(str(answer.get("id", "")))
        self.bytes += size
        self.log.info(
            "Uploaded %s chunk %d (%s rows, %.1f MB) in %.2fs: %.1f MB/s",
            kind,
            len(self.chunk_ids),
            f"{rows:,}" if rows is not None else "?",
            size / 1e6,
            elapsed,
            size / 1e6 / elapsed,
        )

    def _drain(self) -> None:
        while True:
            try:
                item = self.queue.get(timeout=0.05)
            except queue.Empty:
                if not self.is_alive():
                    return
                continue
            if item is None:
                return
            if isinstance(item[0], ChunkFile):
                item[0].path.unlink(missing_ok=True)

    def put(self, item: tuple[UploadableChunk, str, int | None, int, bool]) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue


class DataPusher:
    """Runs create -> upload for one push. The caller executes and waits (sync or deferred)."""

    def __init__(
        self,
        hook: CelonisHook,
        data_pool_id: str,
        spec: PushSpec,
        log: Any,
        on_job_created: Callable[[str], None] | None = None,
        workdir: str | Path | None = None,
    ) -> None:
        self.hook = hook
        self.pool = data_pool_id
        self.spec = spec
        self.log = log
        self.on_job_created = on_job_created
        self.workdir = workdir
        self.job_id: str | None = None
        self.spec.chunk_size_bytes = check_chunk_size(spec.chunk_size_bytes)

    # -- validation (nothing is created before this passes) -------------------------------------

    def _check_sources(self, upserted: Any, deleted: Any) -> None:
        spec = self.spec
        if upserted is None and deleted is None:
            raise CelonisConfigError("Give source (rows to upsert), deleted_source (rows to delete), or both")
        if deleted is not None and not spec.keys:
            raise CelonisConfigError("deleted_source needs keys: Celonis deletes rows by key")
        if spec.job_type.upper() == "REPLACE" and deleted is not None:
            raise CelonisConfigError(
                "deleted_source makes no sense with job_type REPLACE (the table is replaced)"
            )

    def prepare_csv(self, upserted: Any, deleted: Any) -> list[_CsvPart]:
        """CSV pass-through: check every file's header (keys present) without parsing values."""
        self._check_sources(upserted, deleted)
        options = dict(self.spec.csv_parsing_options or {})
        parts = []
        for kind, source in (("upserted", upserted), ("deleted", deleted)):
            if source is None:
                continue
            what = "source" if kind == "upserted" else "deleted_source"
            paths = [str(p) for p in expand_paths(source, what)]
            columns: list[str] = []
            for path in paths:
                columns = csv_header(path, options, what)
                present = {c.lower() for c in columns}
                missing = [k for k in self.spec.keys if k.lower() not in present]
                if missing:
                    raise CelonisConfigError(
                        f"{what}: {path} has no key column(s) {', '.join(map(repr, missing))}; header is {columns}"
                    )
            parts.append(_CsvPart(kind, paths, columns))
        CelonisHook.job_body(data_pool_id=self.pool, **self._csv_job_spec())
        return parts

    def _csv_job_spec(self) -> dict[str, Any]:
        return self._job_body("CSV", list(self.spec.keys), self.spec.table_schema)

    def _job_body(
        self, file_type: str, keys: list[str], table_schema: Sequence[Mapping[str, Any]] | None
    ) -> dict[str, Any]:
        """Keyword arguments of ``CelonisHook.create_job`` for this push."""
        spec = self.spec
        return {
            "target_table": spec.target_table,
            "job_type": spec.job_type,
            "file_type": file_type,
            "keys": keys,
            "table_schema": table_schema,
            "csv_parsing_options": spec.csv_parsing_options,
            "connection_id": spec.connection_id,
            "upsert_strategy": spec.upsert_strategy,
            "fallback_varchar_length": spec.fallback_varchar_length,
        }

    def run_csv(self, parts: Sequence[_CsvPart]) -> PushReport:
        """Create the job, then stream each file's chunks (byte ranges of the file, no copies)."""
        from airflow_provider_celonis.datapath.csv_split import split_csv

        started = time.monotonic()
        options = dict(self.spec.csv_parsing_options or {})
        quote = str(options.get("quoteSequence") or '"').encode()
        escape = str(options["escapeSequence"]).encode() if options.get("escapeSequence") else None
        line_ending = _line_ending(options.get("lineEnding"))
        uploader = _Uploader(self.hook, self.pool, self.log, bound=2)
        uploader.start()
        report = PushReport(job_id="", data_pool_id=self.pool, target_table=self.spec.target_table)
        try:
            job = self.hook.create_job(data_pool_id=self.pool, **self._csv_job_spec())
            self._adopt(str(job["id"]), uploader)
            for part in parts:
                for path in part.paths:
                    try:
                        for chunk in split_csv(
                            path,
                            self.spec.chunk_size_bytes,
                            quote=quote,
                            escape=escape,
                            line_ending=line_ending,
                        ):
                            uploader.put((chunk, part.kind, chunk.records, chunk.size, False))
                    except ValueError as exc:
                        raise CelonisConfigError(f"source: {exc}") from exc
            self._finish_upload(uploader)
        except BaseException:
            self._abort_upload(uploader)
            raise
        return self._report(report, uploader, started)

    @staticmethod
    def _finish_upload(uploader: _Uploader) -> None:
        uploader.queue.put(None)
        uploader.join()
        if uploader.error is not None:
            raise uploader.error

    @staticmethod
    def _abort_upload(uploader: _Uploader) -> None:
        uploader.error = uploader.error or RuntimeError("push aborted")
        uploader.job_ready.set()
        uploader.queue.put(None)
        uploader.join()

    def prepare(self, upserted: BatchSource | None, deleted: BatchSource | None) -> list[_Part]:
        spec = self.spec
        self._check_sources(upserted, deleted)
        parts = []
        for kind, source in (("upserted", upserted), ("deleted", deleted)):
            if source is None:
                continue
            what = "source" if kind == "upserted" else "deleted_source"
            plan = plan_schema(
                source.schema,
                keys=spec.keys,
                table_schema=spec.table_schema if kind == "upserted" else None,
                fallback_varchar_length=spec.fallback_varchar_length if kind == "upserted" else 1,
                what=what,
            )
            for note in plan.notes:
                self.log.warning(note)
            batches = source.batches()
            first = self._first_rows(batches, what, source)
            parts.append(_Part(kind, source, plan, _chain(first, batches)))
        # Validates the job body (job_type, file_type, upsert strategy) before anything is sent.
        CelonisHook.job_body(data_pool_id=self.pool, **self._job_spec(parts))
        return parts

    @staticmethod
    def _first_rows(batches: Iterator[pa.RecordBatch], what: str, source: BatchSource) -> pa.RecordBatch:
        for batch in batches:
            if batch.num_rows:
                return batch
        raise CelonisConfigError(f"{what} {source.description} has no rows; nothing to push")

    def _job_spec(self, parts: Sequence[_Part]) -> dict[str, Any]:
        upserted = next((p for p in parts if p.kind == "upserted"), None)
        keys = list(upserted.plan.keys if upserted else self.spec.keys)
        return self._job_body(self.spec.file_type, keys, upserted.plan.table_schema() if upserted else None)

    # -- the push ---------------------------------------------------------------------------------

    def run(self, parts: Sequence[_Part]) -> PushReport:
        """Write and upload every part; the job exists (NEW, all chunks in) when this returns."""
        started = time.monotonic()
        late_create = any(p.plan.measured for p in parts)
        workdir = Path(tempfile.mkdtemp(prefix="celonis-push-", dir=self.workdir))
        # Late creation spools every chunk before the upload starts: chunks then queue on disk.
        uploader = _Uploader(self.hook, self.pool, self.log, bound=0 if late_create else 2)
        uploader.start()
        report = PushReport(job_id="", data_pool_id=self.pool, target_table=self.spec.target_table)
        try:
            if not late_create:
                self._create(parts, uploader)
            else:
                self.log.info("Measuring STRING lengths while writing chunks; the job is created afterwards")
            for part in parts:
                self._write(part, workdir, uploader, report)
            if late_create:
                self._create(parts, uploader)
            self._finish_upload(uploader)
        except BaseException:
            self._abort_upload(uploader)
            raise
        finally:
            uploader.job_ready.set()
            shutil.rmtree(workdir, ignore_errors=True)
        return self._report(report, uploader, started)

    @staticmethod
    def _report(report: PushReport, uploader: _Uploader, started: float) -> PushReport:
        report.job_id = uploader.job_id
        report.chunk_ids = uploader.chunk_ids
        report.bytes = uploader.bytes
        report.chunks = len(uploader.chunk_ids)
        report.seconds = time.monotonic() - started
        return report

    def _create(self, parts: Sequence[_Part], uploader: _Uploader) -> None:
        job = self.hook.create_job(data_pool_id=self.pool, **self._job_spec(parts))
        self._adopt(str(job["id"]), uploader)

    def _adopt(self, job_id: str, uploader: _Uploader) -> None:
        self.job_id = job_id
        if self.on_job_created is not None:
            self.on_job_created(job_id)
        uploader.job_id = job_id
        uploader.job_ready.set()

    def _write(self, part: _Part, workdir: Path, uploader: _Uploader, report: PushReport) -> None:
        what = "source" if part.kind == "upserted" else "deleted_source"
        chunker = ParquetChunker(workdir, part.plan.target, self.spec.chunk_size_bytes, part.kind)
        rows = 0
        for batch in part.batches:
            if not batch.num_rows:
                continue
            where = f"{what} {part.source.description}, rows {rows + 1}-{rows + batch.num_rows}"
            batch = conform(batch, part.plan, where)
            check_keys_not_null(batch, part.plan.keys, f"{what} {part.source.description}", rows)
            part.plan.observe(batch)
            rows += batch.num_rows
            for chunk in chunker.write(batch):
                uploader.put((chunk, chunk.kind, chunk.rows, chunk.size, True))
        for chunk in chunker.close():
            uploader.put((chunk, chunk.kind, chunk.rows, chunk.size, True))
        report.rows += rows if part.kind == "upserted" else 0

    def abandon(self) -> None:
        """After a failure: leave no NEW job behind (delete it), and stop one already submitted."""
        if not self.job_id:
            return
        try:
            status = self.hook.get_job(self.job_id, self.pool).get("status")
            if status == "NEW":
                self.hook.delete_job(self.job_id, self.pool)
                self.log.info("Deleted the unexecuted job %s after the failure", self.job_id)
            elif status in ("QUEUED", "RUNNING"):
                self.hook.cancel_job(self.job_id, self.pool)
                self.log.info("Cancelled job %s after the failure", self.job_id)
        except Exception as exc:  # the original failure matters more than the clean-up's
            self.log.warning("Could not clean up job %s after the failure: %s", self.job_id, exc)


def _line_ending(value: Any) -> bytes | None:
    if not value:
        return None
    text = str(value).replace("\\r", "\r").replace("\\n", "\n")
    return text.encode() if text in ("\n", "\r\n") else None


def csv_header(path: str, options: Mapping[str, Any], what: str) -> list[str]:
    """The column names in a CSV file's first record, read with the job's separator, quote and charset."""
    import csv
    import io

    charset = str(options.get("charSet") or "UTF-8")
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 20)
        text = head.decode(charset, errors="strict" if len(head) < (1 << 20) else "ignore")
    except (OSError, LookupError, UnicodeDecodeError) as exc:
        raise CelonisConfigError(f"{what}: cannot read the header of {path}: {exc}") from exc
    reader = csv.reader(
        io.StringIO(text),
        delimiter=str(options.get("separatorSequence") or ","),
        quotechar=str(options.get("quoteSequence") or '"'),
        escapechar=str(options["escapeSequence"]) if options.get("escapeSequence") else None,
    )
    header = next(reader, None)
    if not header:
        raise CelonisConfigError(f"{what}: {path} is empty (no header line)")
    return [h.strip() for h in header]


def _chain(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield first
    yield from rest
