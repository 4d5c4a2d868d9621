"""AWS Signature Version 4 for the emulated S3 endpoint, and the bodies it signs.

The header signature is checked before the body is read; the payload (a SHA-256 in
``x-amz-content-sha256``, or the per-chunk signatures of ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``) is checked
while the body streams to disk, so a tampered body is refused without ever being held in memory.
Plain http clients (boto3, the AWS CLI) sign the whole payload and put a CRC32 in a header; over TLS
newer botocore sends ``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` aws-chunked bodies with a CRC32 trailer.
All of these are accepted.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from ..settings import IngestionKeySpec

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_SKEW = dt.timedelta(minutes=15)
_AUTH_RE = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),\s*"
    r"Signature=(?P<sig>[0-9a-f]{64})"
)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class S3Error(Exception):
    """An S3-style error answer: ``<Error><Code>...</Code><Message>...</Message></Error>``."""

    def __init__(self, status: int, code: str, message: str, resource: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.resource = resource


@dataclass
class SignedRequest:
    """Who signed and what the body must satisfy; ``seed`` and ``scope`` chain chunk signatures."""

    key: IngestionKeySpec
    payload: str
    amz_date: str
    scope: str
    seed: str
    signing_key: bytes = field(repr=False)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = _hmac(f"AWS4{secret}".encode(), date)
    return _hmac(_hmac(_hmac(k, region), service), "aws4_request")


def _canonical_query(query: str) -> str:
    pairs = []
    for part in query.split("&") if query else []:
        name, _, value = part.partition("=")
        pairs.append((quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def _canonical_uri(raw_path: str) -> str:
    """S3 signs the path as sent, each segment URI-encoded once (no double encoding)."""
    return "/".join(quote(unquote(seg), safe="-_.~") for seg in raw_path.split("/")) or "/"


def verify_headers(
    method: str,
    raw_path: str,
    query: str,
    headers: Mapping[str, str],
    keys: tuple[IngestionKeySpec, ...],
    region: str | None = None,
) -> SignedRequest:
    """Check the ``Authorization`` header; returns the caller and the payload mode, or raises S3Error.

    With ``region`` the credential scope must name it, as S3 refuses a request signed for another region.
    """
    auth = headers.get("authorization", "")
    match = _AUTH_RE.match(auth.strip())
    if not match:
        if not auth:
            raise S3Error(403, "AccessDenied", "Anonymous access is not allowed")
        raise S3Error(
            400, "AuthorizationHeaderMalformed", "Expected an AWS4-HMAC-SHA256 Authorization header"
        )
    access, _, scope = match["cred"].partition("/")
    key = next((k for k in keys if secrets.compare_digest(k.access_key, access)), None)
    if key is None:
        raise S3Error(
            403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."
        )
    scope_parts = scope.split("/")
    if len(scope_parts) != 4 or scope_parts[3] != "aws4_request":
        raise S3Error(400, "AuthorizationHeaderMalformed", f"Malformed credential scope {scope!r}")
    if region is not None and scope_parts[1] != region:
        raise S3Error(
            400,
            "AuthorizationHeaderMalformed",
            f"The authorization header is malformed; the region '{scope_parts[1]}' is wrong; "
            f"expecting '{region}'",
        )
    amz_date = headers.get("x-amz-date", "")
    try:
        when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise S3Error(403, "AccessDenied", "x-amz-date is missing or malformed") from None
    if abs(dt.datetime.now(dt.timezone.utc) - when) > MAX_SKEW:
        raise S3Error(
            403, "RequestTimeTooSkewed", "The difference between the request time and now is too large."
        )
    payload = headers.get("x-amz-content-sha256", "")
    if not payload or not (
        _HEX64.match(payload)
        or payload in (UNSIGNED, STREAMING_SIGNED, STREAMING_UNSIGNED_TRAILER, STREAMING_SIGNED_TRAILER)
    ):
        raise S3Error(400, "InvalidArgument", "x-amz-content-sha256 is missing or not understood")
    signed = match["signed"].split(";")
    if "host" not in signed:
        raise S3Error(403, "AccessDenied", "The host header must be signed")
    canonical_headers = "".join(f"{h}:{' '.join(headers.get(h, '').split())}\n" for h in signed)
    canonical = "\n".join(
        [
            method,
            _canonical_uri(raw_path),
            _canonical_query(query),
            canonical_headers,
            match["signed"],
            payload,
        ]
    )
    string_to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    skey = signing_key(key.secret_key, *scope_parts[:3])
    expected = hmac.new(skey, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not secrets.compare_digest(expected, match["sig"]):
        raise S3Error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
        )
    return SignedRequest(key, payload, amz_date, scope, match["sig"], skey)


class BodyDecoder:
    """Turns the raw request body into object bytes and checks what the signature promised.

    ``feed`` returns the object bytes in the pieces received so far; ``finish`` raises S3Error when the
    payload hash, a chunk signature, ``Content-MD5`` or a CRC32 checksum (header or trailer) is wrong.
    """

    def __init__(self, signed: SignedRequest, headers: Mapping[str, str]) -> None:
        self.signed = signed
        self.chunked = signed.payload.startswith("STREAMING-")
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5()
        self.crc32 = 0
        self.size = 0
        self._headers = headers
        self._buf = bytearray()
        self._need: int | None = None  # bytes of the current chunk still to come (+2 for CRLF)
        self._chunk_sig = ""
        self._chunk_hash = hashlib.sha256()
        self._prev_sig = signed.seed
        self._done = False
        self._trailers: dict[str, str] = {}

    def feed(self, data: bytes) -> bytes:
        if not self.chunked:
            self._account(data)
            return data
        self._buf += data
        out = bytearray()
        while True:
            if self._need is None:
                if self._done:
                    self._read_trailers()
                    return bytes(out)
                end = self._buf.find(b"\r\n")
                if end < 0:
                    if len(self._buf) > 4096:
                        raise S3Error(400, "IncompleteBody", "Malformed aws-chunked chunk header")
                    return bytes(out)
                self._start_chunk(bytes(self._buf[:end]).decode("ascii", "replace"))
                del self._buf[: end + 2]
                continue
            take = min(self._need - 2, len(self._buf)) if self._need > 2 else 0
            if take:
                piece = bytes(self._buf[:take])
                del self._buf[:take]
                self._need -= take
                self._chunk_hash.update(piece)
                self._account(piece)
                out += piece
            if self._need == 2:
                if len(self._buf) < 2:
                    return bytes(out)
                if self._buf[:2] != b"\r\n":
                    raise S3Error(400, "IncompleteBody", "aws-chunked chunk not followed by CRLF")
                del self._buf[:2]
                self._end_chunk()
                continue
            return bytes(out)

    def _account(self, piece: bytes) -> None:
        self.size += len(piece)
        self.sha256.update(piece)
        self.md5.update(piece)
        self.crc32 = zlib.crc32(piece, self.crc32)

    def _start_chunk(self, header: str) -> None:
        size_text, _, ext = header.partition(";")
        try:
            size = int(size_text.strip(), 16)
        except ValueError:
            raise S3Error(400, "IncompleteBody", f"Malformed aws-chunked size {size_text!r}") from None
        self._chunk_sig = ext.partition("chunk-signature=")[2].strip()
        self._chunk_hash = hashlib.sha256()
        if size == 0:
            self._end_chunk()
            self._done = True
            self._need = None
        else:
            self._need = size + 2

    def _end_chunk(self) -> None:
        self._need = None
        if self.signed.payload not in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER):
            return
        string_to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                self.signed.amz_date,
                self.signed.scope,
                self._prev_sig,
                EMPTY_SHA256,
                self._chunk_hash.hexdigest(),
            ]
        )
        expected = hmac.new(self.signed.signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not secrets.compare_digest(expected, self._chunk_sig):
            raise S3Error(403, "SignatureDoesNotMatch", "A chunk signature of the aws-chunked body is wrong")
        self._prev_sig = expected

    def _read_trailers(self) -> None:
        """Trailer lines after the final chunk (``x-amz-checksum-crc32:...``) up to an empty line."""
        while (end := self._buf.find(b"\r\n")) >= 0:
            line = bytes(self._buf[:end]).decode("ascii", "replace")
            del self._buf[: end + 2]
            name, sep, value = line.partition(":")
            if sep and not name.lower().startswith("x-amz-trailer-signature"):
                self._trailers[name.strip().lower()] = value.strip()

    def finish(self) -> None:
        if self.chunked and not self._done:
            raise S3Error(400, "IncompleteBody", "The aws-chunked body ended before its final chunk")
        if self.chunked and self._buf.strip():
            self._read_trailers()
        decoded = self._headers.get("x-amz-decoded-content-length")
        if self.chunked and decoded and decoded.isdigit() and int(decoded) != self.size:
            raise S3Error(400, "IncompleteBody", "x-amz-decoded-content-length does not match the body")
        if _HEX64.match(self.signed.payload) and self.sha256.hexdigest() != self.signed.payload:
            raise S3Error(
                400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' does not match"
            )
        md5 = self._headers.get("content-md5")
        if md5 and md5 != base64.b64encode(self.md5.digest()).decode():
            raise S3Error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")
        crc = self._trailers.get("x-amz-checksum-crc32") or self._headers.get("x-amz-checksum-crc32")
        if crc and crc != self.crc32_b64:
            raise S3Error(400, "BadDigest", "The CRC32 you specified did not match the calculated checksum.")

    @property
    def crc32_b64(self) -> str:
        return base64.b64encode(self.crc32.to_bytes(4, "big")).decode()

    @property
    def etag(self) -> str:
        return f'"{self.md5.hexdigest()}"'
