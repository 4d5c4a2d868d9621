"""The Data Push HTTP routes: authenticate, parse, call the backend, shape the answer. No rules here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from ..errors import validation_error
from .models import parse_json

if TYPE_CHECKING:
    from ..state import EmulatorState
    from .backend import DataPushBackend

BASE_PATHS = ("/integration/api/v1/data-push", "/data-ingestion/api/v1/data-push")


def _backend(request: Request, pool_id: str) -> DataPushBackend:
    """Authenticate the caller for ``pool_id`` and return the Data Push backend."""
    state: EmulatorState = request.app.state.emulator
    state.login(request.headers.get("authorization"), pool_id)
    return state.data_push


async def create_job(request: Request, pool_id: str) -> JSONResponse:
    backend = _backend(request, pool_id)
    try:
        body = parse_json(await request.body())
    except ValueError as exc:
        raise validation_error(None, f"Malformed JSON: {exc}", "MALFORMED_JSON") from exc
    return JSONResponse(backend.create_job(pool_id, body))


async def list_jobs(request: Request, pool_id: str) -> JSONResponse:
    return JSONResponse(_backend(request, pool_id).list_jobs(pool_id))


async def get_job(request: Request, pool_id: str, job_id: str) -> JSONResponse:
    return JSONResponse(_backend(request, pool_id).job(pool_id, job_id))


async def execute_job(request: Request, pool_id: str, job_id: str) -> Response:
    dedup = request.query_params.get("duplicateRemovalColumn") or None
    _backend(request, pool_id).execute(pool_id, job_id, dedup)
    return Response(status_code=200)


async def delete_job(request: Request, pool_id: str, job_id: str) -> Response:
    _backend(request, pool_id).delete(pool_id, job_id)
    return Response(status_code=200)


async def cancel_job(request: Request, pool_id: str, job_id: str) -> Response:
    _backend(request, pool_id).cancel(pool_id, job_id)
    return Response(status_code=200)


async def list_chunks(request: Request, pool_id: str, job_id: str) -> JSONResponse:
    return JSONResponse(_backend(request, pool_id).chunks(pool_id, job_id))


async def _upload(request: Request, pool_id: str, job_id: str, kind: str) -> Response:
    """The docs promise "200 OK, No Content"; the lenient profile also answers the stored chunk."""
    backend = _backend(request, pool_id)
    chunk = await backend.upload(pool_id, job_id, kind, dict(request.headers), request.stream())
    if backend.settings.documented:
        return Response(status_code=200)
    return JSONResponse(chunk)


async def upload_upserted(request: Request, pool_id: str, job_id: str) -> Response:
    return await _upload(request, pool_id, job_id, "UPSERT")


async def upload_deleted(request: Request, pool_id: str, job_id: str) -> Response:
    return await _upload(request, pool_id, job_id, "DELETE")


def router() -> APIRouter:
    """The Data Push endpoints, relative to a base path; registered with and without trailing slashes."""
    api = APIRouter()
    job = "/{pool_id}/jobs/{job_id}"
    for slash in ("/", ""):
        api.add_api_route(f"/{{pool_id}}/jobs{slash}", create_job, methods=["POST"])
        api.add_api_route(f"/{{pool_id}}/jobs{slash}", list_jobs, methods=["GET"])
        api.add_api_route(f"{job}{slash}", execute_job, methods=["POST"])
        api.add_api_route(f"{job}{slash}", get_job, methods=["GET"])
        api.add_api_route(f"{job}{slash}", delete_job, methods=["DELETE"])
        api.add_api_route(f"{job}/cancel{slash}", cancel_job, methods=["POST"])
        api.add_api_route(f"{job}/chunks{slash}", list_chunks, methods=["GET"])
        api.add_api_route(f"{job}/chunks/upserted{slash}", upload_upserted, methods=["POST"])
        api.add_api_route(f"{job}/chunks/deleted{slash}", upload_deleted, methods=["POST"])
    return api
