"""The S3 XML the ingestion routes speak: answers, error documents and the CompleteMultipartUpload body."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from starlette.responses import Response

from .backend import BUCKET, StoredObject
from .sigv4 import S3Error

XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"


def xml_response(tag: str, fields: list[tuple[str, Any]], status: int = 200) -> Response:
    """``<tag xmlns=...><k>v</k>...</tag>``; values are escaped except prebuilt ``Contents`` fragments."""
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


def http_date(when: dt.datetime) -> str:
    return when.strftime("%a, %d %b %Y %H:%M:%S GMT")


def list_result(
    page: list[StoredObject], prefix: str, max_keys: int, truncated: bool, url_encode: bool
) -> Response:
    """A ListObjectsV2 answer (``NextContinuationToken`` is the last key shown)."""
    contents = [
        (
            "Contents",
            f"<Key>{escape(quote(o.key, safe='/') if url_encode else o.key)}</Key>"
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
    if url_encode:
        fields.append(("EncodingType", "url"))
    if truncated and page:
        fields.append(("NextContinuationToken", page[-1].key))
    return xml_response("ListBucketResult", fields)


def parse_complete(xml_bytes: bytes) -> list[tuple[int, str]]:
    """(part number, ETag) pairs of a CompleteMultipartUpload body, in the order given."""
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
    return listed
