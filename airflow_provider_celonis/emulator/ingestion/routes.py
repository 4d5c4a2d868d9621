"""The Standard Data Ingestion API over HTTP: an S3-compatible endpoint at ``/api/data-ingestion``.

Enough of S3 for boto3 and the AWS CLI (path-style): PutObject, the multipart calls, HeadBucket,
ListObjectsV2, HeadObject/GetObject and DeleteObject, signed with SigV4. Bodies stream to disk while their
hashes and chunk signatures are checked. Errors are S3 XML, never the Celonis JSON shape. The rules live
in :mod:`.backend`; this module only parses requests and renders answers.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, JSONResponse, Response

from .backend import BUCKET, IngestionBackend
from .s3xml import error_response, http_date, list_result, parse_complete, xml_response
from .sigv4 import BodyDecoder, S3Error, SignedRequest

if TYPE_CHECKING:
    from ..state import EmulatorState

PREFIX = "/api/data-ingestion"
MAX_COMPLETE_XML = 1 << 20
METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE"]


class _Call:
    """One authenticated S3 request: its bucket, key, query and signer."""

    def __init__(self, request: Request, bucket: str, key: str) -> None:
        self.request = request
        self.method = request.method
        self.key = key
        self.query = parse_qs(request.url.query, keep_blank_values=True)
        state: EmulatorState = request.app.state.emulator
        self.backend: IngestionBackend = state.ingestion
        raw_path = request.scope.get("raw_path", b"").decode() or request.url.path
        self.signed: SignedRequest = self.backend.authenticate(
            request.method,
            raw_path.split("?", 1)[0],
            request.scope.get("query_string", b"").decode(),
            request.headers,
        )
        if bucket != BUCKET:
            raise S3Error(404, "NoSuchBucket", "The specified bucket does not exist", bucket)

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    @property
    def own_prefix(self) -> str:
        return f"connection/{self.signed.key.connection_id}/"

    def metadata(self) -> dict[str, str]:
        items = self.request.headers.items()
        return {k[len("x-amz-meta-") :]: v for k, v in items if k.startswith("x-amz-meta-")}

    async def receive(self, directory: Path) -> tuple[Path, BodyDecoder]:
        """Stream the (possibly aws-chunked) body to a new file, checking hashes and chunk signatures."""
        decoder = BodyDecoder(self.signed, self.request.headers)
        fd, name = tempfile.mkstemp(dir=directory, prefix="obj-", suffix=".parquet")
        path = Path(name)
        try:
            with os.fdopen(fd, "wb", buffering=1 << 20) as out:
                async for block in self.request.stream():
                    out.write(decoder.feed(block))
            decoder.finish()
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path, decoder

    def checksum_headers(self, body: BodyDecoder) -> dict[str, str]:
        headers = {"ETag": body.etag}
        if "x-amz-checksum-crc32" in self.request.headers or "x-amz-trailer" in self.request.headers:
            headers["x-amz-checksum-crc32"] = body.crc32_b64
        return headers


async def bucket_call(call: _Call) -> Response:
    """HeadBucket, GetBucketLocation and ListObjectsV2."""
    if call.method == "HEAD":
        return Response(status_code=200, headers={"x-amz-bucket-region": call.signed.scope.split("/")[1]})
    if call.method != "GET":
        raise S3Error(501, "NotImplemented", f"{call.method} on the bucket is not supported")
    if "location" in call.query:
        return xml_response("LocationConstraint", [])
    try:
        max_keys = int(call.arg("max-keys") or 1000)
    except ValueError:
        raise S3Error(400, "InvalidArgument", "max-keys must be a number") from None
    prefix = call.arg("prefix") or ""
    after = call.arg("continuation-token") or call.arg("start-after") or ""
    page, truncated = call.backend.listing(call.own_prefix, prefix, after, max_keys)
    return list_result(page, prefix, max_keys, truncated, call.arg("encoding-type") == "url")


async def object_call(call: _Call) -> Response:
    """Dispatch an object request to the S3 operation it is."""
    method, upload_id = call.method, call.arg("uploadId")
    call.backend.check_key(call.signed.key, call.key, writing=method in ("PUT", "POST"))
    if method == "PUT" and "x-amz-copy-source" in call.request.headers:
        raise S3Error(501, "NotImplemented", "CopyObject is not supported by the ingestion API")
    if method == "PUT":
        return await (put_part(call, upload_id) if upload_id is not None else put_object(call))
    if method == "POST" and "uploads" in call.query:
        new_id = call.backend.new_upload(call.key, call.metadata())
        fields = [("Bucket", BUCKET), ("Key", call.key), ("UploadId", new_id)]
        return xml_response("InitiateMultipartUploadResult", fields)
    if method == "POST" and upload_id is not None:
        return await complete(call, upload_id)
    if method == "DELETE":
        if upload_id is not None:
            call.backend.upload(upload_id, call.key)
            call.backend.end_upload(upload_id)
        else:
            call.backend.delete(call.key)
        return Response(status_code=204)
    if method in ("GET", "HEAD"):
        return get_object(call)
    raise S3Error(501, "NotImplemented", f"{method} on an object is not supported")


async def put_object(call: _Call) -> Response:
    path, body = await call.receive(call.backend.dir)
    call.backend.store(call.key, path, body.size, body.etag, call.metadata(), call.signed.key)
    return Response(status_code=200, headers=call.checksum_headers(body))


def get_object(call: _Call) -> Response:
    obj = call.backend.get(call.key)
    headers = {
        "ETag": obj.etag,
        "Last-Modified": http_date(obj.modified),
        **{f"x-amz-meta-{k}": v for k, v in obj.metadata.items()},
    }
    if call.method == "HEAD":
        return Response(status_code=200, headers={**headers, "Content-Length": str(obj.size)})
    return FileResponse(obj.path, headers=headers, media_type="application/octet-stream")


async def put_part(call: _Call, upload_id: str) -> Response:
    upload = call.backend.upload(upload_id, call.key)
    number = call.arg("partNumber") or ""
    if not number.isdigit() or not 1 <= int(number) <= 10000:
        raise S3Error(400, "InvalidArgument", "partNumber must be between 1 and 10000")
    path, body = await call.receive(call.backend.part_dir(upload_id))
    call.backend.put_part(upload, int(number), path, body.size, body.etag)
    return Response(status_code=200, headers=call.checksum_headers(body))


async def complete(call: _Call, upload_id: str) -> Response:
    call.backend.upload(upload_id, call.key)
    raw = b""
    async for block in call.request.stream():
        raw += block
        if len(raw) > MAX_COMPLETE_XML:
            raise S3Error(400, "MalformedXML", "The CompleteMultipartUpload body is too large")
    # The body is signed like any other; checking it keeps the signature promise for this call too.
    decoder = BodyDecoder(call.signed, call.request.headers)
    xml_bytes = decoder.feed(raw)
    decoder.finish()
    etag = call.backend.complete(upload_id, call.key, parse_complete(xml_bytes), call.signed.key)
    location = f"{PREFIX}/{BUCKET}/{call.key}"
    fields = [("Location", location), ("Bucket", BUCKET), ("Key", call.key), ("ETag", etag)]
    return xml_response("CompleteMultipartUploadResult", fields)


async def bucket_route(request: Request, bucket: str) -> Response:
    try:
        return await bucket_call(_Call(request, bucket, ""))
    except S3Error as exc:
        return error_response(exc, request.method)


async def object_route(request: Request, bucket: str, key: str) -> Response:
    try:
        return await object_call(_Call(request, bucket, key))
    except S3Error as exc:
        return error_response(exc, request.method)


def router() -> APIRouter:
    """The S3 routes; mount with ``prefix=PREFIX``."""
    api = APIRouter()
    api.add_api_route("/{bucket}", bucket_route, methods=METHODS, include_in_schema=False)
    api.add_api_route("/{bucket}/", bucket_route, methods=METHODS, include_in_schema=False)
    api.add_api_route("/{bucket}/{key:path}", object_route, methods=METHODS, include_in_schema=False)
    return api


def _backend(request: Request) -> IngestionBackend:
    state: EmulatorState = request.app.state.emulator
    state.login(request.headers.get("authorization"))
    return state.ingestion


async def ingestion_status(request: Request) -> Response:
    return JSONResponse(_backend(request).worker.status())


async def ingestion_errors(request: Request) -> Response:
    return JSONResponse(_backend(request).worker.errors())


def status_router() -> APIRouter:
    """``/emulator/api/ingestion/status`` and ``/errors``, authenticated like the other inspection routes."""
    api = APIRouter()
    api.add_api_route("/emulator/api/ingestion/status", ingestion_status, methods=["GET"])
    api.add_api_route("/emulator/api/ingestion/errors", ingestion_errors, methods=["GET"])
    return api
