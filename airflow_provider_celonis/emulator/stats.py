"""Request counters keyed by route template, for tests that assert how a client talked to us."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable

from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send


class RequestStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def snapshot(self) -> tuple[dict[str, int], int]:
        with self._lock:
            return dict(self._counts), sum(self._counts.values())


class StatsMiddleware:
    """Counts every HTTP request as ``"<METHOD> <route template>"``, faulted ones included.

    The template is resolved up front, so requests that a fault answers are counted too. Templates are
    compiled here rather than read from ``app.routes``, whose shape changes between FastAPI releases
    (newer ones nest included routers).
    """

    def __init__(
        self, app: ASGIApp, templates: Iterable[tuple[str, Iterable[str]]], stats: RequestStats
    ) -> None:
        self.app = app
        self.templates = [
            (compile_path(path)[0], {m.upper() for m in methods}, path) for path, methods in templates
        ]
        self.stats = stats

    def template(self, scope: Scope) -> str:
        path, method = scope["path"], scope["method"]
        for regex, methods, template in self.templates:
            if method in methods and regex.match(path):
                return template
        return str(path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.stats.count(f"{scope['method']} {self.template(scope)}")
        await self.app(scope, receive, send)
