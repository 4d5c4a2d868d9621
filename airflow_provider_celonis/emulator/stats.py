"""Request counters keyed by route template, for tests that assert how a client talked to us."""

from __future__ import annotations

import threading
from collections import Counter

from starlette.routing import BaseRoute, Match
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

    The template is resolved up front from the routes, so requests that a fault answers are counted too.
    """

    def __init__(self, app: ASGIApp, routes: list[BaseRoute], stats: RequestStats) -> None:
        self.app = app
        self.routes = routes
        self.stats = stats

    def template(self, scope: Scope) -> str:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return str(getattr(route, "path", scope["path"]))
        return str(scope["path"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.stats.count(f"{scope['method']} {self.template(scope)}")
        await self.app(scope, receive, send)
