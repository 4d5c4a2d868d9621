"""A ``Date`` header stamped when each answer starts, as origin servers do (RFC 9110, section 6.6.1).

uvicorn refreshes its own ``Date`` once a second on its event loop, so under load it can be more than a
second old. Clients use ``Date`` to tell runs started before a status read from runs started after it
(``CelonisHook.past_server_second``), so a stale one would make the emulator harsher than any real server
in a way no contract allows, and its tests flaky.
"""

from __future__ import annotations

from email.utils import formatdate

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class DateHeaderMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
                headers.append((b"date", formatdate(usegmt=True).encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        stamped.__wrapped__ = send  # type: ignore[attr-defined]  # drop_connection reaches uvicorn's cycle
        await self.app(scope, receive, stamped)
