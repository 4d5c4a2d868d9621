"""The emulated S3 endpoint against the real clients: the AWS CLI and boto3, and crafted aws-chunked bodies."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
import zlib
from base64 import b64encode
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from botocore.exceptions import ClientError

from tests.ingestion.conftest import (
    ACCESS,
    CONN,
    KEY_PREFIX,
    SECRET,
    Ingestion,
    parquet,
    raw_status,
    s3_client,
)

AWS = Path(sys.executable).parent / "aws"


def client_error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_aws_cli_cp_lands_and_lists(emulator: Any, ingestion: Ingestion, tmp_path: Path) -> None:
    data = tmp_path / "flat_order.parquet"
    pq.write_table(pa.table({"id": [1, 2], "amount": [597.0, 10.5]}), data, compression="NONE")
    config = tmp_path / "aws-config"
    config.write_text("[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": ACCESS,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    endpoint = f"{emulator.url}/api/data-ingestion"
    target = f"s3://continuous/{KEY_PREFIX}flat/flat_order.parquet"
    cp = subprocess.run(
        [str(AWS), "s3", "cp", str(data), target, "--endpoint-url", endpoint],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cp.returncode == 0, cp.stderr
    listing = subprocess.run(
        [str(AWS), "s3", "ls", f"s3://continuous/{KEY_PREFIX}flat/", "--endpoint-url", endpoint],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
    assert "flat_order.parquet" in listing.stdout, listing.stdout
    ingestion.wait(1)
    assert ingestion.sorted_rows("flat", "id") == [{"id": 1, "amount": 597.0}, {"id": 2, "amount": 10.5}]


def test_boto3_put_object_head_list_delete(s3: Any, put: Any, ingestion: Ingestion) -> None:
    assert s3.head_bucket(Bucket="continuous")["ResponseMetadata"]["HTTPStatusCode"] == 200
    put("objects", "a.parquet", parquet({"id": [1], "v": ["x"]}))
    head = s3.head_object(Bucket="continuous", Key=f"{KEY_PREFIX}objects/a.parquet")
    assert head["Metadata"] == {"primary-keys": "id"}
    assert head["ContentLength"] > 0
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="continuous", Prefix=KEY_PREFIX)["Contents"]]
    assert keys == [f"{KEY_PREFIX}objects/a.parquet"]
    s3.delete_object(Bucket="continuous", Key=f"{KEY_PREFIX}objects/a.parquet")
    assert s3.list_objects_v2(Bucket="continuous", Prefix=KEY_PREFIX)["KeyCount"] == 0
    ingestion.wait(1)
    assert ingestion.rows("objects", CONN) == [{"id": 1, "v": "x"}]  # deleting the object keeps the rows


def test_boto3_upload_file_multipart(s3: Any, ingestion: Ingestion, emulator: Any, tmp_path: Path) -> None:
    from boto3.s3.transfer import TransferConfig

    rows = 530_000
    path = tmp_path / "big.parquet"
    rng = np.random.default_rng(1)
    pq.write_table(
        pa.table({"id": np.arange(rows), "noise": rng.integers(0, 2**62, rows), "pad": rng.random(rows)}),
        path,
        compression="NONE",
        use_dictionary=False,
    )
    assert path.stat().st_size > 12 * 1024 * 1024
    mib = 1024 * 1024
    s3.upload_file(
        str(path),
        "continuous",
        f"{KEY_PREFIX}big/big.parquet",
        ExtraArgs={"Metadata": {"primary-keys": "id"}},
        Config=TransferConfig(multipart_threshold=5 * mib, multipart_chunksize=5 * mib),
    )
    stats = requests.get(
        f"{emulator.url}/emulator/api/stats", headers={"Authorization": f"AppKey {ingestion.key}"}, timeout=30
    ).json()["requests"]
    assert stats["PUT /api/data-ingestion/{bucket}/{key:path}"] >= 3  # the parts
    head = s3.head_object(Bucket="continuous", Key=f"{KEY_PREFIX}big/big.parquet")
    assert head["ContentLength"] == path.stat().st_size
    assert head["ETag"].endswith('-3"')
    ingestion.wait(1)
    assert next(t for t in ingestion.tables(CONN) if t["name"] == "big")["rows"] == rows


def test_wrong_key_bad_signature_and_foreign_connection(emulator: Any, s3: Any) -> None:
    body = parquet({"id": [1]})
    with pytest.raises(ClientError) as wrong:
        s3_client(emulator, access="AKIANOBODY").put_object(
            Bucket="continuous", Key=f"{KEY_PREFIX}t/a.parquet", Body=body
        )
    assert client_error(wrong) == ("InvalidAccessKeyId", 403)
    with pytest.raises(ClientError) as bad:
        s3_client(emulator, secret="not-the-secret").put_object(
            Bucket="continuous", Key=f"{KEY_PREFIX}t/a.parquet", Body=body
        )
    assert client_error(bad) == ("SignatureDoesNotMatch", 403)
    with pytest.raises(ClientError) as foreign:
        s3.put_object(Bucket="continuous", Key="connection/conn-2/t/a.parquet", Body=body)
    assert client_error(foreign) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as bucket:
        s3.put_object(Bucket="other", Key=f"{KEY_PREFIX}t/a.parquet", Body=body)
    assert client_error(bucket) == ("NoSuchBucket", 404)
    assert raw_status(emulator).status_code == 401  # the inspection API wants emulator credentials
    assert s3.list_objects_v2(Bucket="continuous", Prefix=KEY_PREFIX)["KeyCount"] == 0


def test_compressed_and_non_parquet_refused(s3: Any, put: Any, ingestion: Ingestion) -> None:
    with pytest.raises(ClientError) as snappy:
        put("t", "a.parquet", parquet({"id": [1]}, compression="snappy"))
    code, status = client_error(snappy)
    assert (code, status) == ("InvalidRequest", 400)
    assert "SNAPPY" in snappy.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as text:
        put("t", "b.parquet", b"id\n1\n")
    assert client_error(text) == ("InvalidRequest", 400)
    assert s3.list_objects_v2(Bucket="continuous", Prefix=KEY_PREFIX)["KeyCount"] == 0
    assert ingestion.status()["files"] == []


# -- aws-chunked bodies, signed as in the AWS SigV4 streaming documentation -------------------------


def _key(secret: str, date: str) -> bytes:
    k = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in ("us-east-1", "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def chunked_put(emu: Any, key: str, data: bytes, mode: str, tamper: bool = False) -> requests.Response:
    """PUT ``data`` as an aws-chunked body: headers signed with botocore's signer, chunks by hand."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = f"{emu.url}/api/data-ingestion/continuous/{key}"
    pieces = [data[i : i + 8192] for i in range(0, len(data), 8192)]
    headers = {
        "x-amz-content-sha256": mode,
        "x-amz-decoded-content-length": str(len(data)),
        "content-encoding": "aws-chunked",
    }
    if mode.endswith("TRAILER"):
        headers["x-amz-trailer"] = "x-amz-checksum-crc32"
    request = AWSRequest("PUT", url, headers=headers)
    SigV4Auth(Credentials(ACCESS, SECRET), "s3", "us-east-1").add_auth(request)
    signed = dict(request.headers.items())
    amz_date = signed["X-Amz-Date"]
    seed = signed["Authorization"].rsplit("Signature=", 1)[1]
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    skey = _key(SECRET, amz_date[:8])
    body = b""
    previous = seed
    for piece in [*pieces, b""]:
        if mode.startswith("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"):
            to_sign = "\n".join(
                [
                    "AWS4-HMAC-SHA256-PAYLOAD",
                    amz_date,
                    scope,
                    previous,
                    hashlib.sha256(b"").hexdigest(),
                    hashlib.sha256(piece).hexdigest(),
                ]
            )
            previous = hmac.new(skey, to_sign.encode(), hashlib.sha256).hexdigest()
            body += f"{len(piece):x};chunk-signature={previous}\r\n".encode()
        else:
            body += f"{len(piece):x}\r\n".encode()
        body += (
            (piece.replace(b"\x00", b"\x01", 1) if tamper and piece else piece) + b"\r\n" if piece else b""
        )
    if mode.endswith("TRAILER"):
        crc = b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        body += f"x-amz-checksum-crc32:{crc}\r\n\r\n".encode()
    else:
        body += b"\r\n"
    return requests.put(url, data=body, headers=signed, timeout=30)


@pytest.mark.parametrize("mode", ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"])
def test_aws_chunked_bodies(emulator: Any, s3: Any, ingestion: Ingestion, mode: str) -> None:
    data = parquet({"id": list(range(3000)), "v": [f"row {i}" for i in range(3000)]})
    assert len(data) > 3 * 8192
    r = chunked_put(emulator, f"{KEY_PREFIX}chunked/a.parquet", data, mode)
    assert r.status_code == 200, r.text
    got = s3.get_object(Bucket="continuous", Key=f"{KEY_PREFIX}chunked/a.parquet")["Body"].read()
    assert got == data
    ingestion.wait(1)
    assert len(ingestion.rows("chunked", CONN)) == 3000


def test_aws_chunked_tampered_chunk_refused(emulator: Any, s3: Any) -> None:
    data = parquet({"id": list(range(3000))})
    r = chunked_put(
        emulator, f"{KEY_PREFIX}chunked/a.parquet", data, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", tamper=True
    )
    assert r.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in r.text
    assert s3.list_objects_v2(Bucket="continuous", Prefix=KEY_PREFIX)["KeyCount"] == 0


def test_unsigned_payload_and_stale_date(emulator: Any) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = f"{emulator.url}/api/data-ingestion/continuous/{KEY_PREFIX}u/a.parquet"
    data = parquet({"id": [1]})
    request = AWSRequest("PUT", url, data=data, headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    SigV4Auth(Credentials(ACCESS, SECRET), "s3", "us-east-1").add_auth(request)
    assert requests.put(url, data=data, headers=dict(request.headers.items()), timeout=30).status_code == 200
    stale = dict(request.headers.items())
    stale["X-Amz-Date"] = datetime(2020, 1, 1, tzinfo=timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    r = requests.put(url, data=data, headers=stale, timeout=30)
    assert r.status_code == 403
    assert "RequestTimeTooSkewed" in r.text
