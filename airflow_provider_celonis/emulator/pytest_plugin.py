"""pytest fixtures (registered as the ``celonis_emulator`` plugin): a fresh emulator per test.

The emulator is imported inside the fixtures so that merely having the provider installed (without the
``emulator`` extra) never breaks a pytest run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .server import EmulatorServer


@pytest.fixture
def celonis_emulator_factory() -> Iterator[Callable[..., EmulatorServer]]:
    """Start emulators with ``running_emulator``'s keywords; all are stopped at teardown."""
    from .server import EmulatorServer
    from .testing import build_settings

    started: list[EmulatorServer] = []

    def factory(**kwargs: Any) -> EmulatorServer:
        server = EmulatorServer(build_settings(**kwargs)).start()
        started.append(server)
        return server

    yield factory
    for server in reversed(started):
        server.close()


@pytest.fixture
def celonis_emulator(celonis_emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    """A fresh emulator with the application key ``k1`` (``celonis_emulator.app_key``)."""
    return celonis_emulator_factory()
