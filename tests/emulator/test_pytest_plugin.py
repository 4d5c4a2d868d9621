"""The pytest fixtures the plugin provides (loaded through the pytest11 entry point)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from airflow_provider_celonis.emulator.pytest_plugin import FIXTURE_PROFILE
from airflow_provider_celonis.emulator.server import EmulatorServer


def test_celonis_emulator_fixture(celonis_emulator: EmulatorServer) -> None:
    r = requests.get(
        f"{celonis_emulator.url}/data-ingestion/api/v1/data-push/p/jobs/",
        headers={"Authorization": f"AppKey {celonis_emulator.app_key}"},
    )
    assert r.status_code == 200
    assert r.json() == []


def test_factory_accepts_settings(celonis_emulator_factory: Callable[..., EmulatorServer]) -> None:
    emu = celonis_emulator_factory(app_keys=("a=p1",), execute_per_hour=3)
    assert emu.settings.execute_per_hour == 3
    assert emu.app_key == "a"
    assert emu.settings.app_keys[0].pools == frozenset({"p1"})


def test_factory_profile_kwarg_and_default(
    celonis_emulator_factory: Callable[..., EmulatorServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert celonis_emulator_factory(profile="documented").settings.documented
    assert celonis_emulator_factory(profile="lenient", chunk_checksum="none").settings.checksum_mode == "none"
    monkeypatch.setenv("CELONIS_EMULATOR_PROFILE", "documented")
    assert celonis_emulator_factory().settings.profile == "documented"
    monkeypatch.delenv("CELONIS_EMULATOR_PROFILE")
    assert celonis_emulator_factory().settings.profile == FIXTURE_PROFILE
    with pytest.raises(ValueError, match="profile must be one of"):
        celonis_emulator_factory(profile="generous")
