"""Shared by the benchmarks: an emulator in its own process, peak RSS of a process, the chart's dependency."""

from __future__ import annotations

import argparse
import importlib.util
import re
import resource
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
APP_KEY = "bench-app-key"
POOL = "bench-pool"


def require_chart_library(parser: argparse.ArgumentParser, chart: str | None) -> None:
    """Refuse ``--chart`` before a long run rather than fail when drawing it: matplotlib is optional."""
    if chart and importlib.util.find_spec("matplotlib") is None:
        parser.error(
            "--chart needs matplotlib, which the benchmark itself does not: "
            "python3.11 -m uv pip install -p .venv matplotlib (docs/performance.md, Reproduce)"
        )


class EmulatorProcess:
    """``python -m airflow_provider_celonis.emulator --port 0`` in a child process (its own GIL).

    ``prefix``: run it under another command, e.g. ``ip netns exec NS`` (``push_over_link.py``).
    """

    def __init__(self, data_dir: Path, extra: Sequence[str] = (), prefix: Sequence[str] = ()) -> None:
        cmd = [*prefix, sys.executable, "-m", "airflow_provider_celonis.emulator", "--port", "0"]
        cmd += ["--data-dir", str(data_dir), "--app-key", APP_KEY, *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if found := re.search(r"http://[\d.]+:\d+", line):
                self.url = found.group(0)
                return
        raise RuntimeError("the emulator did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def peak_rss_mb() -> float:
    """This process' peak resident set size (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def parse_size(text: str) -> int:
    """``256MB``, ``1GB``, ``4GiB`` or bytes; decimal and binary suffixes are both taken as binary."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"not a size: {text!r}")
    number, unit = float(match.group(1)), match.group(2).upper()
    return int(number * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[unit])
