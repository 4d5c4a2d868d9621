"""The ASGI application: the services' routes, OAuth, inspection, error handlers and the middlewares."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from . import inspection
from .auth import OAuthError
from .data_push import routes as data_push_routes
from .date_header import DateHeaderMiddleware
from .errors import ApiError, validation_error
from .faults import FaultMiddleware
from .ingestion import routes as ingestion_routes
from .integration import routes as integration_routes
from .state import EmulatorState
from .stats import StatsMiddleware


async def oauth_token(request: Request) -> JSONResponse:
    """OAuth 2.0 client credentials (RFC 6749 4.4), client auth by HTTP Basic or form fields."""
    try:
        form = await request.form()
    except Exception as exc:  # noqa: BLE001 - a malformed body (multipart without parts, bad boundary) is the client's error
        return JSONResponse(
            {"error": "invalid_request", "error_description": f"unreadable form body: {exc}"}, status_code=400
        )

    def field(name: str) -> str | None:
        value = form.get(name)
        return value if isinstance(value, str) else None

    state: EmulatorState = request.app.state.emulator
    try:
        body: dict[str, Any] = state.auth.issue_token(
            field("grant_type"),
            request.headers.get("authorization"),
            field("client_id"),
            field("client_secret"),
            field("scope"),
        )
    except OAuthError as exc:
        headers = {"WWW-Authenticate": "Basic"} if exc.status == 401 else {}
        return JSONResponse(
            {"error": exc.error, "error_description": exc.description},
            status_code=exc.status,
            headers=headers,
        )
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def _install_error_handlers(app: FastAPI) -> None:
    async def api_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return exc.response()

    async def bad_request(_request: Request, exc: Exception) -> Response:
        return validation_error(None, str(exc), "BAD_REQUEST").response()

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return ApiError(exc.status_code, str(exc.detail)).response()

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, bad_request)
    app.add_exception_handler(HTTPException, http_error)


def create_app(state: EmulatorState) -> ASGIApp:
    """The ASGI app uvicorn serves: stats and fault injection around FastAPI."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.start()
        try:
            yield
        finally:
            state.stop()

    api = FastAPI(title="Celonis emulator", lifespan=lifespan, docs_url="/emulator/docs", openapi_url=None)
    api.state.emulator = state
    _install_error_handlers(api)
    routers = [(base, data_push_routes.router()) for base in data_push_routes.BASE_PATHS]
    routers += [
        ("", inspection.router()),
        (ingestion_routes.PREFIX, ingestion_routes.router()),
        ("", ingestion_routes.status_router()),
        (integration_routes.PREFIX, integration_routes.router()),
    ]
    for prefix, router in routers:
        api.include_router(router, prefix=prefix)
    api.add_api_route("/oauth2/token", oauth_token, methods=["POST"])
    templates = [("/oauth2/token", ["POST"])]
    templates += [
        (prefix + str(getattr(route, "path", "")), getattr(route, "methods", None) or ["GET"])
        for prefix, router in routers
        for route in router.routes
    ]
    return DateHeaderMiddleware(StatsMiddleware(FaultMiddleware(api, state.faults), templates, state.stats))
