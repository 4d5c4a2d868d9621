"""Property-based fuzzing of the running emulator over HTTP (issue 6.7): no input may earn a 5xx.

Random methods, paths (real route templates filled with hostile names, or random segments), headers,
query strings and bodies (JSON shaped like a DataPushJob, random JSON, multipart, raw bytes) go to one
emulator; every answer must be below 500 and the server must stay healthy. The fault-injection routes
are left out: a valid fault asks for a 5xx on purpose (they are covered in ``test_hardening``).
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from airflow_provider_celonis.emulator.server import EmulatorServer
from airflow_provider_celonis.emulator.testing import running_emulator

ADMIN = "fuzz-admin-key-0123456789"
POOL_KEY = "fuzz-pool-key-0123456789"
#: ``FUZZ_EXAMPLES`` and ``FUZZ_SEED`` run a longer or different search (e.g. nightly).
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1500"))
BASES = ("/integration/api/v1/data-push", "/data-ingestion/api/v1/data-push")
HOSTILE = (
    "../x",
    "..",
    "%2e%2e%2fx",
    'a"; DROP TABLE x; --',
    "x'); DROP TABLE jobs; --",
    "x%00",
    "x\x00y",
    "x" * 5000,
    "pööl",
    "表",
    "\U0001f600",
    "a b",
    "a%20b",
    "",
    "-",
    "_",
    "CON",
    "information_schema",
    "main",
    "pool-1",
    "pool-1.json",
    "t.json",
    "t.parquet",
    "t.csv",
    'x".json',
)
#: Route templates and the methods they serve (drawn most of the time; any method otherwise).
TEMPLATES = {
    "{base}/{pool}/jobs": "GET POST",
    "{base}/{pool}/jobs/": "GET POST",
    "{base}/{pool}/jobs/{job}": "GET POST DELETE",
    "{base}/{pool}/jobs/{job}/": "GET POST DELETE",
    "{base}/{pool}/jobs/{job}/cancel": "POST",
    "{base}/{pool}/jobs/{job}/chunks": "GET",
    "{base}/{pool}/jobs/{job}/chunks/upserted": "POST",
    "{base}/{pool}/jobs/{job}/chunks/deleted": "POST",
    "/emulator/api/pools/{pool}/tables": "GET",
    "/emulator/api/pools/{pool}/tables/{table}": "GET",
    "/emulator/api/stats": "GET",
    "/emulator/api/ingestion/status": "GET",
    "/emulator/api/ingestion/errors": "GET",
    "/emulator/health": "GET",
    "/oauth2/token": "POST",
    "/api/data-ingestion/{pool}": "GET HEAD PUT",
    "/api/data-ingestion/{pool}/{table}": "GET HEAD PUT POST DELETE",
    "/api/data-ingestion/continuous/connection/{pool}/{table}/{job}": "GET HEAD PUT POST DELETE",
    "/": "GET",
    "/{pool}": "GET",
}
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")


@dataclass
class Shared:
    """The emulator under fuzz and what the run saw."""

    emu: EmulatorServer
    jobs: list[str] = field(default_factory=list)
    examples: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
def shared() -> Iterator[Shared]:
    with running_emulator(
        app_keys=(ADMIN, f"{POOL_KEY}=pool-1"),
        api_keys=("fuzz-api-key-0123456789",),
        oauth_clients=("fuzz-client:fuzz-secret",),
        ingestion_keys=("AKFUZZ:fuzz-s3-secret:conn-1:pool-1",),
        max_chunk_bytes=256 * 1024,
        execute_per_second=100_000,
        execute_per_hour=1_000_000,
    ) as emu:
        state = Shared(emu)
        session = requests.Session()
        session.headers["Authorization"] = f"AppKey {ADMIN}"
        for target in ("orders", "other"):
            r = session.post(
                f"{emu.url}{BASES[0]}/pool-1/jobs/",
                json={"targetName": target, "type": "DELTA", "fileType": "PARQUET", "keys": ["id"]},
                timeout=10,
            )
            r.raise_for_status()
            state.jobs.append(r.json()["id"])
        # One table exists from the start, so that inspection requests reach DuckDB.
        done = state.jobs[0]
        files = {"file": ("c.parquet", VALID_CHUNKS[0])}
        session.post(
            f"{emu.url}{BASES[0]}/pool-1/jobs/{done}/chunks/upserted", files=files
        ).raise_for_status()
        session.post(f"{emu.url}{BASES[0]}/pool-1/jobs/{done}").raise_for_status()
        yield state
        print(f"\nfuzz: {state.examples} examples, answers by status: {dict(sorted(state.statuses.items()))}")


def _encode(segment: str, raw: bool) -> str:
    """Percent-encode what HTTP cannot carry; ``raw`` leaves printable ASCII (``/``, ``.``, ``%``) alone."""
    if raw:
        return "".join(c if 0x21 <= ord(c) < 0x7F and c not in "?#" else quote(c, safe="") for c in segment)
    return quote(segment, safe="")


def _parquet(columns: dict[str, list[Any]]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf)
    return buf.getvalue()


VALID_CHUNKS = (
    _parquet({"id": [1, 2], "name": ["a", "b"]}),
    _parquet({"ID": [1], "x": [1.5]}),
    _parquet({"other": ["z"]}),
    b"PAR1garbagePAR1",
    b"id,name\n1,a\n",
    b"",
)
names = st.one_of(st.sampled_from(HOSTILE), st.text(min_size=0, max_size=40))
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    names,
)
json_values = st.recursive(
    json_leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(names, inner, max_size=4)),
    max_leaves=12,
)
column = st.fixed_dictionaries(
    {},
    optional={
        "columnName": names,
        "columnType": st.one_of(
            st.sampled_from(["INTEGER", "STRING", "DATE", "FLOAT", "BOOLEAN"]), json_values
        ),
        "fieldLength": st.one_of(st.integers(-5, 10**12), json_values),
        "decimals": st.one_of(st.integers(-5, 40), json_values),
        "pkField": json_values,
    },
)
job_body = st.fixed_dictionaries(
    {},
    optional={
        "targetName": st.one_of(st.sampled_from(["orders", "other", "T-1"]), names, json_values),
        "type": st.one_of(st.sampled_from(["DELTA", "REPLACE"]), json_values),
        "fileType": st.one_of(st.sampled_from(["PARQUET", "CSV"]), json_values),
        "keys": st.one_of(st.lists(st.sampled_from(["id", "ID", "name"]), max_size=2), json_values),
        "upsertStrategy": st.one_of(st.just("UPSERT_WITH_NULLIFICATION"), json_values),
        "fallbackVarcharLength": st.one_of(st.integers(-3, 10**12), json_values),
        "tableSchema": st.one_of(
            st.fixed_dictionaries({"columns": st.lists(column, max_size=3)}), json_values
        ),
        "csvParsingOptions": st.one_of(
            st.dictionaries(
                st.sampled_from(["separatorSequence", "quoteSequence", "charSet", "dateFormat",
                                 "additionalColumnOptions", "lineEnding", "decimalSeparator"]),
                json_values,
                max_size=3,
            ),
            json_values,
        ),
        "connectionId": json_values,
        "mirrorTargetNames": json_values,
    },
)  # fmt: skip
authorization = st.one_of(
    st.sampled_from(
        [
            None,
            *[f"AppKey {ADMIN}"] * 8,
            f"AppKey {POOL_KEY}",
            "Bearer fuzz-api-key-0123456789",
            "AppKey wrong",
            "Bearer wrong",
            "Basic Zm9vOmJhcg==",
            "Basic !!!",
            "AppKey",
            "AWS4-HMAC-SHA256 Credential=AKFUZZ/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, "
            "Signature=" + "0" * 64,
            "AWS4-HMAC-SHA256 Credential=AKFUZZ, SignedHeaders=, Signature=zz",
        ]
    ),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60).map(str.strip),
    st.just(f"AppKey {ADMIN}"),
    st.just(f"AppKey {ADMIN}"),
)
#: Bodies that JSON parsers and validators tend to trip over.
NASTY_BODIES = (
    b'{"targetName": "t", "type": "DELTA", "connectionId": NaN}',
    b'{"targetName": "t", "type": "DELTA", "fallbackVarcharLength": Infinity}',
    b'{"targetName": "t", "type": "DELTA", "keys": ["id"], "tableSchema": {"columns": [{"columnName": "id", '
    b'"fieldLength": 1e400}]}}',
    b"[" * 50_000 + b"]" * 50_000,
    b'{"a": ' * 5_000 + b"1" + b"}" * 5_000,
    b'{"targetName": "t", "type": "DELTA", "csvParsingOptions": {"additionalColumnOptions": [1, "x"]}}',
    b'{"targetName": "t", "type": "DELTA", "tableSchema": {"columns": null}}',
    b'{"targetName": "t", "type": "DELTA", "tableSchema": {"columns": [{"columnName": "a", '
    b'"fieldLength": true}]}}',
    b'{"message": "x", "path": "(", "headers": [1]}',
    b"\xff\xfe\x00{",
    b'"just a string"',
    b"1" * 10_000,
    b"-",
)
content_types = st.sampled_from(
    [
        None,
        "application/json",
        "multipart/form-data; boundary=XyZ",
        "multipart/form-data",
        "multipart/form-data; boundary=" + "b" * 200,
        "multipart/form-data; boundary=",
        "application/x-www-form-urlencoded",
        "text/plain; charset=unknown-8",
        "application/json; charset=utf-16",
    ]
)


@st.composite
def fuzz_requests(draw: st.DrawFn, jobs: list[str]) -> dict[str, Any]:
    template = draw(st.sampled_from(sorted(TEMPLATES)))
    raw = draw(st.booleans())
    # Coherent requests (real pool, job, method and key) get past routing and auth to the handlers.
    coherent = draw(st.booleans())
    values = {
        "base": draw(st.sampled_from(BASES)),
        "pool": _encode(draw(st.one_of(st.sampled_from(["pool-1", "pool-2", "continuous"]), names)), raw),
        "job": _encode(draw(st.one_of(st.sampled_from(jobs), names, st.just(str(uuid.uuid4())))), raw),
        "table": _encode(draw(st.one_of(st.sampled_from(["orders.json", "orders.parquet"]), names)), raw),
    }
    if coherent:
        values["pool"] = "continuous" if template.startswith("/api/") else "pool-1"
        values["job"] = draw(st.sampled_from(jobs))
        values["table"] = draw(st.sampled_from(["orders.json", "orders.parquet", "ORDERS.json", "nope.json"]))
    path = template.format(**values)
    allowed = TEMPLATES[template].split()
    method = draw(st.sampled_from(allowed if coherent else allowed * 6 + list(METHODS)))
    headers: dict[str, str] = {}
    if (auth := f"AppKey {ADMIN}" if coherent else draw(authorization)) is not None:
        headers["Authorization"] = auth
    kind = draw(st.sampled_from(["none", "job", "job", "json", "multipart", "bytes", "form", "nasty"]))
    body: bytes | None = None
    if kind == "job":
        body = _json_bytes(draw(job_body))
        headers["Content-Type"] = "application/json"
    elif kind == "json":
        body = _json_bytes(draw(json_values))
    elif kind == "multipart":
        body, headers["Content-Type"] = _multipart(draw)
    elif kind == "nasty":
        body = draw(st.sampled_from(NASTY_BODIES))
    elif kind == "bytes":
        body = draw(st.binary(max_size=300))
    elif kind == "form":
        body = draw(st.sampled_from([b"grant_type=client_credentials", b"grant_type=x&scope=a%ZZ", b"%%%"]))
        if draw(st.booleans()):
            body += b"&client_id=fuzz-client&client_secret=fuzz-secret"
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if (ctype := draw(content_types)) is not None and draw(st.booleans()):
        headers["Content-Type"] = ctype
    query = draw(
        st.dictionaries(
            st.sampled_from(["duplicateRemovalColumn", "limit", "uploadId", "partNumber", "uploads", "x"]),
            st.one_of(names, st.sampled_from(["1", "0", "99999999999999999999999", "id", "-1"])),
            max_size=2,
        )
    )
    return {"method": method, "path": path, "headers": headers, "body": body, "query": query}


def _json_bytes(value: Any) -> bytes:
    import json

    return json.dumps(value).encode()


def _multipart(draw: st.DrawFn) -> tuple[bytes, str]:
    boundary = draw(st.sampled_from(["XyZ", "----fuzz", "b" * 70]))
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        field_name = draw(st.sampled_from(["file", "chunk", "other", '"', ""]))
        data = draw(st.one_of(st.sampled_from(VALID_CHUNKS), st.binary(max_size=200)))
        header = f'Content-Disposition: form-data; name="{field_name}"; filename="c.parquet"\r\n'
        parts.append(f"--{boundary}\r\n{header}\r\n".encode() + data + b"\r\n")
    ending = draw(st.sampled_from([f"--{boundary}--\r\n", "", f"--{boundary}", "--wrong--\r\n"]))
    return b"".join(parts) + ending.encode(), f"multipart/form-data; boundary={boundary}"


def send(emu: EmulatorServer, req: dict[str, Any]) -> requests.Response:
    """Send with the path exactly as drawn (requests would normalise it)."""
    prepared = requests.Request(
        req["method"], emu.url + "/", headers=req["headers"], data=req["body"], params=req["query"]
    ).prepare()
    url = prepared.url or ""
    query = url.split("?", 1)[1] if "?" in url else ""
    prepared.url = emu.url + req["path"] + (f"?{query}" if query else "")
    with requests.Session() as session:
        return session.send(prepared, timeout=30)


def test_fuzz_no_5xx(shared: Shared) -> None:
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize="FUZZ_SEED" not in os.environ,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(req=fuzz_requests(shared.jobs))
    @seed(int(os.environ.get("FUZZ_SEED", "0")))
    def check(req: dict[str, Any]) -> None:
        shared.examples += 1
        try:
            response = send(shared.emu, req)
        except requests.ConnectionError:
            # Only an over-long request line or header may be refused by closing the connection.
            assert len(req["path"]) > 4000 or any(len(v) > 4000 for v in req["headers"].values()), req
            return
        shared.statuses[response.status_code] = shared.statuses.get(response.status_code, 0) + 1
        if os.environ.get("FUZZ_COLLECT"):
            return
        assert response.status_code < 500, (req, response.status_code, response.text[:500])

    check()
    health = requests.get(f"{shared.emu.url}/emulator/health", timeout=10)
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    stats = requests.get(f"{shared.emu.url}/emulator/api/stats", headers={"Authorization": f"AppKey {ADMIN}"})
    assert stats.status_code == 200
    assert shared.examples >= MAX_EXAMPLES // 2
