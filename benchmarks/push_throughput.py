"""Push throughput: our data path against the parquet-writing limit and the pycelonis way.

One run measures, each in its own process (so peak RSS is that of one contender alone):

* ``limit``: pyarrow reads the CSV and writes parquet to a discarded sink, with the reader options and
  parquet settings of our data path, no HTTP: the most any CSV -> parquet push can do on this machine;
* ``ours``: ``PushJob`` (what ``DataPushOperator`` runs) with a ``CelonisHook`` pushing the CSV to a
  local emulator (its own process); the upload is timed, execution is reported separately;
* ``baseline``: what pycelonis does: pandas reads the whole file, each 100,000-row slice is written to an
  in-memory parquet (snappy, INT96 timestamps) and posted with ``requests`` one after another.

The CSV (integers, floats, non-ASCII strings with quotes, commas and embedded newlines, timestamps, NULLs)
is generated once per size and cached under ``benchmarks/out/``. MB/s are input (CSV) MB per second.

    python benchmarks/push_throughput.py --size 1GB --json
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import logging
import os
import pstats
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import APP_KEY, OUT, POOL, EmulatorProcess, parse_size, peak_rss_mb, require_chart_library

BASELINE_ROWS = 100_000
GEN_ROWS = 200_000
WORDS = [
    "Müller",
    "Ørsted & Søn",
    'say "hello"',
    "comma, inside",
    "two\nlines",
    "日本語テキスト",
    "Ελληνικά",
    "naïve café",
    "plain",
    "emoji 🚚 delivery",
]


# -- the input -------------------------------------------------------------------------------------


def synthetic_csv(size: int) -> Path:
    """A CSV of at least ``size`` bytes, cached: generating 4 GB takes longer than pushing it."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    OUT.mkdir(parents=True, exist_ok=True)
    path: Path = OUT / f"synthetic-{size}.csv"
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp")
    rng = np.random.default_rng(7)
    words = pa.array(WORDS)
    start = np.datetime64("2020-01-01T00:00:00.000", "ms")
    rows = 0
    with pacsv.CSVWriter(str(tmp), _schema()) as writer:
        while tmp.stat().st_size < size:
            n = GEN_ROWS
            ids = np.arange(rows, rows + n, dtype=np.int64)
            null = rng.random(n) < 0.05
            picks = pc.take(words, pa.array(rng.integers(0, len(WORDS), n)))
            text = pc.binary_join_element_wise(picks, pa.array(ids).cast(pa.string()), " #")
            batch = pa.record_batch(
                [
                    pa.array(ids),
                    pa.array(rng.normal(1000, 300, n).round(2), mask=null),
                    pa.array(rng.integers(-5, 10_000, n), mask=rng.random(n) < 0.05),
                    text,
                    pa.array(rng.choice(np.array(["open", "closed", "on hold"]), n)),
                    pa.array(
                        start + rng.integers(0, 4 * 365 * 86_400_000, n).astype("timedelta64[ms]"), mask=null
                    ),
                    pa.array(rng.random(n) < 0.5),
                ],
                schema=_schema(),
            )
            writer.write_batch(batch)
            rows += n
    tmp.rename(path)
    return path


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.int64()),
            ("amount", pa.float64()),
            ("quantity", pa.int64()),
            ("description", pa.string()),
            ("status", pa.string()),
            ("created_at", pa.timestamp("ms")),
            ("flag", pa.bool_()),
        ]
    )


# -- the contenders (each runs in a child process) -------------------------------------------------


def cpu_seconds() -> float:
    """CPU time of this process so far, every thread (a contender's work: the difference of two)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def start_clock() -> tuple[float, float]:
    """The wall clock and CPU time a contender's work is measured from, taken after a full garbage collection.

    A fresh process' first full collection walks every object its imports made (with Airflow's modules,
    ~0.25 s on one core here, 2026-12-05) and comes whenever enough objects were allocated since: in the
    middle of a contender's work or not, by chance. Start-up is not the work, so every contender pays it
    before its clock starts.
    """
    gc.collect()
    return time.perf_counter(), cpu_seconds()


def run_limit(csv: Path, chunk: int) -> dict[str, Any]:  # noqa: ARG001 - the contenders share one signature
    import pyarrow as pa
    import pyarrow.parquet as pq

    from airflow_provider_celonis.datapath.chunks import (
        DICTIONARY_SAMPLE_ROWS,
        PARQUET_OPTIONS,
        dictionary_columns,
    )
    from airflow_provider_celonis.datapath.memory import data_pool
    from airflow_provider_celonis.datapath.schema import conform, plan_schema
    from airflow_provider_celonis.datapath.sources import open_source

    started, cpu = start_clock()
    source = open_source(str(csv))
    plan = plan_schema(source.schema)
    sink = pa.MockOutputStream()
    writer = None
    held: list[Any] = []
    held_rows = 0

    def write_held() -> None:
        # The chunker's settings: dictionary encoding for the columns that repeat in the first rows, row
        # groups of several blocks.
        nonlocal writer, held, held_rows
        table = pa.Table.from_batches(held)
        if writer is None:
            options = {**PARQUET_OPTIONS, "use_dictionary": dictionary_columns(table) or False}
            writer = pq.ParquetWriter(sink, plan.target, memory_pool=data_pool(), **options)
        writer.write_table(table, row_group_size=max(table.num_rows, 1))
        held, held_rows = [], 0

    for batch in source.batches():
        held.append(conform(batch, plan, "limit"))
        held_rows += batch.num_rows
        if held_rows >= DICTIONARY_SAMPLE_ROWS:
            write_held()
    if held:
        write_held()
    if writer is not None:
        writer.close()
    return {
        "seconds": time.perf_counter() - started,
        "work_cpu_s": cpu_seconds() - cpu,
        "parquet_bytes": sink.size(),
    }


def _hook(url: str) -> Any:
    os.environ["AIRFLOW_CONN_CELONIS_BENCH"] = json.dumps(
        {"conn_type": "celonis", "host": url, "password": APP_KEY, "extra": {"data_pool_id": POOL}}
    )
    from airflow_provider_celonis.hooks.celonis import CelonisHook

    return CelonisHook("celonis_bench")


#: With STRING lengths given, the job is created first and chunks upload while the next is written.
KNOWN_SCHEMA = [
    {"columnName": "description", "columnType": "STRING", "fieldLength": 200},
    {"columnName": "status", "columnType": "STRING", "fieldLength": 20},
]


def run_ours(
    csv: Path, chunk: int, url: str, profile: bool, known_schema: bool = False, **spec_options: Any
) -> dict[str, Any]:
    # A task runs in a process forked from Airflow's supervisor, so the module the first connection lookup
    # imports (``airflow.sdk.execution_time.supervisor``, 20-25 ms) is loaded there before the push starts.
    import airflow.sdk.execution_time.supervisor  # noqa: F401

    from airflow_provider_celonis.datapath.job import PushJob
    from airflow_provider_celonis.datapath.pipeline import PushSpec, prepare
    from airflow_provider_celonis.datapath.sources import open_source

    hook = _hook(url)
    log = logging.getLogger("bench.ours")
    spec = PushSpec(
        target_table="bench_ours",
        job_type="REPLACE",
        chunk_size_bytes=chunk,
        table_schema=KNOWN_SCHEMA if known_schema else None,
        **spec_options,  # e.g. compression (benchmarks/push_over_link.py)
    )
    profiler = cProfile.Profile() if profile else None
    first_byte: list[float] = []
    upload_chunk = hook.upload_chunk

    def timed_upload(*args: Any, **kwargs: Any) -> Any:
        first_byte.append(first_byte[0] if first_byte else time.perf_counter())
        return upload_chunk(*args, **kwargs)

    hook.upload_chunk = timed_upload
    started, cpu = start_clock()
    if profiler:
        profiler.enable()
    job = PushJob(hook, POOL, spec, log, workdir=OUT)
    with job.access_checked():  # as DataPushOperator does: the access check beside the source's first look
        parts = prepare(spec, POOL, open_source(str(csv)), None, log)
    report = job.push(parts)
    uploaded, work_cpu = time.perf_counter(), cpu_seconds() - cpu
    if profiler:
        profiler.disable()
        profiler.dump_stats(str(OUT / "ours.prof"))
        stats = pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime")
        stats.print_stats(25)
    hook.execute_job(report.job_id, POOL)
    job = hook.wait_for_job(report.job_id, POOL, poll_interval=0.5)
    return {
        "seconds": uploaded - started,
        "first_byte_s": first_byte[0] - started if first_byte else None,
        "work_cpu_s": work_cpu,
        "execute_seconds": time.perf_counter() - uploaded,
        "status": job.get("status"),
        "chunks": report.chunks,
        "rows": report.rows,
        "parquet_bytes": report.bytes,
    }


def run_baseline(csv: Path, url: str) -> dict[str, Any]:
    import pandas as pd
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"AppKey {APP_KEY}"
    jobs = f"{url}/data-ingestion/api/v1/data-push/{POOL}/jobs/"
    with open(
        csv, encoding="utf-8"
    ) as handle:  # the synthetic file's timestamps; a user's file as pandas reads it
        dates = [c for c in ["created_at"] if c in handle.readline().rstrip("\r\n").split(",")]
    started, cpu = start_clock()
    first_byte = 0.0
    frame = pd.read_csv(csv, parse_dates=dates)
    job = session.post(
        jobs,
        json={"targetName": "bench_baseline", "type": "REPLACE", "fileType": "PARQUET", "dataPoolId": POOL},
    )
    job.raise_for_status()
    job_id = job.json()["id"]
    sent = 0
    for offset in range(0, len(frame), BASELINE_ROWS):
        buffer = io.BytesIO()
        frame.iloc[offset : offset + BASELINE_ROWS].to_parquet(
            buffer, engine="pyarrow", compression="snappy", index=False, use_deprecated_int96_timestamps=True
        )
        body = buffer.getvalue()
        first_byte = first_byte or time.perf_counter()
        answer = session.post(f"{jobs}{job_id}/chunks/upserted", files={"file": ("chunk.parquet", body)})
        answer.raise_for_status()
        sent += len(body)
    uploaded, work_cpu = time.perf_counter(), cpu_seconds() - cpu
    session.post(f"{jobs}{job_id}").raise_for_status()
    status = "NEW"
    while status not in ("DONE", "ERROR", "CANCELED"):
        time.sleep(0.5)
        status = session.get(f"{jobs}{job_id}").json()["status"]
    return {
        "seconds": uploaded - started,
        "first_byte_s": first_byte - started if first_byte else None,
        "work_cpu_s": work_cpu,
        "execute_seconds": time.perf_counter() - uploaded,
        "status": status,
        "rows": len(frame),
        "parquet_bytes": sent,
    }


def child(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    csv = Path(args.csv)
    if args.child == "limit":
        result = run_limit(csv, args.chunk_size)
    elif args.child in ("ours", "ours_known_schema"):
        result = run_ours(csv, args.chunk_size, args.url, args.profile, args.child == "ours_known_schema")
    else:
        result = run_baseline(csv, args.url)
    result["peak_rss_mb"] = peak_rss_mb()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 2)  # steadier than wall time on a busy box
    print(json.dumps(result), flush=True)


# -- the driver ------------------------------------------------------------------------------------


def measure(mode: str, csv: Path, chunk: int, url: str, profile: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", mode, "--csv", str(csv), "--chunk-size", str(chunk)]
    cmd += ["--url", url] + (["--profile"] if profile else [])
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{mode:>8}: {json.dumps(result)}", file=sys.stderr, flush=True)
    return dict(result)


def run_size(size: int, chunk: int, modes: list[str], profile: bool) -> dict[str, Any]:
    """Measure every mode on one input size; returns the figures (see the module docstring)."""
    csv = synthetic_csv(size)
    input_bytes = csv.stat().st_size
    data_dir = OUT / f"emulator-{os.getpid()}"
    results: dict[str, dict[str, Any]] = {}
    try:
        with EmulatorProcess(data_dir, ["--max-chunk-bytes", "1GiB"]) as emulator:
            for mode in modes:
                results[mode] = measure(mode, csv, chunk, emulator.url, profile and mode.startswith("ours"))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    def mb_s(mode: str) -> float | None:
        return round(input_bytes / 1e6 / results[mode]["seconds"], 1) if mode in results else None

    def rss(mode: str) -> float | None:
        return round(results[mode]["peak_rss_mb"], 1) if mode in results else None

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a and b else None

    for mode, result in results.items():
        print(
            f"{mode}: {input_bytes / 1e6:.0f} MB in {result['seconds']:.1f}s, peak RSS {result['peak_rss_mb']:.0f} MB",
            file=sys.stderr,
        )
    return {
        "input_bytes": input_bytes,
        "chunk_size_bytes": chunk,
        "limit_mb_s": mb_s("limit"),
        "ours_mb_s": mb_s("ours"),
        "baseline_mb_s": mb_s("baseline"),
        "ours_peak_rss_mb": rss("ours"),
        "baseline_peak_rss_mb": rss("baseline"),
        "ours_vs_limit": ratio(mb_s("ours"), mb_s("limit")),
        "ours_vs_baseline": ratio(mb_s("ours"), mb_s("baseline")),
        "ours_execute_seconds": round(results["ours"]["execute_seconds"], 1) if "ours" in results else None,
        "limit_peak_rss_mb": rss("limit"),
        "ours_known_schema_mb_s": mb_s("ours_known_schema"),
        "ours_known_schema_vs_limit": ratio(mb_s("ours_known_schema"), mb_s("limit")),
        "ours_known_schema_peak_rss_mb": rss("ours_known_schema"),
        # CPU seconds of each process: steadier than wall time when other work shares the cores.
        "limit_cpu_s": results["limit"]["cpu_seconds"] if "limit" in results else None,
        "ours_cpu_s": results["ours"]["cpu_seconds"] if "ours" in results else None,
        "baseline_cpu_s": results["baseline"]["cpu_seconds"] if "baseline" in results else None,
    }


def draw_chart(sweep: list[dict[str, Any]], path: Path) -> None:
    """Throughput and peak RSS against input size (needs matplotlib; the benchmark itself does not)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{row['input_bytes'] / 1e9:.2g} GB" for row in sweep]
    sizes = list(range(len(sweep)))  # evenly spaced: the sizes grow 4x per step
    fig, (speed, memory) = plt.subplots(1, 2, figsize=(11, 4.2))
    series = [
        ("limit_mb_s", None, "limit (pyarrow CSV -> parquet, no HTTP)", "0.6"),
        ("ours_mb_s", "ours_peak_rss_mb", "ours (default: STRING lengths measured)", "tab:blue"),
        (
            "ours_known_schema_mb_s",
            "ours_known_schema_peak_rss_mb",
            "ours (STRING lengths given)",
            "tab:green",
        ),
        ("baseline_mb_s", "baseline_peak_rss_mb", "baseline (pycelonis way)", "tab:red"),
    ]
    for speed_key, rss_key, label, color in series:
        if any(row.get(speed_key) for row in sweep):
            speed.plot(sizes, [row.get(speed_key) for row in sweep], "o-", label=label, color=color)
        if rss_key and any(row.get(rss_key) for row in sweep):
            memory.plot(sizes, [row.get(rss_key) for row in sweep], "o-", label=label, color=color)
    target = 2.5 * sweep[0]["chunk_size_bytes"] / 2**20 + 300
    memory.axhline(target, color="tab:blue", linestyle=":", label=f"target for ours ({target:.0f} MB)")
    speed.set(title="Throughput (input CSV MB/s, higher is better)", xlabel="input CSV size", ylabel="MB/s")
    speed.set_ylim(bottom=0)
    memory.set(title="Peak RSS of the pushing process (log scale)", xlabel="input CSV size", ylabel="MB")
    memory.set_yscale("log")
    for axis in (speed, memory):
        axis.set_xticks(sizes, labels)
        axis.grid(alpha=0.3)
    speed.legend(fontsize=8)
    memory.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="1GB", help="CSV size, e.g. 256MB, 1GB, 4GB (default 1GB)")
    parser.add_argument("--chunk-size", default="128MiB", help="our chunk size cap (default 128MiB)")
    parser.add_argument(
        "--modes",
        default="limit,ours,ours_known_schema,baseline",
        help="comma-separated subset; ours_known_schema pushes with STRING lengths given (job created first)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile ours; stats to stderr and out/ours.prof"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object, last")
    parser.add_argument(
        "--sweep", help="comma-separated sizes: one JSON line per size, kept in out/sweep.json"
    )
    parser.add_argument("--chart", help="draw throughput/RSS against size into this PNG (needs matplotlib)")
    parser.add_argument(
        "--child", choices=["limit", "ours", "ours_known_schema", "baseline"], help=argparse.SUPPRESS
    )
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.chunk_size = int(args.chunk_size)
        child(args)
        return
    require_chart_library(parser, args.chart)
    chunk = parse_size(args.chunk_size)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if args.chart and not args.sweep:
        draw_chart(json.loads((OUT / "sweep.json").read_text()), Path(args.chart))
        return
    if args.sweep:
        sweep = [run_size(parse_size(size), chunk, modes, args.profile) for size in args.sweep.split(",")]
        (OUT / "sweep.json").write_text(json.dumps(sweep, indent=1))
        for row in sweep:
            print(json.dumps(row))
        if args.chart:
            draw_chart(sweep, Path(args.chart))
        return
    figures = run_size(parse_size(args.size), chunk, modes, args.profile)
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
