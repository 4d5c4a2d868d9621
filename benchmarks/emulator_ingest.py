"""Measure the emulator's ingest speed: chunk upload MB/s and job execution MB/s for one big push.

Starts ``celonis-emulator`` in a subprocess (so client and server do not share a GIL), generates a parquet
file of ``--size`` with pyarrow, uploads it as one chunk (streamed), executes a REPLACE job and polls it.
The last line printed is JSON with the figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import requests
from requests_toolbelt import MultipartEncoder

from airflow_provider_celonis.emulator.settings import parse_size
from airflow_provider_celonis.emulator.testing import emulator_process

ROWS_PER_GROUP = 500_000


def make_parquet(path: Path, size: int) -> int:
    """Write row groups of random data until the file reaches ``size`` bytes; returns the row count."""
    rng = np.random.default_rng(42)
    schema = pa.schema(
        [("id", pa.int64()), ("amount", pa.float64()), ("name", pa.string()), ("ts", pa.timestamp("ms"))]
    )
    rows = 0
    with pq.ParquetWriter(path, schema, compression="snappy") as writer:
        while path.stat().st_size < size:
            n = ROWS_PER_GROUP
            names = rng.integers(0, 1 << 62, n).astype(str)
            batch = pa.table(
                {
                    "id": pa.array(np.arange(rows, rows + n, dtype=np.int64)),
                    "amount": pa.array(rng.random(n) * 1000),
                    "name": pa.array(names),
                    "ts": pa.array(rng.integers(1_600_000_000_000, 1_700_000_000_000, n), pa.timestamp("ms")),
                },
                schema=schema,
            )
            writer.write_table(batch)
            rows += n
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="1GB", help="parquet size, e.g. 256MB or 1GB")
    args = parser.parse_args()
    size = parse_size(args.size)
    with tempfile.TemporaryDirectory(prefix="emulator-bench-") as tmp:
        work = Path(tmp)
        chunk = work / "chunk.parquet"
        t0 = time.perf_counter()
        rows = make_parquet(chunk, size)
        file_mb = chunk.stat().st_size / 1e6
        print(f"generated {file_mb:.0f} MB, {rows} rows in {time.perf_counter() - t0:.1f}s", flush=True)
        max_chunk = str(chunk.stat().st_size + (1 << 20))
        options = ("--data-dir", str(work / "data"), "--app-key", "bench", "--max-chunk-bytes", max_chunk)
        with emulator_process(*options) as (_, url):
            session = requests.Session()
            session.headers["Authorization"] = "AppKey bench"
            base = f"{url}/integration/api/v1/data-push/bench/jobs/"
            job = session.post(
                base, json={"targetName": "bench", "type": "REPLACE", "fileType": "PARQUET"}
            ).json()
            with open(chunk, "rb") as fh:
                body = MultipartEncoder({"file": ("chunk.parquet", fh, "application/octet-stream")})
                t0 = time.perf_counter()
                r = session.post(
                    f"{base}{job['id']}/chunks/upserted",
                    data=body,
                    headers={"Content-Type": body.content_type},
                )
                upload_s = time.perf_counter() - t0
            r.raise_for_status()
            print(f"upload: {file_mb / upload_s:.0f} MB/s ({upload_s:.1f}s)", flush=True)
            t0 = time.perf_counter()
            session.post(f"{base}{job['id']}").raise_for_status()
            while (status := session.get(f"{base}{job['id']}").json())["status"] not in {"DONE", "ERROR"}:
                time.sleep(0.05)
            execute_s = time.perf_counter() - t0
            assert status["status"] == "DONE", status["logs"]
            print(
                f"execute: {file_mb / execute_s:.0f} MB/s ({execute_s:.1f}s), logs {status['logs']}",
                flush=True,
            )
            figures = {
                "size_mb": round(file_mb, 1),
                "rows": rows,
                "upload_mb_s": round(file_mb / upload_s, 1),
                "upload_s": round(upload_s, 2),
                "execute_mb_s": round(file_mb / execute_s, 1),
                "execute_s": round(execute_s, 2),
            }
            print(json.dumps(figures))


if __name__ == "__main__":
    main()
