"""The FastAPI application: the Data Push API under both base paths, OAuth, and the wiring.

Handlers stay thin: they authenticate, validate and delegate to the store, the worker and the engine.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from . import inspection, s3
from .auth import OAuthError
from .errors import ApiError, validation_error
from .faults import FaultMiddleware
from .models import OPEN, JobStatus, new_job, now_iso, parse_json
from .settings import EmulatorSettings
from .state import EmulatorState, retry_after_error
from .stats import StatsMiddleware
from .store import public_chunk
from .uploads import receive_chunk

BASE_PATHS = ("/integration/api/v1/data-push", "/data-ingestion/api/v1/data-push")


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def _login(request: Request, pool_id: str) -> EmulatorState:
    state = _state(request)
    state.login(request.headers.get("authorization"), pool_id)
    return state


def data_push_router() -> APIRouter:
    """The Data Push endpoints, relative to a base path; registered with and without trailing slashes."""
    router = APIRouter()

    async def create_job(request: Request, pool_id: str) -> JSONResponse:
        state = _login(request, pool_id)
        try:
            body = parse_json(await request.body())
        except ValueError as exc:
            raise validation_error(None, f"Malformed JSON: {exc}", "MALFORMED_JSON") from exc
        job = new_job(body, pool_id)
        state.db.add_job(job)
        state.job_created()
        return JSONResponse(job)

    async def list_jobs(request: Request, pool_id: str) -> JSONResponse:
        state = _login(request, pool_id)
        return JSONResponse(state.db.list_jobs(pool_id))

    async def get_job(request: Request, pool_id: str, job_id: str) -> JSONResponse:
        state = _login(request, pool_id)
        return JSONResponse(state.job_or_404(pool_id, job_id))

    async def execute_job(request: Request, pool_id: str, job_id: str) -> Response:
        state = _login(request, pool_id)
        wait = state.limiter.acquire()
        if wait is not None:
            raise retry_after_error(wait)
        job = state.job_or_404(pool_id, job_id)
        dedup = request.query_params.get("duplicateRemovalColumn") or None
        if state.db.transition(job_id, [JobStatus.NEW], JobStatus.QUEUED, dedup_column=dedup) is None:
            raise ApiError(
                409, f"Job {job_id} is {job['status']}; only NEW jobs can be executed", short="CONFLICT"
            )
        state.jobs_worker.submit(job_id)
        return Response(status_code=200)

    async def delete_job(request: Request, pool_id: str, job_id: str) -> Response:
        state = _login(request, pool_id)
        state.job_or_404(pool_id, job_id)
        state.db.transition(job_id, OPEN, JobStatus.CANCELED, log="Job deleted")
        state.jobs_worker.cancel(job_id)
        state.db.delete_job(job_id)
        return Response(status_code=200)

    async def cancel_job(request: Request, pool_id: str, job_id: str) -> Response:
        state = _login(request, pool_id)
        job = state.job_or_404(pool_id, job_id)
        if state.db.transition(job_id, OPEN, JobStatus.CANCELED, log="Job canceled") is None:
            raise ApiError(409, f"Job {job_id} is {job['status']} and cannot be canceled", short="CONFLICT")
        state.jobs_worker.cancel(job_id)
        return Response(status_code=200)

    async def list_chunks(request: Request, pool_id: str, job_id: str) -> JSONResponse:
        state = _login(request, pool_id)
        state.job_or_404(pool_id, job_id)
        return JSONResponse([public_chunk(c) for c in state.db.list_chunks(job_id)])

    async def upload(request: Request, pool_id: str, job_id: str, chunk_type: str) -> JSONResponse:
        state = _login(request, pool_id)
        job = state.job_or_404(pool_id, job_id)
        if job["status"] != JobStatus.NEW.value:
            raise ApiError(400, "Job already locked", short="JOB_LOCKED")
        received = await receive_chunk(
            request.headers.get("content-type", ""),
            request.headers.get("content-length"),
            request.stream(),
            state.db.upload_dir,
            state.settings.max_chunk_bytes,
        )
        chunk = {
            "id": str(uuid.uuid4()),
            "creationDate": now_iso(),
            "type": chunk_type,
            "pushJobId": job_id,
            "checksum": received.md5,
        }
        if not state.db.add_chunk(
            job_id, chunk, received.path, received.size, lambda j: j["status"] == JobStatus.NEW.value
        ):
            received.path.unlink(missing_ok=True)
            raise ApiError(400, "Job already locked", short="JOB_LOCKED")
        return JSONResponse(chunk)

    async def upload_upserted(request: Request, pool_id: str, job_id: str) -> JSONResponse:
        return await upload(request, pool_id, job_id, "UPSERT")

    async def upload_deleted(request: Request, pool_id: str, job_id: str) -> JSONResponse:
        return await upload(request, pool_id, job_id, "DELETE")

    for slash in ("/", ""):
        router.add_api_route(f"/{{pool_id}}/jobs{slash}", create_job, methods=["POST"])
        router.add_api_route(f"/{{pool_id}}/jobs{slash}", list_jobs, methods=["GET"])
        router.add_api_route(f"/{{pool_id}}/jobs/{{job_id}}{slash}", execute_job, methods=["POST"])
        router.add_api_route(f"/{{pool_id}}/jobs/{{job_id}}{slash}", get_job, methods=["GET"])
        router.add_api_route(f"/{{pool_id}}/jobs/{{job_id}}{slash}", delete_job, methods=["DELETE"])
        router.add_api_route(f"/{{pool_id}}/jobs/{{job_id}}/cancel{slash}", cancel_job, methods=["POST"])
        router.add_api_route(f"/{{pool_id}}/jobs/{{job_id}}/chunks{slash}", list_chunks, methods=["GET"])
        router.add_api_route(
            f"/{{pool_id}}/jobs/{{job_id}}/chunks/upserted{slash}", upload_upserted, methods=["POST"]
        )
        router.add_api_route(
            f"/{{pool_id}}/jobs/{{job_id}}/chunks/deleted{slash}", upload_deleted, methods=["POST"]
        )
    return router


async def oauth_token(request: Request) -> JSONResponse:
    """OAuth 2.0 client credentials (RFC 6749 4.4), client auth by HTTP Basic or form fields."""
    try:
        form = await request.form()
    except Exception as exc:  # a malformed body (multipart without parts, bad boundary) is the client's error
        return JSONResponse(
            {"error": "invalid_request", "error_description": f"unreadable form body: {exc}"}, status_code=400
        )

    def field(name: str) -> str | None:
        value = form.get(name)
        return value if isinstance(value, str) else None

    try:
        body: dict[str, Any] = _state(request).auth.issue_token(
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
    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return exc.response()

    async def bad_request(request: Request, exc: Exception) -> Response:
        return validation_error(None, str(exc), "BAD_REQUEST").response()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return ApiError(exc.status_code, str(exc.detail)).response()

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, bad_request)
    app.add_exception_handler(HTTPException, http_error)


def create_app(settings: EmulatorSettings, state: EmulatorState) -> ASGIApp:
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
    routers = [(base, data_push_router()) for base in BASE_PATHS]
    routers += [("", inspection.router()), (s3.PREFIX, s3.router()), ("", s3.status_router())]
    for prefix, router in routers:  # s3: the Standard Data Ingestion (S3) API
        api.include_router(router, prefix=prefix)
    api.add_api_route("/oauth2/token", oauth_token, methods=["POST"])
    templates = [("/oauth2/token", ["POST"])]
    templates += [
        (prefix + str(getattr(route, "path", "")), getattr(route, "methods", None) or ["GET"])
        for prefix, router in routers
        for route in router.routes
    ]
    return StatsMiddleware(FaultMiddleware(api, state.faults), templates, state.stats)
