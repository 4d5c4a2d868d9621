"""Fixtures for the emulator tests (the client is in ``api_client``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_celonis.emulator.server import EmulatorServer
from airflow_provider_celonis.emulator.testing import running_emulator
from tests.emulator.api_client import Api


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a slower emulator test (large streams, restarts, subprocesses)")


@pytest.fixture(scope="session")
def shared_emulator() -> Iterator[EmulatorServer]:
    """One emulator for tests that need no special settings; each test gets its own pool."""
    with running_emulator(
        app_keys=("test-key",), execute_per_second=100_000, execute_per_hour=1_000_000
    ) as emu:
        yield emu


@pytest.fixture
def api(shared_emulator: EmulatorServer) -> Api:
    return Api(shared_emulator)
