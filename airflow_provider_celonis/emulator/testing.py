"""Running an emulator inside a test process: ``with running_emulator(...) as emu: requests.get(emu.url)``."""

from __future__ import annotations

import dataclasses
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .server import EmulatorServer
from .settings import EmulatorSettings, KeySpec, OAuthClientSpec

__all__ = ["EmulatorServer", "build_settings", "emulator_process", "running_emulator"]

_FIELDS = {f.name for f in dataclasses.fields(EmulatorSettings)}


def _keys(values: Iterable[str | KeySpec]) -> tuple[KeySpec, ...]:
    return tuple(v if isinstance(v, KeySpec) else KeySpec.parse(v) for v in values)


def _clients(values: Iterable[str | OAuthClientSpec | tuple[str, ...]]) -> tuple[OAuthClientSpec, ...]:
    result = []
    for v in values:
        if isinstance(v, OAuthClientSpec):
            result.append(v)
        elif isinstance(v, tuple):
            result.append(OAuthClientSpec.parse(":".join(v)))
        else:
            result.append(OAuthClientSpec.parse(v))
    return tuple(result)


def build_settings(
    app_keys: Iterable[str | KeySpec] = ("k1",),
    api_keys: Iterable[str | KeySpec] = (),
    oauth_clients: Iterable[str | OAuthClientSpec | tuple[str, ...]] = (),
    pools: Iterable[str] = (),
    data_dir: str | Path | None = None,
    **settings: Any,
) -> EmulatorSettings:
    """Settings from keyword arguments named like the CLI options; port defaults to a free one."""
    unknown = set(settings) - _FIELDS
    if unknown:
        raise TypeError(f"unknown emulator settings: {sorted(unknown)}")
    settings.setdefault("port", 0)
    if "max_chunk_bytes" in settings:
        from .settings import parse_size

        settings["max_chunk_bytes"] = parse_size(settings["max_chunk_bytes"])
    return EmulatorSettings(
        app_keys=_keys(app_keys),
        api_keys=_keys(api_keys),
        oauth_clients=_clients(oauth_clients),
        pools=tuple(pools),
        data_dir=Path(data_dir) if data_dir is not None else None,
        **settings,
    )


@contextmanager
def running_emulator(
    app_keys: Iterable[str | KeySpec] = ("k1",),
    api_keys: Iterable[str | KeySpec] = (),
    oauth_clients: Iterable[str | OAuthClientSpec | tuple[str, ...]] = (),
    pools: Iterable[str] = (),
    data_dir: str | Path | None = None,
    **settings: Any,
) -> Iterator[EmulatorServer]:
    """A started emulator on a free port (uvicorn in a thread), stopped and cleaned up afterwards."""
    server = EmulatorServer(build_settings(app_keys, api_keys, oauth_clients, pools, data_dir, **settings))
    server.start()
    try:
        yield server
    finally:
        server.close()


@contextmanager
def emulator_process(
    *options: str, startup_timeout: float = 60.0
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The emulator in a child process (its memory and CPU apart from the caller's): yields (process, URL).

    ``options`` are CLI options (``"--app-key", "k"``, ...); ``--port 0`` is added. Stopped with SIGTERM.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_celonis.emulator", "--port", "0", *options],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = _read_url(proc, startup_timeout)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _read_url(proc: subprocess.Popen[str], timeout: float) -> str:
    """The base URL from the line the emulator prints when ready."""
    assert proc.stdout is not None
    found: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:  # keeps draining afterwards, so the child never blocks on a full pipe
            if not found and (match := re.search(r"http://[\w.\-\[\]:]+", line)):
                found.append(match.group(0))
                ready.set()

    ready = threading.Event()
    threading.Thread(target=read, daemon=True).start()
    ready.wait(timeout)
    if not found:
        proc.kill()
        raise RuntimeError(f"the emulator printed no URL within {timeout:.0f}s (exit code {proc.poll()})")
    return found[0]
