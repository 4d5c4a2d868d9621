"""The Standard Data Ingestion service without HTTP: the bucket's objects, multipart uploads, the tables
configured on each data connection, and the worker that applies files.

Object keys are ``connection/<connectionId>/<table>/<file>``; a key may only write under its own
connection. Objects live in memory (their bodies on disk); an overwritten object's old file is kept until
the worker has applied it, so every upload is ingested exactly once, in arrival order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..settings import EmulatorSettings, IngestionKeySpec, IngestionTableSpec
from ..storage import Tables
from .loader import parquet_problem
from .sigv4 import S3Error, SignedRequest, verify_headers
from .worker import IngestionWorker

BUCKET = "continuous"
MIN_PART_BYTES = 5 * 1024 * 1024
KEY_RE = re.compile(r"^connection/(?P<conn>[^/]+)/(?P<table>[A-Za-z0-9_-]{1,128})/(?P<file>[^/]+)$")


@dataclass
class StoredObject:
    key: str
    path: Path
    size: int
    etag: str
    modified: dt.datetime
    metadata: dict[str, str]


@dataclass
class MultipartUpload:
    key: str
    metadata: dict[str, str]
    parts: dict[int, tuple[Path, int, str]] = field(default_factory=dict)


class IngestionBackend:
    """One per running emulator; the S3 routes call it with authenticated, parsed requests."""

    def __init__(self, settings: EmulatorSettings, data_dir: Path, tables: Tables) -> None:
        self.settings = settings
        self.dir = data_dir / "ingestion"
        self.worker = IngestionWorker(tables)
        self.worker.on_applied = self._release
        self._lock = threading.Lock()
        self._objects: dict[str, StoredObject] = {}
        self._uploads: dict[str, MultipartUpload] = {}

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.worker.start()

    def stop(self) -> None:
        self.worker.stop()

    # who may do what ----------------------------------------------------------------------------------
    def authenticate(
        self, method: str, raw_path: str, query: str, headers: Mapping[str, str]
    ) -> SignedRequest:
        """Check SigV4; the documented profile also requires the team's region in the scope."""
        region = self.settings.region if self.settings.documented else None
        return verify_headers(method, raw_path, query, headers, self.settings.ingestion_keys, region)

    def check_key(self, signer: IngestionKeySpec, key: str, writing: bool) -> None:
        """403 outside the signer's connection; for writes a well-formed key (and a configured table)."""
        own = f"connection/{signer.connection_id}/"
        if not key.startswith(own):
            raise S3Error(403, "AccessDenied", f"This key may only access {own}...", key)
        if not writing:
            return
        match = KEY_RE.match(key)
        if not match:
            raise S3Error(
                400,
                "InvalidArgument",
                "Object keys must be connection/<connectionId>/<table>/<file>, the table of letters, "
                "digits, '_' and '-'",
                key,
            )
        if self.settings.documented and self.table_spec(signer.connection_id, match["table"]) is None:
            raise S3Error(
                404,
                "NoSuchTable",
                f"Table '{match['table']}' is not configured on data connection {signer.connection_id}: "
                "configure it (its primary key) first (--ingestion-table or --ingestion-config)",
                key,
            )

    def table_spec(self, connection_id: str, table: str) -> IngestionTableSpec | None:
        """The table configured on the connection, matched case-insensitively."""
        return next(
            (
                t
                for t in self.settings.ingestion_tables
                if t.connection_id == connection_id and t.table.lower() == table.lower()
            ),
            None,
        )

    def keys_for(
        self, connection_id: str, table: str, metadata: dict[str, str]
    ) -> tuple[tuple[str, ...], str | None]:
        """Primary key and age column: the table's configuration; lenient only: else the object metadata."""
        spec = self.table_spec(connection_id, table)
        if spec is not None:
            return spec.primary_keys, spec.age_column
        if self.settings.documented:  # metadata never configures Celonis
            return (), None
        keys = tuple(k.strip() for k in metadata.get("primary-keys", "").split(",") if k.strip())
        return keys, metadata.get("age-column", "").strip() or None

    # objects ------------------------------------------------------------------------------------------
    def store(
        self, key: str, path: Path, size: int, etag: str, metadata: dict[str, str], signer: IngestionKeySpec
    ) -> None:
        """Make ``path`` the object ``key`` and queue it; compressed or non-parquet bodies are refused."""
        problem = parquet_problem(path)
        if problem is not None:
            path.unlink(missing_ok=True)
            raise S3Error(400, "InvalidRequest", problem, key)
        match = KEY_RE.match(key)
        assert match is not None  # checked before the body was read
        table = match["table"]
        keys, age = self.keys_for(signer.connection_id, table, metadata)
        children = {
            t.table.lower(): t.primary_keys
            for t in self.settings.ingestion_tables
            if t.connection_id == signer.connection_id and t.table.lower().startswith(f"{table.lower()}_")
        }
        obj = StoredObject(key, path, size, etag, dt.datetime.now(dt.timezone.utc), metadata)
        with self._lock:
            old = self._objects.get(key)
            self._objects[key] = obj
        self.worker.submit(
            key=key,
            path=path,
            connection_id=signer.connection_id,
            pool_id=signer.pool_id,
            table=table,
            primary_keys=keys,
            age_column=age,
            child_keys=children,
            children_need_keys=self.settings.documented,
        )
        if old is not None:
            self._release(old.path)

    def _release(self, path: Path) -> None:
        with self._lock:
            current = any(o.path == path for o in self._objects.values())
        if not current and not self.worker.in_use(path):
            path.unlink(missing_ok=True)

    def get(self, key: str) -> StoredObject:
        with self._lock:
            obj = self._objects.get(key)
        if obj is None:
            raise S3Error(404, "NoSuchKey", "The specified key does not exist.", key)
        return obj

    def delete(self, key: str) -> None:
        with self._lock:
            old = self._objects.pop(key, None)
        if old is not None:
            self._release(old.path)

    def listing(
        self, own_prefix: str, prefix: str, after: str, max_keys: int
    ) -> tuple[list[StoredObject], bool]:
        """One ListObjectsV2 page of the caller's objects, and whether more follow."""
        with self._lock:
            visible = sorted(
                (o for k, o in self._objects.items() if k.startswith(own_prefix)), key=lambda o: o.key
            )
        visible = [o for o in visible if o.key.startswith(prefix) and o.key > after]
        return visible[:max_keys], len(visible) > max_keys

    def pools(self) -> set[str]:
        return self.worker.pools()

    # multipart uploads --------------------------------------------------------------------------------
    def new_upload(self, key: str, metadata: dict[str, str]) -> str:
        upload_id = uuid.uuid4().hex
        with self._lock:
            self._uploads[upload_id] = MultipartUpload(key, metadata)
        (self.dir / "parts" / upload_id).mkdir(parents=True)
        return upload_id

    def upload(self, upload_id: str, key: str) -> MultipartUpload:
        with self._lock:
            upload = self._uploads.get(upload_id)
        if upload is None or upload.key != key:
            raise S3Error(404, "NoSuchUpload", "The specified multipart upload does not exist.", key)
        return upload

    def part_dir(self, upload_id: str) -> Path:
        return self.dir / "parts" / upload_id

    def put_part(self, upload: MultipartUpload, number: int, path: Path, size: int, etag: str) -> None:
        old = upload.parts.get(number)
        upload.parts[number] = (path, size, etag)
        if old is not None:
            old[0].unlink(missing_ok=True)

    def end_upload(self, upload_id: str) -> None:
        with self._lock:
            self._uploads.pop(upload_id, None)
        shutil.rmtree(self.dir / "parts" / upload_id, ignore_errors=True)

    def complete(
        self, upload_id: str, key: str, listed: list[tuple[int, str]], signer: IngestionKeySpec
    ) -> str:
        """Join the listed parts into the object (S3's rules on order, ETags and sizes); returns its ETag."""
        upload = self.upload(upload_id, key)
        if not listed:
            raise S3Error(400, "MalformedXML", "The CompleteMultipartUpload names no parts")
        numbers = [n for n, _ in listed]
        if numbers != sorted(set(numbers)):
            raise S3Error(400, "InvalidPartOrder", "The list of parts was not in ascending order.")
        for index, (number, etag) in enumerate(listed):
            stored = upload.parts.get(number)
            if stored is None or (etag and etag.strip('"') != stored[2].strip('"')):
                raise S3Error(400, "InvalidPart", f"Part {number} was not uploaded or its ETag differs")
            if index < len(listed) - 1 and stored[1] < MIN_PART_BYTES:
                raise S3Error(400, "EntityTooSmall", f"Part {number} is smaller than the 5 MiB minimum")
        digests = hashlib.md5()
        size = 0
        with tempfile.NamedTemporaryFile(dir=self.dir, prefix="obj-", suffix=".parquet", delete=False) as out:
            for number, _ in listed:
                part_path, part_size, part_etag = upload.parts[number]
                with part_path.open("rb") as part_file:
                    shutil.copyfileobj(part_file, out, 1 << 20)
                digests.update(bytes.fromhex(part_etag.strip('"')))
                size += part_size
        etag = f'"{digests.hexdigest()}-{len(listed)}"'
        self.end_upload(upload_id)
        self.store(key, Path(out.name), size, etag, upload.metadata, signer)
        return etag
