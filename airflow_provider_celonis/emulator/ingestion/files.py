"""An uploaded ingestion object waiting to be applied: what the worker queues and the loader applies."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class IngestionFile:
    """One uploaded object waiting to be applied, with the keys its table is configured with."""

    seq: int
    key: str
    path: Path
    connection_id: str
    pool_id: str
    table: str
    primary_keys: tuple[str, ...]
    age_column: str | None
    received: str
    #: lower child table name (``<table>_<field>``) -> its configured primary key
    child_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: a nested field whose child table has no configured key fails the file (documented profile)
    children_need_keys: bool = False
    status: str = "PENDING"
    rows: int = 0
    message: str = ""

    def public(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "key": self.key,
            "connectionId": self.connection_id,
            "poolId": self.pool_id,
            "table": self.table,
            "primaryKeys": list(self.primary_keys),
            "ageColumn": self.age_column,
            "received": self.received,
            "status": self.status,
            "rows": self.rows,
            "message": self.message,
        }
