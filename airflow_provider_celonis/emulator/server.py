"""Serving the app with uvicorn in a background thread, on a port that survives restarts."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

from .app import create_app
from .settings import EmulatorSettings
from .state import EmulatorState

START_TIMEOUT = 30.0


class EmulatorServer:
    """One emulator: ``start()``/``stop()`` any number of times; the port and data dir stay the same."""

    def __init__(self, settings: EmulatorSettings) -> None:
        settings.ensure_a_key()
        self.settings = settings
        self._owns_data_dir = settings.data_dir is None
        self.data_dir = Path(settings.data_dir or tempfile.mkdtemp(prefix="celonis-emulator-")).resolve()
        self.settings.data_dir = self.data_dir
        self.port: int = settings.port
        self.state: EmulatorState | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = self.settings.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def app_key(self) -> str | None:
        return self.settings.app_keys[0].key if self.settings.app_keys else None

    @property
    def api_key(self) -> str | None:
        return self.settings.api_keys[0].key if self.settings.api_keys else None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.settings.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.settings.host, self.port))
        self.port = sock.getsockname()[1]
        return sock

    def start(self) -> EmulatorServer:
        """Start serving and return once requests are answered (raises if startup fails)."""
        if self.running:
            return self
        sock = self._bind()
        self.state = EmulatorState(self.settings, self.data_dir)
        config = uvicorn.Config(
            create_app(self.state),
            log_level=self.settings.log_level.lower(),
            access_log=False,
            date_header=False,  # DateHeaderMiddleware stamps each answer's own
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="celonis-emulator", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise RuntimeError("the Celonis emulator failed to start (see the log above)")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving; jobs still queued or running are re-run at the next start."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=60)
        self._server = self._thread = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop and remove the data directory if we created it."""
        self.stop()
        if self._owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def wait(self) -> None:
        """Block until the server thread ends."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
