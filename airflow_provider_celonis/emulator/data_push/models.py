"""The Data Push wire model: validating a job description and shaping jobs and chunks as JSON.

Jobs are kept as plain dicts in the Celonis field names so what we persist is what we answer.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from ..errors import ApiError, validation_error
from ..storage import NAME_RULE, valid_name


class JobStatus(str, Enum):
    NEW = "NEW"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    ERROR = "ERROR"
    CANCELED = "CANCELED"


TERMINAL = frozenset({JobStatus.DONE, JobStatus.ERROR, JobStatus.CANCELED})
OPEN = frozenset({JobStatus.NEW, JobStatus.QUEUED, JobStatus.RUNNING})

ENUMS: dict[str, frozenset[str]] = {
    "type": frozenset({"REPLACE", "DELTA"}),
    "fileType": frozenset({"PARQUET", "CSV"}),
    "upsertStrategy": frozenset({"UPSERT_WITH_UNCHANGED_METADATA", "UPSERT_WITH_NULLIFICATION"}),
}
COLUMN_TYPES = frozenset({"INTEGER", "DATE", "TIME", "DATETIME", "FLOAT", "BOOLEAN", "STRING"})
CSV_OPTION_FIELDS = (
    "charSet",
    "dateFormat",
    "decimalSeparator",
    "escapeSequence",
    "lineEnding",
    "quoteSequence",
    "separatorSequence",
    "thousandSeparator",
)


def parse_json(raw: bytes) -> Any:
    """Decode a request body as strict JSON (no NaN or Infinity, which could not be answered back).

    Raises ValueError with a readable reason, also for bodies nested too deeply to decode.
    """

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not valid JSON")

    def finite(text: str) -> float:
        value = float(text)
        if value in (float("inf"), float("-inf")):
            raise ValueError(f"the number {text[:40]} is out of range")
        return value

    try:
        return json.loads(raw or b"null", parse_constant=refuse, parse_float=finite)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"the body is not UTF-8: {exc}") from None


def now_iso() -> str:
    """Timestamps as ISO-8601 with milliseconds, the way Spring/Jackson renders them."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def name_error(attribute: str, what: str, name: object) -> ApiError:
    """A 400 naming the offending name and the rule it breaks."""
    shown = "missing" if name is None else f"{name!r} is not a valid name"
    return validation_error(attribute, f"{what} {shown}: {NAME_RULE}", "INVALID_NAME")


def _check_enum(body: dict[str, Any], name: str, default: str | None) -> str | None:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str) or value not in ENUMS[name]:
        raise validation_error(
            name, f"Unknown value {value!r} for {name}; expected one of {sorted(ENUMS[name])}"
        )
    return str(value)


def _check_table_schema(schema: Any) -> dict[str, Any] | None:
    if schema is None:
        return None
    if not isinstance(schema, dict) or not isinstance(schema.get("columns", []), list):
        raise validation_error("tableSchema", "tableSchema must be an object with a columns list")
    columns = []
    for i, col in enumerate(schema.get("columns") or []):
        attr = f"tableSchema.columns[{i}]"
        if not isinstance(col, dict):
            raise validation_error(attr, "a column must be an object")
        if not valid_name(col.get("columnName")):
            raise name_error(f"{attr}.columnName", "columnName", col.get("columnName"))
        ctype = col.get("columnType")
        if ctype is not None and ctype not in COLUMN_TYPES:
            raise validation_error(f"{attr}.columnType", f"Unknown columnType {ctype!r}")
        for num in ("decimals", "fieldLength"):
            if col.get(num) is not None and (not isinstance(col[num], int) or col[num] < 0):
                raise validation_error(f"{attr}.{num}", f"{num} must be a non-negative integer")
        columns.append(
            {
                "columnName": col["columnName"],
                "columnType": ctype,
                "decimals": col.get("decimals"),
                "fieldLength": col.get("fieldLength"),
                "pkField": bool(col.get("pkField", False)),
            }
        )
    return {"tableName": schema.get("tableName"), "columns": columns}


def _check_csv_options(options: Any) -> dict[str, Any] | None:
    if options is None:
        return None
    if not isinstance(options, dict):
        raise validation_error("csvParsingOptions", "csvParsingOptions must be an object")
    result: dict[str, Any] = {}
    for name in CSV_OPTION_FIELDS:
        value = options.get(name)
        if value is not None and not isinstance(value, str):
            raise validation_error(f"csvParsingOptions.{name}", f"{name} must be a string")
        result[name] = value
    extra = options.get("additionalColumnOptions") or []
    if not isinstance(extra, list) or not all(isinstance(e, dict) for e in extra):
        raise validation_error("csvParsingOptions.additionalColumnOptions", "must be a list of objects")
    result["additionalColumnOptions"] = extra
    return result


def _string_list(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise validation_error(name, f"{name} must be a list of strings")
    return list(value)


def new_job(body: Any, pool_id: str) -> dict[str, Any]:
    """Validate a create-job body and return the stored job (status NEW); raises 400 ``ApiError``."""
    if not isinstance(body, dict):
        raise validation_error(None, "Request body must be a JSON object", "MALFORMED_JSON")
    target = body.get("targetName")
    if not valid_name(target):
        raise name_error("targetName", "targetName", target)
    job_type = _check_enum(body, "type", None)
    if job_type is None:
        raise validation_error("type", "type is required (REPLACE or DELTA)", "REQUIRED")
    keys = _string_list(body, "keys")
    for key in keys:
        if not valid_name(key):
            raise name_error("keys", "key column", key)
    fallback = body.get("fallbackVarcharLength")
    if fallback is not None and (not isinstance(fallback, int) or fallback <= 0):
        raise validation_error("fallbackVarcharLength", "fallbackVarcharLength must be a positive integer")
    stamp = now_iso()
    return {
        "id": str(uuid.uuid4()),
        "targetName": target,
        "lastModified": stamp,
        "lastPing": None,
        "status": JobStatus.NEW.value,
        "type": job_type,
        "fileType": _check_enum(body, "fileType", "PARQUET"),
        "targetSchema": body.get("targetSchema"),
        "upsertStrategy": _check_enum(body, "upsertStrategy", "UPSERT_WITH_UNCHANGED_METADATA"),
        "fallbackVarcharLength": fallback,
        "dataPoolId": pool_id,
        "connectionId": body.get("connectionId"),
        "postExecutionQuery": body.get("postExecutionQuery"),
        "allowDuplicate": bool(body.get("allowDuplicate", False)),
        "foreignKeys": body.get("foreignKeys"),
        "keys": keys,
        "logs": [],
        "tableSchema": _check_table_schema(body.get("tableSchema")),
        "csvParsingOptions": _check_csv_options(body.get("csvParsingOptions")),
        "mirrorTargetNames": _string_list(body, "mirrorTargetNames"),
        "changeDate": stamp,
    }


def job_keys(job: dict[str, Any]) -> list[str]:
    """The job's key columns: ``keys`` plus any ``pkField`` columns of the table schema, deduplicated."""
    keys = list(job.get("keys") or [])
    for col in (job.get("tableSchema") or {}).get("columns", []):
        if col.get("pkField") and col["columnName"].lower() not in {k.lower() for k in keys}:
            keys.append(col["columnName"])
    return keys
