"""Triggerer load: ``--jobs`` DataPushJobTriggers waiting at once in one event loop, as in one triggerer.

The emulator runs in its own process. Every job is created NEW (a waiting trigger sees a non-terminal
status); a separate "finisher" process cancels each one at a random moment within ``--duration``
seconds (CANCELED is terminal: the trigger fires), recording when each job became terminal.

Reported: peak RSS of the trigger process, the longest event-loop stall (a ticker task measuring how late
its 10 ms sleeps wake), requests per second seen by the emulator (``GET /emulator/api/stats``), and how
late each trigger fired after its job finished (worst and 95th percentile), against the targets.
``--deadline S`` gives every trigger an ``end_time`` (as a sensor's has); ``--census`` instead counts the
objects each waiting trigger adds to the garbage collector's heap.

    python benchmarks/triggerer_load.py --jobs 1000 --duration 120 --json
    python benchmarks/triggerer_load.py --census --deadline 3600
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import APP_KEY, OUT, POOL, EmulatorProcess, peak_rss_mb

TICK = 0.01
#: The first seconds include one-off costs (the first poll imports aiohttp inside the loop): reported apart.
WARMUP = 3.0


def create_jobs(url: str, count: int) -> list[str]:
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"AppKey {APP_KEY}"
    jobs = f"{url}/data-ingestion/api/v1/data-push/{POOL}/jobs/"
    ids = []
    for i in range(count):
        answer = session.post(jobs, json={"targetName": f"t{i}", "type": "DELTA", "fileType": "PARQUET"})
        answer.raise_for_status()
        ids.append(answer.json()["id"])
    return ids


def finisher(url: str, schedule_path: Path) -> None:
    """Cancels each job at its moment; prints ``{job_id: unix time it became terminal}``."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"AppKey {APP_KEY}"
    schedule = sorted(json.loads(schedule_path.read_text()).items(), key=lambda kv: kv[1])
    done: dict[str, float] = {}
    for job_id, at in schedule:
        pause = at - time.time()
        if pause > 0:
            time.sleep(pause)
        session.post(f"{url}/data-ingestion/api/v1/data-push/{POOL}/jobs/{job_id}/cancel").raise_for_status()
        done[job_id] = time.time()
    print(json.dumps(done), flush=True)


def import_triggerer_modules() -> None:
    """A triggerer has Airflow's configuration, its own job runner and the supervisor (which reads
    connections) loaded long before its first trigger runs: the heap every full collection walks. Importing
    them inside the run would also count a one-off import as a stall."""
    import airflow.jobs.triggerer_job_runner
    import airflow.sdk.execution_time.supervisor  # noqa: F401
    from airflow.configuration import conf  # noqa: F401

    import airflow_provider_celonis.triggers.data_push  # noqa: F401


async def wait_for_job(job_id: str, poll_interval: float, deadline: float | None) -> None:
    """One trigger's wait, as the triggerer runs it: until its first event. ``deadline``: its ``end_time``
    that many seconds away (a sensor's trigger always has one), or none."""
    from airflow_provider_celonis.triggers.data_push import DataPushJobTrigger

    end_time = None if deadline is None else time.time() + deadline
    trigger = DataPushJobTrigger(
        job_id, POOL, "celonis_bench", poll_interval=poll_interval, end_time=end_time
    )
    async for _event in trigger.run():
        return


async def run_triggers(job_ids: list[str], poll_interval: float, deadline: float | None) -> dict[str, Any]:
    import_triggerer_modules()
    loop = asyncio.get_running_loop()
    fired: dict[str, float] = {}
    stalls: dict[str, list[float]] = {"warmup": [], "steady": []}
    running = True
    warm_until = loop.time() + WARMUP

    async def ticker() -> None:
        while running:
            before = loop.time()
            await asyncio.sleep(TICK)
            phase = "warmup" if before < warm_until else "steady"
            stalls[phase].append(max(loop.time() - before - TICK, 0.0))

    async def wait(job_id: str) -> None:
        await wait_for_job(job_id, poll_interval, deadline)
        fired[job_id] = time.time()

    pauses: list[float] = []
    gc_started = [0.0]

    def gc_timer(phase: str, info: dict[str, Any]) -> None:
        """How long each full (generation 2) collection held the loop: the part of a stall no code can avoid."""
        if info.get("generation") != 2:
            return
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - gc_started[0])

    gc.callbacks.append(gc_timer)
    tick = asyncio.create_task(ticker())
    try:
        await asyncio.gather(*(wait(job_id) for job_id in job_ids))
    finally:
        gc.callbacks.remove(gc_timer)
    running = False
    await tick
    return {"fired": fired, "stalls": stalls, "gc_pauses": pauses}


async def census(job_ids: list[str], poll_interval: float, deadline: float | None) -> float:
    """Objects the collector tracks per waiting trigger: what a burst of triggers adds to its next walks.

    Counted once every trigger has seen its job (``WARMUP`` seconds in), after a collection: each trigger's
    own objects, its task, and its job's entry in the board's shared snapshot.
    """
    import_triggerer_modules()
    gc.collect()
    before = {id(found) for found in gc.get_objects()}
    waiting = [asyncio.ensure_future(wait_for_job(job_id, poll_interval, deadline)) for job_id in job_ids]
    await asyncio.sleep(WARMUP)
    gc.collect()
    added = sum(1 for found in gc.get_objects() if id(found) not in before)
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    return added / len(job_ids)


def status_polls(snapshot: dict[str, Any]) -> int:
    """Status requests seen by the emulator: job lists (the shared poll) and single-job reads."""
    return sum(
        n
        for route, n in snapshot["requests"].items()
        if route.startswith("GET ")
        and "/data-push/" in route
        and route.rstrip("/").endswith(("jobs", "{job_id}"))
    )


def stats(url: str) -> dict[str, Any]:
    import requests

    answer = requests.get(
        f"{url}/emulator/api/stats", headers={"Authorization": f"AppKey {APP_KEY}"}, timeout=30
    )
    answer.raise_for_status()
    return dict(answer.json())


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(0.99 * (len(ordered) - 1))] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=120.0, help="jobs finish at random within this (s)")
    parser.add_argument("--poll-interval", type=float, default=10.0, help="the triggers' poll_interval")
    parser.add_argument(
        "--budget",
        type=float,
        default=float(os.environ.get("AIRFLOW__CELONIS__TRIGGER_REQUESTS_PER_SECOND", 10)),
        help="[celonis] trigger_requests_per_second (default: the env var, else 10)",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        help="give every trigger an end_time this many seconds away, as a sensor's has (default: none, as "
        "DataPushOperator's without a timeout)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() the startup heap first: shows how much of the stall is gen-2 GC over it",
    )
    parser.add_argument(
        "--census",
        action="store_true",
        help="only count the objects each waiting trigger adds to the collector's heap (no timing run)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object, last")
    parser.add_argument("--finisher", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.finisher:
        finisher(args.url, Path(args.finisher))
        return

    os.environ["AIRFLOW__CELONIS__TRIGGER_REQUESTS_PER_SECOND"] = str(args.budget)
    OUT.mkdir(parents=True, exist_ok=True)
    data_dir = OUT / f"triggerer-emulator-{os.getpid()}"
    try:
        with EmulatorProcess(data_dir, ["--log-level", "error"]) as emulator:
            os.environ["AIRFLOW_CONN_CELONIS_BENCH"] = json.dumps(
                {
                    "conn_type": "celonis",
                    "host": emulator.url,
                    "password": APP_KEY,
                    "extra": {"data_pool_id": POOL},
                }
            )
            job_ids = create_jobs(emulator.url, args.jobs)
            if args.census:
                per_trigger = asyncio.run(census(job_ids, args.poll_interval, args.deadline))
                print(
                    json.dumps(
                        {
                            "jobs": args.jobs,
                            "deadline_s": args.deadline,
                            "objects_per_trigger": round(per_trigger, 1),
                        }
                    )
                )
                return
            rng = random.Random(args.seed)
            started = time.time()
            schedule = {j: started + rng.uniform(0.05, 1.0) * args.duration for j in job_ids}
            schedule_path = data_dir / "schedule.json"
            schedule_path.write_text(json.dumps(schedule))
            before = stats(emulator.url)
            cmd = [sys.executable, __file__, "--finisher", str(schedule_path), "--url", emulator.url]
            finishing = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
            if args.gc_freeze:
                import airflow_provider_celonis.triggers.data_push  # noqa: F401  (import before freezing)

                gc.collect()
                gc.freeze()
            result = asyncio.run(run_triggers(job_ids, args.poll_interval, args.deadline))
            elapsed = time.time() - started
            after = stats(emulator.url)
            out, _ = finishing.communicate(timeout=60)
            finished = json.loads(out.strip().splitlines()[-1])
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    polls = status_polls(after) - status_polls(before)
    lateness = sorted(result["fired"][j] - finished[j] for j in job_ids)
    figures = {
        "jobs": args.jobs,
        "duration_s": args.duration,
        "poll_interval_s": args.poll_interval,
        "budget_req_s": args.budget,
        "gc_freeze": args.gc_freeze,
        "deadline_s": args.deadline,
        "elapsed_s": round(elapsed, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "max_loop_stall_ms": _ms(max(result["stalls"]["steady"], default=0.0)),
        "p99_loop_stall_ms": _ms(_p99(result["stalls"]["steady"])),
        "warmup_loop_stall_ms": _ms(max(result["stalls"]["warmup"], default=0.0)),
        "warmup_p99_loop_stall_ms": _ms(_p99(result["stalls"]["warmup"])),
        "full_gc_pauses": len(result["gc_pauses"]),
        "max_full_gc_pause_ms": _ms(max(result["gc_pauses"], default=0.0)),
        "poll_requests": polls,
        "requests_per_s": round(polls / elapsed, 2),
        "worst_fire_lateness_s": round(lateness[-1], 2),
        "p95_fire_lateness_s": round(lateness[int(0.95 * (len(lateness) - 1))], 2),
        "median_fire_lateness_s": round(lateness[len(lateness) // 2], 2),
    }
    figures["meets"] = {
        "stall<=50ms": max(figures["max_loop_stall_ms"], figures["warmup_loop_stall_ms"]) <= 50,
        "rss<=300MB": figures["peak_rss_mb"] <= 300,
        "within_budget": figures["requests_per_s"] <= args.budget * 1.05,
        "fires_within_one_poll_interval": figures["worst_fire_lateness_s"] <= args.poll_interval,
    }
    for key, value in figures.items():
        print(f"{key}: {value}", file=sys.stderr)
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
