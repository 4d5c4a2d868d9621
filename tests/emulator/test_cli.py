"""The command line: start, print the URL, answer, stop cleanly on SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import pytest
import requests

from airflow_provider_celonis.emulator.__main__ import parse_args


@pytest.mark.slow
def test_cli_starts_prints_url_and_stops_on_sigterm(tmp_path: object) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_celonis.emulator",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = None
        key = None
        for line in proc.stdout:
            key = key or (re.search(r"application key: (\S+)", line) or [None, None])[1]
            if found := re.search(r"http://127\.0\.0\.1:\d+", line):
                url = found.group(0)
                break
        assert url
        assert key
        assert requests.get(f"{url}/emulator/health", timeout=10).status_code == 200
        r = requests.get(
            f"{url}/integration/api/v1/data-push/p/jobs/", headers={"Authorization": f"AppKey {key}"}
        )
        assert r.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_parse_args_options() -> None:
    s = parse_args(
        [
            "--port", "0", "--app-key", "a=p1,p2", "--api-key", "b", "--oauth-client", "id:sec:x y",
            "--pool", "p1", "--max-chunk-bytes", "10MB", "--execute-per-second", "3", "--execute-per-hour", "4",
            "--token-ttl", "5", "--quota-window-seconds", "6", "--job-duration", "0.5",
        ]
    )  # fmt: skip
    assert s.app_keys[0].key == "a"
    assert s.app_keys[0].pools == frozenset({"p1", "p2"})
    assert s.api_keys[0].key == "b"
    assert s.oauth_clients[0].scopes == frozenset({"x", "y"})
    assert s.pools == ("p1",)
    assert s.max_chunk_bytes == 10 * 1024 * 1024
    assert (s.execute_per_second, s.execute_per_hour, s.token_ttl) == (3, 4, 5)
    assert (s.quota_window_seconds, s.job_duration) == (6, 0.5)
