"""The pytest fixtures the plugin provides (loaded through the pytest11 entry point)."""

from __future__ import annotations

from collections.abc import Callable

import requests

from airflow_provider_celonis.emulator.server import EmulatorServer


def test_celonis_emulator_fixture(celonis_emulator: EmulatorServer) -> None:
    r = requests.get(
        f"{celonis_emulator.url}/data-ingestion/api/v1/data-push/p/jobs/",
        headers={"Authorization": f"AppKey {celonis_emulator.app_key}"},
    )
    assert r.status_code == 200 and r.json() == []


def test_factory_accepts_settings(celonis_emulator_factory: Callable[..., EmulatorServer]) -> None:
    emu = celonis_emulator_factory(app_keys=("a=p1",), execute_per_hour=3)
    assert emu.settings.execute_per_hour == 3 and emu.app_key == "a"
    assert emu.settings.app_keys[0].pools == frozenset({"p1"})
