"""Push time over a bandwidth-limited link: where a real Celonis push spends its time.

Loopback costs nothing, a real push crosses the internet. This benchmark runs the emulator and the push
inside a network namespace whose loopback is shaped with the kernel's token-bucket filter
(``tc qdisc ... tbf rate 100mbit`` / ``1gbit``), and reports per link speed, in one run:

* ``conversion``: our data path with no HTTP (``prepare`` + ``parquet_chunks``: read, conform, measure
  STRING lengths, write the chunk files): the CPU bound of a push; ``limit`` is
  ``push_throughput.run_limit`` (pyarrow CSV -> parquet to a discarded sink), for reference;
* ``wire``: the bytes the default push sent, divided by the link rate: the network bound
  (``wire_measured``: the same bytes sent raw over one TCP connection on the shaped link);
* ``default``: ``PushJob`` as ``DataPushOperator`` runs it, no ``table_schema`` (STRING lengths measured);
* ``schema``: the same with STRING lengths given (``table_schema``);
* ``zstd`` / ``none``: the default push with another chunk ``compression``;
* ``baseline``: the pycelonis way (``push_throughput.run_baseline``);

each with bytes on the wire, peak RSS, time to first byte and CPU-seconds per input GB (work only). One input
(``--size``), a sweep (``--sizes 50MB,200MB,1GB,4GB``) or the user's file (``--csv PATH``); the last line is one
JSON object keyed by input and link speed (``default_vs_bound``, ``baseline_vs_default``,
``conversion_vs_limit``, ``first_byte_s``, ``*_cpu_s_per_gb``, ...). The input is read once first (page
cache). Over each link, conversion and limit take turns with the contenders, beside the running emulator, so a
noisy moment hits the bound as well as the push; below 1 GB each runs three times, reporting its fastest run.
Every run starts with ``sync``, so the last one's writes are not flushed on the client's core during it.

A real Celonis receives on its own machines, so by default (``--cpus split``) the emulator is pinned to the
last CPU and every contender, conversion alone included, to the others: the bound and the push are measured
on the same cores, and the server's work is not counted against the client (the loopback's receive path
included: ``ShapedNamespace.steer_receive``). ``--cpus shared`` lets both
use every CPU (the emulator niced), as before.
Needs root (network namespaces, tc) and iproute2; when it cannot shape the link it says so and exits 1.

    python benchmarks/push_over_link.py --sizes 50MB,200MB,1GB,4GB
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import APP_KEY, OUT, POOL, EmulatorProcess, parse_size, peak_rss_mb, require_chart_library
from push_throughput import cpu_seconds, run_baseline, run_limit, run_ours, start_clock, synthetic_csv

#: Link speed -> tbf parameters (burst must cover one timer tick at the rate; loopback's MTU is 64 KiB).
LINKS = {
    "100mbit": {"bits_per_s": 100e6, "burst": "256kb", "latency": "50ms"},
    "1gbit": {"bits_per_s": 1e9, "burst": "2mb", "latency": "50ms"},
}
#: (name, run_ours keyword arguments) pushed over each link, besides the baseline.
OURS = {
    "default": {},
    "schema": {"known_schema": True},
    "zstd": {"compression": "zstd"},
    "none": {"compression": "none"},
}


class CannotShape(RuntimeError):
    pass


def _run(*cmd: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise CannotShape(f"`{' '.join(cmd)}` failed: {done.stderr.strip() or done.stdout.strip()}")


def ensure_iproute2() -> None:
    """``ip`` and ``tc``; installed with apt-get when missing (CI machines are fresh)."""
    if shutil.which("ip") and shutil.which("tc"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("iproute2 is missing: apt-get install -y iproute2", file=sys.stderr, flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=False, stdout=subprocess.DEVNULL)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "iproute2"], check=False, stdout=subprocess.DEVNULL
        )
    if not (shutil.which("ip") and shutil.which("tc")):
        raise CannotShape("iproute2 (ip, tc) is not installed and could not be installed")


class ShapedNamespace:
    """A network namespace whose loopback is shaped by tbf; ``shape`` changes the rate in place."""

    def __init__(self) -> None:
        if os.geteuid() != 0:
            raise CannotShape("shaping a link needs root (ip netns, tc)")
        ensure_iproute2()
        self.name = f"celonis-link-{os.getpid()}"
        #: Whether the current link's receive work was steered to the emulator's core (reported with every link's figures).
        self.receive_steered = False
        _run("ip", "netns", "add", self.name)
        try:
            _run("ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up")
        except CannotShape:
            self.close()
            raise

    def shape(self, link: str) -> None:
        params = LINKS[link]
        rate = link
        _run(
            *("ip", "netns", "exec", self.name, "tc", "qdisc", "replace", "dev", "lo", "root", "tbf"),
            *("rate", rate, "burst", str(params["burst"]), "latency", str(params["latency"])),
        )

    def steer_receive(self, cpus: str) -> bool:
        """The receiving end's kernel work onto ``cpus`` (a ``taskset`` list), as on the server's own machine.

        Over loopback, a packet is received in the sender's softirq, on the sender's core: the client would pay
        for the server's TCP receive path too (~0.3 CPU-s of a 210 MB push at 1 Gbit/s, 2026-12-04). Receive Packet
        Steering on the namespace's ``lo`` moves that work to the emulator's core; the sender's own
        transmit path stays on the client's. False when the kernel has no RPS (then nothing moves).
        """
        mask = sum(1 << int(cpu) for cpu in cpus.split(","))
        path = "/sys/class/net/lo/queues/rx-0/rps_cpus"
        try:
            _run("ip", "netns", "exec", self.name, "sh", "-c", f"echo {mask:x} > {path}")
        except CannotShape as exc:
            print(f"push_over_link: receive work stays on the sender's core: {exc}", file=sys.stderr)
            return False
        return True

    def close(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)


# -- children: one contender per process, so peak RSS is its own ---------------------------------


def run_conversion(csv: Path, chunk: int) -> dict[str, Any]:
    """What the default push does before and besides the upload: chunk files written, nothing sent."""
    import logging

    from airflow_provider_celonis.datapath.pipeline import PushSpec, parquet_chunks, prepare
    from airflow_provider_celonis.datapath.sources import open_source

    log = logging.getLogger("bench.conversion")
    spec = PushSpec(target_table="bench_conversion", job_type="REPLACE", chunk_size_bytes=chunk)
    workdir = Path(tempfile.mkdtemp(prefix="conversion-", dir=OUT))
    (started, cpu), written = start_clock(), 0
    try:
        [part] = prepare(spec, POOL, open_source(str(csv)), None, log)
        for done in parquet_chunks(part, workdir, spec, log):
            written += done.size
            done.path.unlink()  # as the push does once a chunk is uploaded: no dirty pages left to write back
        seconds, work_cpu = time.perf_counter() - started, cpu_seconds() - cpu
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"seconds": seconds, "work_cpu_s": work_cpu, "parquet_bytes": written}


def run_warmup(url: str) -> dict[str, Any]:
    """A tiny push each way, so that no contender pays for the emulator's first requests."""
    import pandas as pd

    tiny = OUT / "warmup.csv"
    pd.DataFrame({"id": [1, 2], "text": ["a", "b"], "created_at": ["2024-01-01"] * 2}).to_csv(
        tiny, index=False
    )
    run_baseline(tiny, url)
    figures: dict[str, Any] = run_ours(tiny, 1 << 20, url, False)
    return figures


INGESTION = ("bench-ak", "bench-sk", "bench-conn")


def run_ingestion(size: int, url: str, concurrency: int) -> dict[str, Any]:
    """``size`` bytes as one object through ``CelonisDataIngestionHook.upload_file`` (boto3 multipart,
    ``concurrency`` parts at a time); only the transfer is timed."""
    access, secret, connection = INGESTION
    os.environ["AIRFLOW_CONN_CELONIS_INGEST_BENCH"] = json.dumps(
        {
            "conn_type": "celonis_data_ingestion",
            "host": url,
            "login": access,
            "password": secret,
            "extra": {"connection_id": connection, "region": "us-east-1"},  # the emulator's default
        }
    )
    import pyarrow as pa
    import pyarrow.parquet as pq

    from airflow_provider_celonis.hooks.data_ingestion import CelonisDataIngestionHook

    path = OUT / f"ingestion-{os.getpid()}.parquet"
    rows = max(1, size // (64 << 10))  # uncompressed, as the ingestion API wants: 64 KiB of text a row
    text = pa.array(["x" * (64 << 10)] * rows)
    table = pa.table({"id": range(rows), "payload": text})
    pq.write_table(table, path, compression="NONE", use_dictionary=False)
    size = path.stat().st_size
    try:
        hook = CelonisDataIngestionHook("celonis_ingest_bench")
        started = time.perf_counter()
        hook.upload_file(path, "bench_ingestion", f"c{concurrency}.parquet", max_concurrency=concurrency)
        return {"seconds": time.perf_counter() - started, "parquet_bytes": size}
    finally:
        path.unlink(missing_ok=True)


def run_wire(size: int) -> dict[str, Any]:
    """``size`` bytes over one TCP connection through the (shaped) loopback: the link's real pace."""
    server = socket.create_server(("127.0.0.1", 0))

    def sink() -> None:
        conn, _ = server.accept()
        with conn:
            while conn.recv(1 << 20):
                pass

    reader = threading.Thread(target=sink, daemon=True)
    reader.start()
    block = b"\0" * (1 << 20)
    started = time.perf_counter()
    with socket.create_connection(server.getsockname()) as conn:
        left = size
        while left > 0:
            conn.sendall(block[: min(left, len(block))])
            left -= len(block)
        conn.shutdown(socket.SHUT_WR)
        reader.join()
    return {"seconds": time.perf_counter() - started, "parquet_bytes": size}


def child(args: argparse.Namespace) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    csv, chunk = Path(args.input), int(args.chunk_size)
    if args.child == "conversion":
        result = run_conversion(csv, chunk)
    elif args.child == "limit":
        result = run_limit(csv, chunk)
    elif args.child == "warmup":
        result = run_warmup(args.url)
    elif args.child == "wire":
        result = run_wire(int(args.url))
    elif args.child.startswith("ingestion"):
        size, url = args.url.split(",", 1)
        result = run_ingestion(int(size), url, int(args.child.removeprefix("ingestion_c")))
    elif args.child == "baseline":
        result = run_baseline(csv, args.url)
    else:
        result = run_ours(csv, chunk, args.url, False, **OURS[args.child])  # type: ignore[arg-type]
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 2)
    result["cpu_sys_seconds"] = round(usage.ru_stime, 2)  # the kernel's: sockets, the shaped link, files
    print(json.dumps(result), flush=True)


#: CPU sets as ``taskset -c`` lists: (client, server), or None when both share every CPU.
CpuSplit = tuple[str, str] | None


def split_cpus(mode: str) -> CpuSplit:
    """``split``: the last CPU for the emulator, the others for the contenders (needs 2 CPUs and taskset)."""
    cpus = sorted(os.sched_getaffinity(0))
    if mode == "shared":
        return None
    if len(cpus) < 2 or not shutil.which("taskset"):
        raise CannotShape("--cpus split needs at least 2 CPUs and taskset (util-linux); use --cpus shared")
    return ",".join(map(str, cpus[:-1])), str(cpus[-1])


def pinned(cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus] if cpus else []


def measure(
    mode: str,
    csv: Path,
    chunk: int,
    url: str = "",
    namespace: str | None = None,
    cpus: str | None = None,
) -> dict[str, Any]:
    # What the last run wrote (the emulator's chunks and tables, our chunk files) goes to disk now, not as
    # the kernel's writeback on the client's core in the middle of this one.
    os.sync()
    cmd = [sys.executable, __file__, "--child", mode, "--input", str(csv), "--chunk-size", str(chunk)]
    cmd = [*pinned(cpus), *cmd, "--url", url]
    if namespace:
        cmd = ["ip", "netns", "exec", namespace, *cmd]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
    result = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"{mode:>10}: {json.dumps(result)}", file=sys.stderr, flush=True)
    return result


def fastest_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest run (its own figures, not a mix of runs): on a shared machine other work only ever adds
    time, so the fastest of a few runs is the steadiest estimate of what a contender costs (as ``timeit``
    takes the minimum). Every run's time is kept in ``runs_s``."""
    chosen = dict(min(runs, key=lambda run: float(run["seconds"])))
    chosen["runs_s"] = [round(float(run["seconds"]), 3) for run in runs]
    return chosen


def measure_each(modes: Sequence[str], repeats: int, *args: Any, **kwargs: Any) -> dict[str, dict[str, Any]]:
    """Every mode ``repeats`` times, taking turns (so a noisy moment hits all of them), each its fastest run."""
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    for _ in range(repeats):
        for mode in modes:
            runs[mode].append(measure(mode, *args, **kwargs))
    return {mode: fastest_of(found) for mode, found in runs.items()}


def warm_page_cache(csv: Path) -> None:
    """Read the input once, so that no contender pays the disk for the others (the first used to)."""
    with csv.open("rb") as handle:
        while handle.read(16 << 20):
            pass


def delay_every_request(namespace: str, url: str, seconds: float) -> None:
    """Every API request waits ``seconds`` before it is handled (the emulator's ``delay`` fault on every
    path), as each request to a distant Celonis team waits a round trip; TCP's own slow start is not
    modelled (the kernel here has no netem)."""
    rule = {"path": ".", "action": "delay", "delay_seconds": seconds, "count": 1 << 30}
    post = (
        "import json, sys, requests; requests.post(sys.argv[1] + '/emulator/api/faults', json=json.loads("
        "sys.argv[2]), headers={'Authorization': 'AppKey ' + sys.argv[3]}, timeout=30).raise_for_status()"
    )
    cmd = ["ip", "netns", "exec", namespace, sys.executable, "-c", post, url, json.dumps(rule), APP_KEY]
    subprocess.run(cmd, check=True)


def over_link(
    link: str,
    ns: ShapedNamespace,
    csv: Path,
    chunk: int,
    modes: list[str],
    cpus: CpuSplit,
    ingestion: bool = True,
    repeats: int = 1,
    rtt: float = 0.0,
) -> dict[str, Any]:
    """Every contender over one shaped link, the emulator inside the namespace too; ``rtt``: seconds each
    request waits (``delay_every_request``)."""
    ns.shape(link)
    ns.receive_steered = cpus is not None and ns.steer_receive(cpus[1])
    data_dir = OUT / f"link-emulator-{os.getpid()}"
    results: dict[str, dict[str, Any]] = {}
    client = cpus[0] if cpus else None
    # A real Celonis does its work on its own machines, not on the cores converting the data: its own CPU
    # when split, niced when shared.
    server = pinned(cpus[1]) if cpus else ["nice", "-n", "10"]
    emulator_cmd = ["ip", "netns", "exec", ns.name, *server]
    try:
        extra = ["--max-chunk-bytes", "1GiB", "--ingestion-key", ":".join(INGESTION)]
        extra += ["--ingestion-table", f"{INGESTION[2]}:bench_ingestion:id"]
        with EmulatorProcess(data_dir, extra, prefix=emulator_cmd) as emulator:
            if rtt:
                delay_every_request(ns.name, emulator.url, rtt)
            measure("warmup", csv, chunk, emulator.url, ns.name, client)
            # The bounds take turns with the contenders, on the same cores, beside the same emulator: a bound
            # measured once in a quiet moment before the links made a later noisy moment look like the push's.
            bounded = ["conversion", "limit", *modes]
            results.update(measure_each(bounded, repeats, csv, chunk, emulator.url, ns.name, client))
            if ingestion and "default" in results:  # the default push's bytes as one S3 object
                sent = f"{results['default']['parquet_bytes']},{emulator.url}"
                for mode in ("ingestion_c1", "ingestion_c4"):
                    results[mode] = measure(mode, csv, chunk, sent, ns.name, client)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return results


#: Inputs smaller than this run every contender REPEATS times and report its fastest run.
REPEAT_BELOW = 1 << 30
REPEATS = 3

#: Contenders whose CPU-seconds per input GB are reported (their work only: no interpreter start-up, no imports).
CPU_CONTENDERS = ("conversion", "limit", "default", "schema", "zstd", "none", "baseline")


def contender_figures(mode: str, result: dict[str, Any], gb: float) -> dict[str, Any]:
    """One contender's figures over one link, keys prefixed with its name."""
    out = {
        f"{mode}_s": round(result["seconds"], 2),
        f"{mode}_bytes": result["parquet_bytes"],
        f"{mode}_peak_rss_mb": result["peak_rss_mb"],
    }
    if result.get("first_byte_s") is not None:
        out[f"{mode}_first_byte_s"] = round(result["first_byte_s"], 2)
    if mode in CPU_CONTENDERS and "work_cpu_s" in result:
        out[f"{mode}_cpu_s_per_gb"] = round(result["work_cpu_s"] / gb, 2)
    if mode in ("default", "schema"):  # against conversion_cpu_s: what the upload costs the client
        out[f"{mode}_cpu_s"] = result["cpu_seconds"]
    if result.get("status") not in (None, "DONE"):
        out[f"{mode}_status"] = result.get("status")
    return out


def summarize(link: str, results: dict[str, dict[str, Any]], input_bytes: int) -> dict[str, Any]:
    """One link's figures; ``results`` holds its contenders, ``conversion`` and ``limit`` among them."""
    rate = float(LINKS[link]["bits_per_s"])  # type: ignore[arg-type]
    offline = {mode: results[mode] for mode in ("conversion", "limit")}
    conversion = offline["conversion"]
    out: dict[str, Any] = {"conversion_s": round(conversion["seconds"], 2)}
    out["conversion_peak_rss_mb"] = conversion["peak_rss_mb"]
    out["conversion_cpu_s"] = conversion["cpu_seconds"]
    out["limit_s"] = round(offline["limit"]["seconds"], 2)
    out["conversion_vs_limit"] = round(conversion["seconds"] / offline["limit"]["seconds"], 2)
    gb = input_bytes / 1e9
    for mode in ("conversion", "limit"):
        out[f"{mode}_cpu_s_per_gb"] = round(offline[mode]["work_cpu_s"] / gb, 2)
    for mode, result in results.items():
        if mode not in ("wire", *offline):
            out.update(contender_figures(mode, result, gb))
    if "default_first_byte_s" in out:
        out["first_byte_s"] = out["default_first_byte_s"]
    sent = results["default"]["parquet_bytes"] if "default" in results else conversion["parquet_bytes"]
    out["wire_s"] = round(sent * 8 / rate, 2)
    if "wire" in results:
        out["wire_measured_s"] = round(results.pop("wire")["seconds"], 2)
    bound = max(out["conversion_s"], out["wire_s"])
    if "default_s" in out:
        out["default_vs_bound"] = round(out["default_s"] / bound, 2)
    if "schema_s" in out:
        out["schema_vs_bound"] = round(out["schema_s"] / bound, 2)
    if "baseline_s" in out and "default_s" in out:
        out["baseline_vs_default"] = round(out["baseline_s"] / out["default_s"], 2)
    return out


#: Rows of the table (and lines of the chart): figure key, label.
SERIES = [
    ("conversion_s", "conversion alone (no HTTP)"),
    ("wire_s", "wire time of the bytes sent"),
    ("default_s", "ours, default (STRING lengths measured)"),
    ("schema_s", "ours, table_schema given"),
    ("zstd_s", "ours, default, compression=zstd"),
    ("none_s", "ours, default, compression=none"),
    ("baseline_s", "baseline (pycelonis way)"),
    ("ingestion_c1_s", "ingestion upload of those bytes, 1 part at a time"),
    ("ingestion_c4_s", "ingestion upload of those bytes, 4 parts at a time"),
]


def markdown_table(figures: dict[str, Any]) -> str:
    """Push time per link speed, seconds (the text form of the chart), for one input."""
    links = [link for link in LINKS if link in figures]
    lines = ["| seconds | " + " | ".join(links) + " |", "| --- |" + " --- |" * len(links)]
    for key, label in SERIES:
        if any(key in figures[link] for link in links):
            cells = [str(figures[link].get(key, "-")) for link in links]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: Rows of the sweep table: figure key, label.
SWEEP_FIGURES = [
    ("conversion_s", "conversion alone, s"),
    ("limit_s", "pyarrow limit, s"),
    ("wire_s", "wire, s"),
    ("default_s", "ours, default, s"),
    ("baseline_s", "baseline, s"),
    ("default_vs_bound", "`default_vs_bound` (≤ 1.10)"),
    ("baseline_vs_default", "`baseline_vs_default` (≥ 1, ≥ 1.2 from 1 GB)"),
    ("conversion_vs_limit", "`conversion_vs_limit` (≤ 1.10)"),
    ("first_byte_s", "ours, first byte, s"),
    ("baseline_first_byte_s", "baseline, first byte, s"),
    ("conversion_cpu_s_per_gb", "CPU-s/GB conversion"),
    ("limit_cpu_s_per_gb", "CPU-s/GB limit"),
    ("default_cpu_s_per_gb", "CPU-s/GB ours, default"),
    ("baseline_cpu_s_per_gb", "CPU-s/GB baseline"),
    ("default_peak_rss_mb", "peak RSS ours, MB"),
    ("baseline_peak_rss_mb", "peak RSS baseline, MB"),
]


def sweep_table(sweep: dict[str, dict[str, Any]]) -> str:
    """One column per input and link, one row per figure."""
    columns = [(size, link) for size, figures in sweep.items() for link in LINKS if link in figures]
    lines = ["| | " + " | ".join(f"{size} {link}" for size, link in columns) + " |"]
    lines.append("| --- |" + " --- |" * len(columns))
    for key, label in SWEEP_FIGURES:
        cells = [str(sweep[size][link].get(key, "-")) for size, link in columns]
        if any(cell != "-" for cell in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def draw_chart(sweep: dict[str, dict[str, Any]], path: Path) -> None:
    """Push time against input size, one panel per link (needs matplotlib; the benchmark does not)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    links = [link for link in LINKS if any(link in figures for figures in sweep.values())]
    fig, axes = plt.subplots(1, len(links), figsize=(6 * len(links), 4.2), squeeze=False)
    for axis, link in zip(axes[0], links, strict=True):
        sizes = [size for size, figures in sweep.items() if link in figures]
        xs = [sweep[size]["input_bytes"] / 1e9 for size in sizes]
        for key, label, style in (
            ("conversion_s", "conversion alone (no HTTP)", ":"),
            ("wire_s", "wire time of the bytes sent", ":"),
            ("default_s", "ours, default", "o-"),
            ("baseline_s", "baseline (pycelonis way)", "s-"),
        ):
            if all(key in sweep[size][link] for size in sizes):
                axis.plot(xs, [sweep[size][link][key] for size in sizes], style, label=label)
        axis.set(title=f"{link}: push time against size", xlabel="input CSV, GB", ylabel="seconds")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run_input(
    csv: Path,
    chunk: int,
    links: list[str],
    modes: list[str],
    cpus: CpuSplit,
    ns: ShapedNamespace,
    ingestion: bool,
    rtt: float = 0.0,
) -> dict[str, Any]:
    """Every link for one input: conversion, limit and each contender, taking turns; below ``REPEAT_BELOW``
    bytes each of them ``REPEATS`` times (its fastest run), as short runs are the noisiest."""
    print(f"input: {csv} ({csv.stat().st_size / 1e6:.0f} MB)", file=sys.stderr, flush=True)
    client = cpus[0] if cpus else None
    repeats = REPEATS if csv.stat().st_size < REPEAT_BELOW else 1
    warm_page_cache(csv)
    figures: dict[str, Any] = {}
    for link in links:
        print(f"-- link {link}", file=sys.stderr, flush=True)
        results = over_link(link, ns, csv, chunk, modes, cpus, ingestion, repeats, rtt)
        sent = results.get("default", results["conversion"])["parquet_bytes"]
        results["wire"] = measure("wire", csv, chunk, str(sent), ns.name, client)
        figures[link] = summarize(link, results, csv.stat().st_size)
        figures[link]["receive_steered"] = ns.receive_steered
        if rtt:
            figures[link]["rtt_ms"] = round(rtt * 1000, 1)
        print(f"{link}: {json.dumps(figures[link])}", file=sys.stderr, flush=True)
    print(markdown_table(figures), file=sys.stderr)
    figures["input_bytes"] = csv.stat().st_size
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", help="one synthetic CSV size, e.g. 64MB, 1GB (default 1GB)")
    parser.add_argument("--sizes", help="a sweep of synthetic CSV sizes, e.g. 50MB,200MB,1GB,4GB")
    parser.add_argument("--csv", help="push this CSV file instead of a synthetic one")
    parser.add_argument("--chunk-size", default="128MiB", help="our chunk size cap (default 128MiB)")
    parser.add_argument("--links", default=",".join(LINKS), help=f"comma-separated subset of {list(LINKS)}")
    parser.add_argument(
        "--modes",
        default="default,baseline",
        help=f"comma-separated contenders over each link, of {[*OURS, 'baseline']} (default: default,baseline)",
    )
    parser.add_argument(
        "--ingestion",
        action="store_true",
        help="also upload the default push's bytes through the ingestion API",
    )
    parser.add_argument(
        "--chart", help="also draw push time against size per link into this PNG (matplotlib)"
    )
    parser.add_argument(
        "--cpus",
        choices=["split", "shared"],
        default="split",
        help="split (default): the emulator on the last CPU, the contenders on the others; shared: all on all",
    )
    parser.add_argument(
        "--child",
        choices=["conversion", "limit", "wire", "warmup", "baseline", *OURS, "ingestion_c1", "ingestion_c4"],
        help=argparse.SUPPRESS,
    )
    parser.add_argument(
        "--rtt",
        type=float,
        default=0.0,
        help="milliseconds every request waits before its answer, as a round trip to a distant Celonis team "
        "(default 0; the bound does not include it)",
    )
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    require_chart_library(parser, args.chart)
    if args.chart and not (args.size or args.sizes or args.csv) and (OUT / "link-sweep.json").exists():
        draw_chart(json.loads((OUT / "link-sweep.json").read_text()), Path(args.chart))  # the last sweep's
        return
    chunk = parse_size(args.chunk_size)
    links = [link.strip() for link in args.links.split(",") if link.strip()]
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    unknown = [link for link in links if link not in LINKS] + [
        mode for mode in modes if mode not in (*OURS, "baseline")
    ]
    if unknown:
        parser.error(f"unknown link or contender: {', '.join(unknown)}")
    if sum(bool(x) for x in (args.size, args.sizes, args.csv)) > 1:
        parser.error("give one of --size, --sizes, --csv")
    if args.csv and not Path(args.csv).is_file():
        parser.error(f"--csv {args.csv}: no such file")
    labels = [x.strip() for x in (args.sizes or args.size or "1GB").split(",") if x.strip()]
    try:
        cpus = split_cpus(args.cpus)
        ns = ShapedNamespace()
    except CannotShape as exc:
        print(f"push_over_link: cannot shape a link here: {exc}", file=sys.stderr)
        sys.exit(1)
    sweep: dict[str, Any] = {}
    try:
        inputs = {Path(args.csv).name: Path(args.csv).resolve()} if args.csv else {}
        for label in [] if args.csv else labels:
            inputs[label] = synthetic_csv(parse_size(label))
        for label, csv in inputs.items():
            sweep[label] = run_input(csv, chunk, links, modes, cpus, ns, args.ingestion, args.rtt / 1000)
    except CannotShape as exc:
        print(f"push_over_link: cannot shape a link here: {exc}", file=sys.stderr)
        sys.exit(1)
    finally:
        ns.close()
    print(sweep_table(sweep), file=sys.stderr)
    # A run with a round trip, or on one input, is not the sweep the chart and the docs' table come from.
    name = "link-sweep" if len(sweep) > 1 else f"link-{next(iter(sweep), 'none')}"
    (OUT / (f"{name}-rtt{args.rtt:g}ms.json" if args.rtt else f"{name}.json")).write_text(
        json.dumps(sweep, indent=1)
    )
    if args.chart:
        draw_chart(sweep, Path(args.chart))
    sweep["chunk_size_bytes"] = chunk
    sweep["cpus"] = {"client": cpus[0], "emulator": cpus[1]} if cpus else {"shared": True}
    print(json.dumps(sweep))


if __name__ == "__main__":
    main()
