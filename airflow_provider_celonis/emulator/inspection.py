"""The emulator's own endpoints: health, table inspection, stats, fault injection and an HTML overview.

They need the same credentials as the API (except health and the HTML page, which shows no secrets).
"""

from __future__ import annotations

import datetime as dt
import html
import math
import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.background import BackgroundTask
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response

from .data_push.models import parse_json
from .errors import not_found, validation_error
from .faults import Fault
from .state import EmulatorState
from .storage import find_table, lit, q

HTML_ROWS = 5


def _login(request: Request, pool_id: str | None = None) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    state.login(request.headers.get("authorization"), pool_id)
    return state


def _jsonable(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value).replace("inf", "Infinity").replace("nan", "NaN")  # JSON has no such numbers
    return value


def list_tables(state: EmulatorState, pool_id: str) -> list[dict[str, Any]]:
    cur = state.tables.cursor()
    try:
        rows = cur.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? ORDER BY table_name, ordinal_position",
            [pool_id],
        ).fetchall()
        tables: dict[str, list[dict[str, str]]] = {}
        for table, column, ctype in rows:
            tables.setdefault(str(table), []).append({"name": str(column), "type": str(ctype)})
        result = []
        for name, columns in tables.items():
            count = cur.execute(f"SELECT count(*) FROM {q(pool_id)}.{q(name)}").fetchone()
            result.append({"name": name, "rows": int(count[0]) if count else 0, "columns": columns})
        return result
    finally:
        cur.close()


def table_rows(
    state: EmulatorState, pool_id: str, table: str, limit: int | None = None
) -> list[dict[str, Any]]:
    cur = state.tables.cursor()
    try:
        stored = find_table(cur, pool_id, table)
        if stored is None:
            raise not_found(f"Table {table}")
        sql = f"SELECT * FROM {q(pool_id)}.{q(stored)}" + (
            f" LIMIT {int(limit)}" if limit is not None else ""
        )
        result = cur.execute(sql)
        names = [d[0] for d in result.description or []]
        return [{n: _jsonable(v) for n, v in zip(names, row, strict=True)} for row in result.fetchall()]
    finally:
        cur.close()


def table_parquet(state: EmulatorState, pool_id: str, table: str) -> Path:
    cur = state.tables.cursor()
    try:
        stored = find_table(cur, pool_id, table)
        if stored is None:
            raise not_found(f"Table {table}")
        name = str(state.tables.tmp_dir / f"export-{uuid.uuid4().hex}.parquet")
        cur.execute(f"COPY (SELECT * FROM {q(pool_id)}.{q(stored)}) TO {lit(name)} (FORMAT parquet)")
        return Path(name)
    finally:
        cur.close()


async def health() -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def tables(request: Request, pool_id: str) -> JSONResponse:
    return JSONResponse(list_tables(_login(request, pool_id), pool_id))


async def table(request: Request, pool_id: str, name: str) -> Response:
    state = _login(request, pool_id)
    stem, _, suffix = name.rpartition(".")
    if suffix == "json":
        limit = request.query_params.get("limit")
        return JSONResponse(
            # DuckDB's LIMIT is a BIGINT: a larger number means "all rows" anyway.
            table_rows(state, pool_id, stem, min(int(limit), 2**62) if limit and limit.isdigit() else None)
        )
    if suffix == "parquet":
        path = table_parquet(state, pool_id, stem)
        return FileResponse(
            path,
            media_type="application/vnd.apache.parquet",
            filename=f"{stem}.parquet",
            background=BackgroundTask(path.unlink, missing_ok=True),
        )
    raise not_found(f"Table {name} (use .json or .parquet)")


async def stats(request: Request) -> JSONResponse:
    return JSONResponse(_login(request).stats_body())


async def add_fault(request: Request) -> JSONResponse:
    state = _login(request)
    try:
        fault = Fault.from_json(parse_json(await request.body()))
    except (ValueError, TypeError) as exc:
        raise validation_error("fault", str(exc)) from exc
    state.faults.add(fault)
    return JSONResponse(state.faults.list())


async def list_faults(request: Request) -> JSONResponse:
    return JSONResponse(_login(request).faults.list())


async def clear_faults(request: Request) -> Response:
    state = _login(request)
    state.faults.clear()
    state.integration.clear_faults()
    return Response(status_code=200)


async def next_job_error(request: Request) -> Response:
    state = _login(request)
    try:
        message = parse_json(await request.body()).get("message")
    except (ValueError, AttributeError) as exc:
        raise validation_error("message", f"expected {{'message': str}}: {exc}") from exc
    if not isinstance(message, str) or not message:
        raise validation_error("message", "message must be a non-empty string")
    state.faults.add_job_error(message)
    return Response(status_code=200)


async def data_model(request: Request, pool_id: str, model_id: str) -> JSONResponse:
    return JSONResponse(_login(request, pool_id).integration.inspect_model(pool_id, model_id))


async def data_job_executions(request: Request, pool_id: str, job_id: str) -> JSONResponse:
    return JSONResponse(_login(request, pool_id).integration.inspect_executions(pool_id, job_id))


async def next_load_status(request: Request) -> Response:
    state = _login(request)
    try:
        body = parse_json(await request.body())
    except ValueError as exc:
        raise validation_error(None, f"Malformed JSON: {exc}") from exc
    state.integration.next_load_status(body)
    return Response(status_code=200)


async def overview(request: Request) -> HTMLResponse:
    return HTMLResponse(render_overview(request.app.state.emulator))


def router() -> APIRouter:
    """Health, tables, stats, faults and the HTML overview (routes only; the rules live elsewhere)."""
    api = APIRouter()
    api.add_api_route("/emulator/health", health, methods=["GET"])
    api.add_api_route("/emulator/api/pools/{pool_id}/tables", tables, methods=["GET"])
    api.add_api_route("/emulator/api/pools/{pool_id}/tables/{name}", table, methods=["GET"])
    api.add_api_route("/emulator/api/stats", stats, methods=["GET"])
    api.add_api_route("/emulator/api/faults", add_fault, methods=["POST"])
    api.add_api_route("/emulator/api/faults", list_faults, methods=["GET"])
    api.add_api_route("/emulator/api/faults", clear_faults, methods=["DELETE"])
    api.add_api_route("/emulator/api/faults/next-job-error", next_job_error, methods=["POST"])
    api.add_api_route("/emulator/api/faults/next-load-status", next_load_status, methods=["POST"])
    api.add_api_route("/emulator/api/pools/{pool_id}/data-models/{model_id}", data_model, methods=["GET"])
    api.add_api_route(
        "/emulator/api/pools/{pool_id}/data-jobs/{job_id}/executions", data_job_executions, methods=["GET"]
    )
    api.add_api_route("/", overview, methods=["GET"], include_in_schema=False)
    return api


def _table_html(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p><em>no rows</em></p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row.values()) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_overview(state: EmulatorState) -> str:
    """Jobs and tables at a glance; deliberately shows no credentials."""
    parts = ["<h1>Celonis emulator</h1><h2>Jobs</h2>"]
    store = state.data_push.store
    jobs = store.list_jobs()
    job_rows = [
        {
            "pool": j["dataPoolId"],
            "id": j["id"],
            "table": j["targetName"],
            "type": j["type"],
            "status": j["status"],
            "chunks": len(store.list_chunks(j["id"])),
            "logs": " | ".join(j["logs"]),
        }
        for j in jobs
    ]
    parts.append(_table_html(job_rows))
    data_jobs, data_models = state.integration.overview()
    parts += ["<h2>Data jobs</h2>", _table_html(data_jobs), "<h2>Data models</h2>", _table_html(data_models)]
    parts.append("<h2>Tables</h2>")
    for pool in sorted({j["dataPoolId"] for j in jobs} | state.ingestion.pools()):
        for info in list_tables(state, pool):
            parts.append(f"<h3>{html.escape(pool)}.{html.escape(info['name'])} ({info['rows']} rows)</h3>")
            parts.append(_table_html(table_rows(state, pool, info["name"], HTML_ROWS)))
    style = "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}</style>"
    return f"<!doctype html><html><head><title>Celonis emulator</title>{style}</head><body>{''.join(parts)}</body></html>"
