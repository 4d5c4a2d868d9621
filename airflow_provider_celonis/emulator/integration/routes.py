"""The Integration API's HTTP routes (base path ``/integration/api``): authenticate, parse, call the backend,
shape the answer. No rules here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from ..data_push.models import parse_json
from ..errors import validation_error

if TYPE_CHECKING:
    from ..state import EmulatorState
    from .backend import IntegrationBackend

PREFIX = "/integration/api"
POOL = "/pools/{pool_id}"
JOB = POOL + "/jobs/{job_id}"
MODEL = POOL + "/data-models/{model_id}"


def _backend(request: Request, pool_id: str) -> IntegrationBackend:
    """Authenticate the caller for ``pool_id`` and return the Integration backend."""
    state: EmulatorState = request.app.state.emulator
    state.login(request.headers.get("authorization"), pool_id)
    return state.integration


def _int(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise validation_error(name, f"{name} must be a whole number of 0 or more, got {value!r}")
    return int(value)


def _bool(request: Request, name: str, default: bool) -> bool:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    if value.lower() not in ("true", "false"):
        raise validation_error(name, f"{name} must be true or false, got {value!r}")
    return value.lower() == "true"


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return parse_json(raw) if raw.strip() else None
    except ValueError as exc:
        raise validation_error(None, f"Malformed JSON: {exc}", "MALFORMED_JSON") from exc


async def list_jobs(request: Request, pool_id: str) -> JSONResponse:
    return JSONResponse(_backend(request, pool_id).jobs(pool_id))


async def get_job(request: Request, pool_id: str, job_id: str) -> JSONResponse:
    return JSONResponse(_backend(request, pool_id).job_transport(pool_id, job_id))


async def list_tasks(request: Request, pool_id: str, job_id: str) -> JSONResponse:
    return JSONResponse(_backend(request, pool_id).tasks(pool_id, job_id))


async def list_loads(request: Request, pool_id: str, job_id: str) -> JSONResponse:
    return JSONResponse(_backend(request, pool_id).model_executions(pool_id, job_id))


async def execute(request: Request, pool_id: str, job_id: str) -> Response:
    backend = _backend(request, pool_id)
    backend.execute(pool_id, job_id, await _body(request))
    return Response(status_code=200)


async def cancel(request: Request, pool_id: str, job_id: str) -> Response:
    _backend(request, pool_id).cancel(pool_id, job_id)
    return Response(status_code=200)


async def statuses(request: Request, pool_id: str) -> JSONResponse:
    return JSONResponse(_backend(request, pool_id).statuses(pool_id))


async def job_executions(request: Request, pool_id: str, job_id: str) -> JSONResponse:
    backend = _backend(request, pool_id)
    return JSONResponse(
        backend.execution_items(pool_id, job_id, _int(request, "limit"), _int(request, "page"))
    )


async def executions(request: Request, pool_id: str) -> JSONResponse:
    backend = _backend(request, pool_id)
    params = request.query_params
    return JSONResponse(
        backend.execution_children(pool_id, params.get("executionId"), params.get("type"), params.get("id"))
    )


async def execution_detail(request: Request, pool_id: str) -> JSONResponse:
    backend = _backend(request, pool_id)
    params = request.query_params
    answer = backend.log_detail(
        pool_id,
        params.get("executionId"),
        params.get("id"),
        params.get("type"),
        _int(request, "limit"),
        _int(request, "page"),
    )
    return JSONResponse(answer)


async def list_models(request: Request, pool_id: str) -> JSONResponse:
    return JSONResponse(_backend(request, pool_id).data_models(pool_id))


async def get_model(request: Request, pool_id: str, model_id: str) -> JSONResponse:
    return JSONResponse(_backend(request, pool_id).data_model(pool_id, model_id))


async def model_tables(request: Request, pool_id: str, model_id: str) -> JSONResponse:
    return JSONResponse(_backend(request, pool_id).model_tables(pool_id, model_id))


async def reload(request: Request, pool_id: str, model_id: str) -> Response:
    backend = _backend(request, pool_id)
    backend.reload(pool_id, model_id, _bool(request, "forceComplete", default=False))
    return Response(status_code=200)


async def partial_reload(request: Request, pool_id: str, model_id: str) -> Response:
    backend = _backend(request, pool_id)
    _bool(request, "fullReload", default=False)  # accepted and checked; it changes nothing here
    backend.partial_reload(pool_id, model_id, await _body(request))
    return Response(status_code=200)


async def load_info(request: Request, pool_id: str, model_id: str) -> JSONResponse:
    return JSONResponse(_backend(request, pool_id).load_info(pool_id, model_id))


async def pool_tables(request: Request, pool_id: str) -> JSONResponse:
    return JSONResponse(_backend(request, pool_id).pool_tables(pool_id))


async def pool_columns(request: Request, pool_id: str) -> JSONResponse:
    backend = _backend(request, pool_id)
    params = request.query_params
    return JSONResponse(backend.pool_columns(pool_id, params.get("tableName"), params.get("schemaName")))


Handler = Callable[..., Awaitable[Response]]

ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", f"{POOL}/jobs", list_jobs),
    ("GET", JOB, get_job),
    ("GET", f"{JOB}/tasks", list_tasks),
    ("GET", f"{JOB}/loads", list_loads),
    ("POST", f"{JOB}/execute", execute),
    ("POST", f"{JOB}/cancel", cancel),
    ("GET", f"{POOL}/logs/status", statuses),
    ("GET", f"{POOL}/logs/executions", executions),
    ("GET", f"{POOL}/logs/executions/detail", execution_detail),
    ("GET", POOL + "/logs/{job_id}/executions", job_executions),
    ("GET", f"{POOL}/data-models", list_models),
    ("GET", MODEL, get_model),
    ("GET", POOL + "/data-model/{model_id}/tables", model_tables),
    ("POST", f"{MODEL}/reload", reload),
    ("GET", f"{MODEL}/load-history/load-info-sync", load_info),
    ("POST", "/v1/data-pools/{pool_id}/data-models/{model_id}/load/partial-sync", partial_reload),
    ("GET", f"{POOL}/tables", pool_tables),
    ("GET", f"{POOL}/columns", pool_columns),
]


def router() -> APIRouter:
    """The Integration API endpoints relative to :data:`PREFIX`, with and without a trailing slash."""
    api = APIRouter()
    for slash in ("", "/"):
        for method, path, handler in ROUTES:
            api.add_api_route(path + slash, handler, methods=[method])
    return api
