"""The Standard Data Ingestion API: an S3-compatible endpoint at ``/api/data-ingestion`` (path-style).

Enough of S3 for boto3 and the AWS CLI: PutObject, the multipart calls, HeadBucket, ListObjectsV2,
HeadObject/GetObject and DeleteObject, signed with SigV4 by a key given with ``--ingestion-key``. Object
keys are ``connection/<connectionId>/<table>/<file>``; a key may only write under its own connection.
Bodies stream to disk. Every stored object is checked to be uncompressed parquet (from its footer) and
queued for the ingestion worker, which applies files first in, first out (see ``ingestion``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, JSONResponse, Response

from .engine import Engine
from .ingestion import IngestionWorker, parquet_problem
from .s3_auth import BodyDecoder, S3Error, SignedRequest, verify_headers
from .settings import EmulatorSettings

PREFIX = "/api/data-ingestion"
BUCKET = "continuous"
MIN_PART_BYTES = 5 * 1024 * 1024
MAX_COMPLETE_XML = 1 << 20
XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
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


class IngestionService:
    """The bucket's objects, the multipart uploads in progress, and the ingestion worker.

    Objects live in memory (their bodies on disk); an overwritten object's old file is kept until the
    worker has applied it, so every upload is ingested exactly once, in arrival order.
    """

    def __init__(self, settings: EmulatorSettings, engine: Engine, data_dir: Path) -> None:
        self.settings = settings
        self.dir = data_dir / "ingestion"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.worker = IngestionWorker(settings, engine)
        self.worker.on_applied = self._release
        self._lock = threading.Lock()
        self._objects: dict[str, StoredObject] = {}
        self._uploads: dict[str, MultipartUpload] = {}

    def start(self) -> None:
        self.worker.start()

    def stop(self) -> None:
        self.worker.stop()

    def pools(self) -> set[str]:
        return self.worker.pools()

    def _release(self, path: Path) -> None:
        with self._lock:
            current = any(o.path == path for o in self._objects.values())
        if not current and not self.worker.in_use(path):
            path.unlink(missing_ok=True)

    def store(
        self, key: str, path: Path, size: int, etag: str, metadata: dict[str, str], signer: Any
    ) -> None:
        """Make ``path`` the object ``key`` and queue it; compressed or non-parquet bodies are refused."""
        problem = parquet_problem(path)
        if problem is not None:
            path.unlink(missing_ok=True)
            raise S3Error(400, "InvalidRequest", problem, key)
        table = KEY_RE.match(key)
        assert table is not None  # checked before the body was read
        obj = StoredObject(key, path, size, etag, dt.datetime.now(dt.timezone.utc), metadata)
        with self._lock:
            old = self._objects.get(key)
            self._objects[key] = obj
        self.worker.submit(key, path, signer.connection_id, signer.pool_id, table["table"], metadata)
        if old is not None:
            self._release(old.path)

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

    def keys(self, prefix: str) -> list[StoredObject]:
        with self._lock:
            return sorted((o for k, o in self._objects.items() if k.startswith(prefix)), key=lambda o: o.key)

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

    def end_upload(self, upload_id: str) -> None:
        with self._lock:
            self._uploads.pop(upload_id, None)
        shutil.rmtree(self.dir / "parts" / upload_id, ignore_errors=True)


def _xml(tag: str, fields: list[tuple[str, Any]], status: int = 200) -> Response:
    body = "".join(f"<{k}>{v if k == 'Contents' else escape(str(v))}</{k}>" for k, v in fields)
    text = f'<?xml version="1.0" encoding="UTF-8"?>\n<{tag} xmlns="{XMLNS}">{body}</{tag}>'
    return Response(text, status_code=status, media_type="application/xml")


def error_response(exc: S3Error, method: str) -> Response:
    headers = {"x-amz-request-id": uuid.uuid4().hex[:16].upper()}
    if method in ("PUT", "POST"):  # the body may be unread: closing keeps it from poisoning keep-alive
        headers["Connection"] = "close"
    if method == "HEAD":  # S3 answers HEAD errors without a body
        return Response(status_code=exc.status, headers=headers)
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(exc.code)}</Code>'
        f"<Message>{escape(exc.message)}</Message><Resource>{escape(exc.resource)}</Resource>"
        f"<RequestId>{headers['x-amz-request-id']}</RequestId></Error>"
    )
    return Response(body, status_code=exc.status, media_type="application/xml", headers=headers)


def _http_date(when: dt.datetime) -> str:
    return when.strftime("%a, %d %b %Y %H:%M:%S GMT")


def _metadata(request: Request) -> dict[str, str]:
    return {k[len("x-amz-meta-") :]: v for k, v in request.headers.items() if k.startswith("x-amz-meta-")}


async def _receive(request: Request, signed: SignedRequest, directory: Path) -> tuple[Path, BodyDecoder]:
    """Stream the (possibly aws-chunked) body to a new file, checking hashes and chunk signatures."""
    decoder = BodyDecoder(signed, request.headers)
    fd, name = tempfile.mkstemp(dir=directory, prefix="obj-", suffix=".parquet")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as out:
            async for block in request.stream():
                out.write(decoder.feed(block))
        decoder.finish()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, decoder


class _Call:
    """One authenticated S3 request: its bucket, key and signer."""

    def __init__(self, request: Request, bucket: str, key: str) -> None:
        self.request = request
        self.bucket = bucket
        self.key = key
        self.query = parse_qs(request.url.query, keep_blank_values=True)
        state = request.app.state.emulator
        self.service: IngestionService = state.ingestion_service
        raw_path = request.scope.get("raw_path", b"").decode() or request.url.path
        self.signed = verify_headers(
            request.method,
            raw_path.split("?", 1)[0],
            request.scope.get("query_string", b"").decode(),
            request.headers,
            state.settings.ingestion_keys,
        )
        if bucket != BUCKET:
            raise S3Error(404, "NoSuchBucket", "The specified bucket does not exist", bucket)

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    @property
    def own_prefix(self) -> str:
        return f"connection/{self.signed.key.connection_id}/"

    def check_key(self, writing: bool) -> None:
        if not self.key.startswith(self.own_prefix):
            raise S3Error(403, "AccessDenied", f"This key may only access {self.own_prefix}...", self.key)
        if writing and not KEY_RE.match(self.key):
            raise S3Error(
                400,
                "InvalidArgument",
                "Object keys must be connection/<connectionId>/<table>/<file>, the table of letters, "
                "digits, '_' and '-'",
                self.key,
            )


async def _bucket_call(call: _Call) -> Response:
    method = call.request.method
    if method == "HEAD":
        return Response(status_code=200, headers={"x-amz-bucket-region": call.signed.scope.split("/")[1]})
    if method != "GET":
        raise S3Error(501, "NotImplemented", f"{method} on the bucket is not supported")
    if "location" in call.query:
        return _xml("LocationConstraint", [])
    return _list_objects(call)


def _list_objects(call: _Call) -> Response:
    prefix = call.arg("prefix") or ""
    try:
        max_keys = int(call.arg("max-keys") or 1000)
    except ValueError:
        raise S3Error(400, "InvalidArgument", "max-keys must be a number") from None
    after = call.arg("continuation-token") or call.arg("start-after") or ""
    visible = [o for o in call.service.keys(call.own_prefix) if o.key.startswith(prefix) and o.key > after]
    page, truncated = visible[:max_keys], len(visible) > max_keys
    encode = call.arg("encoding-type") == "url"
    contents = [
        (
            "Contents",
            f"<Key>{escape(quote(o.key, safe='/') if encode else o.key)}</Key>"
            f"<LastModified>{o.modified.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z</LastModified>"
            f"<ETag>{escape(o.etag)}</ETag><Size>{o.size}</Size><StorageClass>STANDARD</StorageClass>",
        )
        for o in page
    ]
    fields: list[tuple[str, Any]] = [
        ("Name", BUCKET),
        ("Prefix", prefix),
        ("KeyCount", len(page)),
        ("MaxKeys", max_keys),
        ("IsTruncated", str(truncated).lower()),
        *contents,
    ]
    if encode:
        fields.append(("EncodingType", "url"))
    if truncated and page:
        fields.append(("NextContinuationToken", page[-1].key))
    return _xml("ListBucketResult", fields)


async def _object_call(call: _Call) -> Response:
    method, upload_id = call.request.method, call.arg("uploadId")
    call.check_key(writing=method in ("PUT", "POST"))
    service = call.service
    if method == "PUT" and "x-amz-copy-source" in call.request.headers:
        raise S3Error(501, "NotImplemented", "CopyObject is not supported by the ingestion API")
    if method == "PUT" and upload_id is not None:
        return await _upload_part(call, upload_id)
    if method == "PUT":
        path, body = await _receive(call.request, call.signed, service.dir)
        service.store(call.key, path, body.size, body.etag, _metadata(call.request), call.signed.key)
        return Response(status_code=200, headers=_checksum_headers(call, body))
    if method == "POST" and "uploads" in call.query:
        new_id = service.new_upload(call.key, _metadata(call.request))
        return _xml(
            "InitiateMultipartUploadResult", [("Bucket", BUCKET), ("Key", call.key), ("UploadId", new_id)]
        )
    if method == "POST" and upload_id is not None:
        return await _complete(call, upload_id)
    if method == "DELETE" and upload_id is not None:
        service.upload(upload_id, call.key)
        service.end_upload(upload_id)
        return Response(status_code=204)
    if method == "DELETE":
        service.delete(call.key)
        return Response(status_code=204)
    if method in ("GET", "HEAD"):
        obj = service.get(call.key)
        headers = {
            "ETag": obj.etag,
            "Last-Modified": _http_date(obj.modified),
            **{f"x-amz-meta-{k}": v for k, v in obj.metadata.items()},
        }
        if method == "HEAD":
            return Response(status_code=200, headers={**headers, "Content-Length": str(obj.size)})
        return FileResponse(obj.path, headers=headers, media_type="application/octet-stream")
    raise S3Error(501, "NotImplemented", f"{method} on an object is not supported")


def _checksum_headers(call: _Call, body: BodyDecoder) -> dict[str, str]:
    headers = {"ETag": body.etag}
    if "x-amz-checksum-crc32" in call.request.headers or "x-amz-trailer" in call.request.headers:
        headers["x-amz-checksum-crc32"] = body.crc32_b64
    return headers


async def _upload_part(call: _Call, upload_id: str) -> Response:
    upload = call.service.upload(upload_id, call.key)
    number_text = call.arg("partNumber") or ""
    if not number_text.isdigit() or not 1 <= int(number_text) <= 10000:
        raise S3Error(400, "InvalidArgument", "partNumber must be between 1 and 10000")
    path, body = await _receive(call.request, call.signed, call.service.dir / "parts" / upload_id)
    old = upload.parts.get(int(number_text))
    upload.parts[int(number_text)] = (path, body.size, body.etag)
    if old is not None:
        old[0].unlink(missing_ok=True)
    return Response(status_code=200, headers=_checksum_headers(call, body))


async def _complete(call: _Call, upload_id: str) -> Response:
    upload = call.service.upload(upload_id, call.key)
    raw = b""
    async for block in call.request.stream():
        raw += block
        if len(raw) > MAX_COMPLETE_XML:
            raise S3Error(400, "MalformedXML", "The CompleteMultipartUpload body is too large")
    # The body is signed like any other; checking it keeps the signature promise for this call too.
    decoder = BodyDecoder(call.signed, call.request.headers)
    xml_bytes = decoder.feed(raw)
    decoder.finish()
    try:
        root = ElementTree.fromstring(xml_bytes)
    except ElementTree.ParseError as exc:
        raise S3Error(400, "MalformedXML", f"Malformed CompleteMultipartUpload: {exc}") from None
    listed: list[tuple[int, str]] = []
    for part in root.iter():
        if part.tag.rsplit("}", 1)[-1] != "Part":
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "").strip() for child in part}
        if not fields.get("PartNumber", "").isdigit():
            raise S3Error(400, "MalformedXML", "A Part has no PartNumber")
        listed.append((int(fields["PartNumber"]), fields.get("ETag", "")))
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
    fd, name = tempfile.mkstemp(dir=call.service.dir, prefix="obj-", suffix=".parquet")
    digests = hashlib.md5()
    size = 0
    with os.fdopen(fd, "wb") as out:
        for number, _ in listed:
            part_path, part_size, part_etag = upload.parts[number]
            with part_path.open("rb") as part_file:
                shutil.copyfileobj(part_file, out, 1 << 20)
            digests.update(bytes.fromhex(part_etag.strip('"')))
            size += part_size
    etag = f'"{digests.hexdigest()}-{len(listed)}"'
    call.service.end_upload(upload_id)
    call.service.store(call.key, Path(name), size, etag, upload.metadata, call.signed.key)
    return _xml(
        "CompleteMultipartUploadResult",
        [
            ("Location", f"{PREFIX}/{BUCKET}/{call.key}"),
            ("Bucket", BUCKET),
            ("Key", call.key),
            ("ETag", etag),
        ],
    )


def router() -> APIRouter:
    """The S3 routes; mount with ``prefix=PREFIX``. Errors are S3 XML, never the Celonis JSON shape."""
    api = APIRouter()
    methods = ["GET", "HEAD", "PUT", "POST", "DELETE"]

    async def bucket(request: Request, bucket: str) -> Response:
        try:
            return await _bucket_call(_Call(request, bucket, ""))
        except S3Error as exc:
            return error_response(exc, request.method)

    async def obj(request: Request, bucket: str, key: str) -> Response:
        try:
            return await _object_call(_Call(request, bucket, key))
        except S3Error as exc:
            return error_response(exc, request.method)

    api.add_api_route("/{bucket}", bucket, methods=methods, include_in_schema=False)
    api.add_api_route("/{bucket}/", bucket, methods=methods, include_in_schema=False)
    api.add_api_route("/{bucket}/{key:path}", obj, methods=methods, include_in_schema=False)
    return api


def status_router() -> APIRouter:
    """``/emulator/api/ingestion/status`` and ``/errors``, authenticated like the other inspection routes."""
    api = APIRouter()

    def _service(request: Request) -> IngestionService:
        state = request.app.state.emulator
        state.login(request.headers.get("authorization"))
        service: IngestionService = state.ingestion_service
        return service

    async def status(request: Request) -> Response:
        return JSONResponse(_service(request).worker.status())

    async def errors(request: Request) -> Response:
        return JSONResponse(_service(request).worker.errors())

    api.add_api_route("/emulator/api/ingestion/status", status, methods=["GET"])
    api.add_api_route("/emulator/api/ingestion/errors", errors, methods=["GET"])
    return api
