"""Emulator settings, shared by the CLI, the in-process test helper and the app.

One mutable dataclass so tests can tighten limits (e.g. ``execute_per_hour``) or switch the chunk checksum
on a running emulator. ``profile`` chooses how much the emulator promises: ``documented`` (the default)
answers only what the Celonis docs promise, ``lenient`` adds the extras older clients relied on.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .integration.config import IntegrationConfig, load_integration_config

GIB = 1024**3
PROFILES = ("documented", "lenient")
CHUNK_CHECKSUMS = ("none", "md5", "sha256", "opaque")
#: The region of the docs' demo team (US-1) and of every public client: ``us-east-1``.
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class KeySpec:
    """An application or API key, optionally restricted to some data pools (empty = every pool)."""

    key: str
    pools: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str) -> KeySpec:
        """Parse ``KEY`` or ``KEY=pool1,pool2``."""
        key, sep, pools = text.partition("=")
        if not key:
            raise ValueError(f"empty key in {text!r}")
        allowed = frozenset(p.strip() for p in pools.split(",") if p.strip()) if sep else frozenset()
        return cls(key=key, pools=allowed)


@dataclass(frozen=True)
class OAuthClientSpec:
    """An OAuth client; ``scopes`` empty means it may be granted any scope."""

    client_id: str
    secret: str
    scopes: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str) -> OAuthClientSpec:
        """Parse ``ID:SECRET`` or ``ID:SECRET:scope1 scope2``."""
        parts = text.split(":", 2)
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise ValueError(f"expected ID:SECRET[:scopes], got {text!r}")
        scopes = frozenset(parts[2].split()) if len(parts) == 3 else frozenset()
        return cls(client_id=parts[0], secret=parts[1], scopes=scopes)


@dataclass(frozen=True)
class IngestionKeySpec:
    """An S3 access key of a Standard Data Ingestion data connection, and the pool it writes to."""

    access_key: str
    secret_key: str = field(repr=False)
    connection_id: str
    pool_id: str

    @classmethod
    def parse(cls, text: str) -> IngestionKeySpec:
        """Parse ``ACCESS:SECRET:CONNECTION_ID[:POOL_ID]``; the pool defaults to the connection id."""
        parts = text.split(":")
        if len(parts) not in (3, 4) or not all(parts):
            raise ValueError(f"expected ACCESS:SECRET:CONNECTION_ID[:POOL_ID], got {text.split(':')[0]}:...")
        return cls(parts[0], parts[1], parts[2], parts[3] if len(parts) == 4 else parts[2])


@dataclass(frozen=True)
class IngestionTableSpec:
    """A table configured on a data connection (in Celonis: in the UI): primary keys and age column."""

    connection_id: str
    table: str
    primary_keys: tuple[str, ...]
    age_column: str | None = None

    @classmethod
    def parse(cls, text: str) -> IngestionTableSpec:
        """Parse ``CONNECTION_ID:TABLE:pk1,pk2[:AGE_COLUMN]``."""
        parts = text.split(":")
        keys = tuple(k.strip() for k in parts[2].split(",") if k.strip()) if len(parts) > 2 else ()
        if len(parts) not in (3, 4) or not parts[0] or not parts[1] or not keys:
            raise ValueError(f"expected CONNECTION_ID:TABLE:pk1,pk2[:AGE_COLUMN], got {text!r}")
        return cls(parts[0], parts[1], keys, (parts[3] or None) if len(parts) == 4 else None)


@dataclass(frozen=True)
class ConnectionSpec:
    """A Data Push data connection (``connectionId``), optionally bound to one pool."""

    connection_id: str
    pool_id: str | None = None

    @classmethod
    def parse(cls, text: str) -> ConnectionSpec:
        """Parse ``ID`` or ``ID=POOL``."""
        conn, _, pool = text.partition("=")
        if not conn.strip():
            raise ValueError(f"expected ID[=POOL], got {text!r}")
        return cls(conn.strip(), pool.strip() or None)


def load_ingestion_config(path: Path) -> tuple[IngestionTableSpec, ...]:
    """Tables from a JSON file: ``{"tables": [{"connection", "table", "primaryKeys", "ageColumn",
    "children": {"<nested field>": {"primaryKeys": [...]}}}]}``; a child becomes ``<table>_<field>``."""
    try:
        doc: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the ingestion config {path}: {exc}") from exc
    specs: list[IngestionTableSpec] = []
    for i, t in enumerate(doc.get("tables", []) if isinstance(doc, dict) else []):
        where = f"{path}: tables[{i}]"
        try:
            conn, table, keys = str(t["connection"]), str(t["table"]), tuple(map(str, t["primaryKeys"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{where} needs connection, table and primaryKeys") from exc
        if not keys:
            raise ValueError(f"{where}: primaryKeys must not be empty")
        specs.append(IngestionTableSpec(conn, table, keys, t.get("ageColumn") or None))
        for name, child in (t.get("children") or {}).items():
            child_keys = tuple(map(str, (child or {}).get("primaryKeys") or ()))
            if not child_keys:
                raise ValueError(f"{where}: child '{name}' needs primaryKeys")
            specs.append(IngestionTableSpec(conn, f"{table}_{name}", child_keys))
    return tuple(specs)


@dataclass
class EmulatorSettings:
    """Everything configurable; field names are the CLI options in snake_case."""

    host: str = "127.0.0.1"
    port: int = 8765
    data_dir: Path | None = None
    app_keys: tuple[KeySpec, ...] = ()
    api_keys: tuple[KeySpec, ...] = ()
    oauth_clients: tuple[OAuthClientSpec, ...] = ()
    pools: tuple[str, ...] = ()
    execute_per_second: int = 10
    execute_per_hour: int = 250
    max_chunk_bytes: int = GIB
    token_ttl: float = 899
    quota_window_seconds: float = 3600
    job_duration: float = 0.0
    log_level: str = "warning"
    ingestion_keys: tuple[IngestionKeySpec, ...] = ()
    ingestion_tables: tuple[IngestionTableSpec, ...] = ()
    ingestion_config: Path | None = None
    connections: tuple[ConnectionSpec, ...] = ()
    profile: str = "documented"
    chunk_checksum: str | None = None
    region: str = DEFAULT_REGION
    integration_config: Path | None = None
    integration_duration: float = 1.0
    integration_status_lag: float | None = None
    generated_app_key: bool = field(default=False)
    #: The Integration API's pools, jobs and data models, read from ``integration_config``.
    integration: IntegrationConfig = field(default_factory=IntegrationConfig, init=False, repr=False)

    def __post_init__(self) -> None:
        """Accept strings for every spec (``"ACCESS:SECRET:CONN"``...), so keyword helpers can pass them."""
        self.ingestion_keys = tuple(
            k if isinstance(k, IngestionKeySpec) else IngestionKeySpec.parse(k) for k in self.ingestion_keys
        )
        self.ingestion_tables = tuple(
            t if isinstance(t, IngestionTableSpec) else IngestionTableSpec.parse(t)
            for t in self.ingestion_tables
        )
        if self.ingestion_config is not None:
            self.ingestion_tables += load_ingestion_config(Path(self.ingestion_config))
        self.connections = tuple(
            c if isinstance(c, ConnectionSpec) else ConnectionSpec.parse(c) for c in self.connections
        )
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {self.profile!r}")
        if self.chunk_checksum is not None and self.chunk_checksum not in CHUNK_CHECKSUMS:
            raise ValueError(f"chunk_checksum must be one of {', '.join(CHUNK_CHECKSUMS)}")
        if self.integration_config is not None:
            self.integration = load_integration_config(Path(self.integration_config))
        if not self.integration_duration >= 0 or not (self.integration_status_lag or 0) >= 0:
            raise ValueError("integration_duration and integration_status_lag must be 0 or more seconds")

    @property
    def documented(self) -> bool:
        """True when the emulator promises only what the Celonis docs promise."""
        return self.profile == "documented"

    @property
    def checksum_mode(self) -> str:
        """The chunk listing's ``checksum``: as set, else ``opaque`` (documented) or ``md5`` (lenient)."""
        return self.chunk_checksum or ("opaque" if self.documented else "md5")

    @property
    def status_lag(self) -> float:
        """Seconds a job's summary status and a model's current load keep showing the previous one: as set,
        else 1 s (documented: nothing promises they are current) or 0 (lenient)."""
        if self.integration_status_lag is not None:
            return self.integration_status_lag
        return 1.0 if self.documented else 0.0

    def ensure_a_key(self) -> None:
        """Invent an application key when no credential at all was configured."""
        if not (self.app_keys or self.api_keys or self.oauth_clients):
            self.app_keys = (KeySpec(secrets.token_urlsafe(24)),)
            self.generated_app_key = True


def parse_size(text: str | int) -> int:
    """Parse ``1GB``, ``256MB``, ``10MiB``, ``512k`` or a plain byte count (binary multiples)."""
    if isinstance(text, int):
        return text
    units = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": GIB, "T": 1024**4}
    cleaned = text.strip().upper().removesuffix("IB").removesuffix("B")
    number = cleaned.rstrip("KMGT")
    unit = cleaned[len(number) :]
    if unit not in units or not number:
        raise ValueError(f"not a size: {text!r}")
    return int(float(number) * units[unit])
