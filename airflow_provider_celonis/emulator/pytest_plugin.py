"""pytest fixtures (registered as the ``celonis_emulator`` plugin): a fresh emulator per test.

The emulator is imported inside the fixtures so that merely having the provider installed (without the
``emulator`` extra) never breaks a pytest run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .server import EmulatorServer

#: The fixtures' profile when a test names none: ``documented``, like the CLI, so a test that passes does not
#: lean on an emulator extra. ``CELONIS_EMULATOR_PROFILE`` overrides it.
FIXTURE_PROFILE = "documented"


def fixture_profile() -> str:
    return os.environ.get("CELONIS_EMULATOR_PROFILE") or FIXTURE_PROFILE


@pytest.fixture
def celonis_emulator_factory() -> Iterator[Callable[..., EmulatorServer]]:
    """Start emulators with ``running_emulator``'s keywords (``profile`` defaults to
    :func:`fixture_profile`); all are stopped at teardown."""
    from .server import EmulatorServer
    from .testing import build_settings

    started: list[EmulatorServer] = []

    def factory(**kwargs: Any) -> EmulatorServer:
        kwargs.setdefault("profile", fixture_profile())
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
