"""Fault injection: answer with an error, drop the connection before or after processing, lose the answer
of a processed request behind an error status, or delay.

Dropping a connection needs the socket, which ASGI hides. uvicorn passes its per-request cycle's bound
``send`` to the outermost app, and that cycle owns the asyncio transport; aborting it sends a TCP reset,
so clients see a connection error instead of the 500 uvicorn sends when an app fails.
"""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ACTIONS = frozenset({"status", "status_after", "close", "close_after", "delay"})
MAX_DELAY = 600.0


_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def _header_safe(name: str, value: str) -> bool:
    return bool(_TOKEN.match(name)) and value.isascii() and value.isprintable()


@dataclass
class Fault:
    """One rule; ``skip`` matching requests pass untouched first, then it applies to ``count`` more."""

    path: str
    action: str = "status"
    method: str | None = None
    count: int = 1
    skip: int = 0
    status: int = 503
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        """Validate a request body; raises ValueError with a readable reason."""
        if not isinstance(data, dict) or not isinstance(data.get("path"), str):
            raise ValueError("a fault needs at least a 'path' regex")
        headers = data.get("headers") or {}
        if not isinstance(headers, dict):
            raise ValueError("headers must be an object of header names to values")
        try:
            fault = cls(
                path=data["path"],
                action=str(data.get("action", "status")),
                method=str(data["method"]).upper() if data.get("method") else None,
                count=int(data.get("count", 1)),
                skip=int(data.get("skip", 0)),
                status=int(data.get("status", 503)),
                body=None if data.get("body") is None else str(data["body"]),
                headers={str(k): str(v) for k, v in headers.items()},
                delay_seconds=float(data.get("delay_seconds", 0.0)),
            )
        except OverflowError as exc:  # int(float("inf"))
            raise ValueError(f"a number is out of range: {exc}") from exc
        if fault.action not in ACTIONS:
            raise ValueError(f"action must be one of {sorted(ACTIONS)}")
        if fault.count < 1:
            raise ValueError("count must be at least 1")
        if fault.skip < 0:
            raise ValueError("skip must be 0 or more")
        if not 100 <= fault.status <= 599:
            raise ValueError("status must be an HTTP status between 100 and 599")
        if not 0 <= fault.delay_seconds <= MAX_DELAY:  # also refuses NaN
            raise ValueError(f"delay_seconds must be between 0 and {MAX_DELAY}")
        if not all(_header_safe(name, value) for name, value in fault.headers.items()):
            raise ValueError("header names must be tokens and values printable ASCII without line breaks")
        try:
            re.compile(fault.path)
        except re.error as exc:
            raise ValueError(f"path is not a valid regex: {exc}") from exc
        return fault

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and re.search(self.path, path) is not None


class FaultRegistry:
    """The active faults and the pending job error; shared by the API and the middleware."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._job_errors: list[str] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._job_errors.clear()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults]

    def take(self, method: str, path: str) -> Fault | None:
        """The first matching fault, consuming one of its uses (or one of the requests it lets pass)."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def add_job_error(self, message: str) -> None:
        with self._lock:
            self._job_errors.append(message)

    def take_job_error(self) -> str | None:
        with self._lock:
            return self._job_errors.pop(0) if self._job_errors else None


def drop_connection(send: Send) -> None:
    """Reset the TCP connection of this request without answering."""
    while hasattr(send, "__wrapped__"):  # an outer middleware's wrapper (DateHeaderMiddleware)
        send = send.__wrapped__
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("cannot drop the connection: not running under uvicorn")
    transport.abort()
    cycle.disconnected = True  # type: ignore[union-attr]  # keeps uvicorn from writing a 500


class FaultMiddleware:
    """Outermost ASGI layer; never applies to the emulator's own ``/emulator/`` endpoints."""

    def __init__(self, app: ASGIApp, registry: FaultRegistry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/emulator/"):
            await self.app(scope, receive, send)
            return
        fault = self.registry.take(scope["method"], path)
        if fault is None:
            await self.app(scope, receive, send)
        elif fault.action == "status":
            await self._answer(fault, send)
        elif fault.action == "close":
            drop_connection(send)
        elif fault.action == "delay":
            await asyncio.sleep(fault.delay_seconds)
            await self.app(scope, receive, send)
        else:  # close_after / status_after: process fully, swallow the answer, then drop it or replace it

            async def swallow(_message: Message) -> None:
                return None

            await self.app(scope, receive, swallow)
            if fault.action == "status_after":
                await self._answer(fault, send)
            else:
                drop_connection(send)

    @staticmethod
    async def _answer(fault: Fault, send: Send) -> None:
        body = (fault.body if fault.body is not None else '{"message": "injected fault"}').encode()
        headers = {"content-type": "application/json", **{k.lower(): v for k, v in fault.headers.items()}}
        headers["content-length"] = str(len(body))
        await send(
            {
                "type": "http.response.start",
                "status": fault.status,
                "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": body})
