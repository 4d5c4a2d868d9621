"""Running an emulator inside a test process: ``with running_emulator(...) as emu: requests.get(emu.url)``."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .server import EmulatorServer
from .settings import EmulatorSettings, KeySpec, OAuthClientSpec

__all__ = ["EmulatorServer", "build_settings", "running_emulator"]

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
