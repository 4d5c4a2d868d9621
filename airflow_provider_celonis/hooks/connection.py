"""Reading and validating a ``celonis`` Airflow connection.

Validation happens before any request so that a typo in the connection form fails with a message naming
the field, not with a 404 from somewhere deep in a push.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from airflow_provider_celonis.hooks.errors import CelonisConfigError

AuthType = Literal["app_key", "api_key", "oauth"]
AUTH_TYPES: tuple[AuthType, ...] = ("app_key", "api_key", "oauth")
API_BASE_PATHS = ("/data-ingestion/api", "/integration/api")
DEFAULT_SCOPES = "integration.data-pools"
DEFAULT_TIMEOUT = 60.0
CONNECT_TIMEOUT = 10.0


def is_loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


def _as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off", ""):
        return False
    raise CelonisConfigError(f"Celonis connection extra '{name}' must be true or false, got {value!r}")


@dataclass(frozen=True)
class CelonisConnectionConfig:
    """Everything the hook needs from a connection, checked. ``secret`` is never part of ``repr``."""

    base_url: str
    auth_type: AuthType
    secret: str = field(repr=False)
    client_id: str | None = None
    data_pool_id: str | None = None
    oauth_scopes: str = DEFAULT_SCOPES
    oauth_client_auth: Literal["basic", "post"] = "basic"
    api_base_path: str = "/data-ingestion/api"
    verify: bool | str = True
    timeout: float = DEFAULT_TIMEOUT
    retries: int = 5

    @property
    def data_push_root(self) -> str:
        return f"{self.base_url}{self.api_base_path}/v1/data-push"

    @property
    def integration_root(self) -> str:
        """The Integration API (data jobs, data models): always ``/integration/api``, whatever ``api_base_path``."""
        return f"{self.base_url}/integration/api"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth2/token"

    @classmethod
    def from_connection(cls, conn: Any) -> CelonisConnectionConfig:
        """Build from an Airflow ``Connection`` (sdk or core; only attributes are read)."""
        extras = _extras(conn)
        conn_id = getattr(conn, "conn_id", None) or "celonis"
        base_url = _base_url(
            conn.host,
            getattr(conn, "port", None),
            conn_id,
            _as_bool(extras.get("allow_insecure_http") or False, "allow_insecure_http"),
        )
        auth_type = str(extras.get("auth_type") or "app_key").strip().lower()
        if auth_type not in AUTH_TYPES:
            raise CelonisConfigError(
                f"Connection '{conn_id}': unknown auth_type {auth_type!r}; use one of {', '.join(AUTH_TYPES)}"
            )
        secret = conn.password or ""
        if not secret:
            what = "OAuth client secret" if auth_type == "oauth" else "key"
            raise CelonisConfigError(f"Connection '{conn_id}': the {what} (password field) is empty")
        client_id = conn.login or None
        if auth_type == "oauth" and not client_id:
            raise CelonisConfigError(
                f"Connection '{conn_id}': auth_type 'oauth' needs the OAuth client id in the login field"
            )
        client_auth = str(extras.get("oauth_client_auth") or "basic").lower()
        if client_auth not in ("basic", "post"):
            raise CelonisConfigError(
                f"Connection '{conn_id}': oauth_client_auth must be 'basic' or 'post', got {client_auth!r}"
            )
        api_base_path = "/" + str(extras.get("api_base_path") or API_BASE_PATHS[0]).strip().strip("/")
        if api_base_path not in API_BASE_PATHS:
            raise CelonisConfigError(
                f"Connection '{conn_id}': api_base_path must be one of {', '.join(API_BASE_PATHS)}, "
                f"got {api_base_path!r}"
            )
        return cls(
            base_url=base_url,
            auth_type=auth_type,
            secret=secret,
            client_id=client_id,
            data_pool_id=(str(extras["data_pool_id"]).strip() or None)
            if extras.get("data_pool_id")
            else None,
            oauth_scopes=" ".join(
                str(extras.get("oauth_scopes") or DEFAULT_SCOPES).replace(",", " ").split()
            ),
            oauth_client_auth=client_auth,  # type: ignore[arg-type]
            api_base_path=api_base_path,
            verify=_verify(extras.get("verify", True)),
            timeout=_timeout(extras.get("timeout"), conn_id),
            retries=_retries(extras.get("retries"), conn_id),
        )


def _extras(conn: Any) -> dict[str, Any]:
    extra = getattr(conn, "extra_dejson", None)
    if extra is None:
        raw = getattr(conn, "extra", None) or "{}"
        extra = json.loads(raw) if isinstance(raw, str) else dict(raw)
    return dict(extra or {})


def _base_url(host: str | None, port: int | None, conn_id: str, allow_insecure_http: bool) -> str:
    if not host or not host.strip():
        raise CelonisConfigError(
            f"Connection '{conn_id}': host is empty; set it to your team URL, "
            "e.g. https://myteam.eu-1.celonis.cloud"
        )
    raw = host.strip()
    parts = urlsplit(raw if "://" in raw else f"//{raw}")
    hostname = parts.hostname or ""
    if not hostname:
        raise CelonisConfigError(f"Connection '{conn_id}': cannot read a host name from {raw!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise CelonisConfigError(
            f"Connection '{conn_id}': host must be the team URL without a path "
            f"(e.g. https://myteam.eu-1.celonis.cloud), got path {parts.path!r}; "
            "use the extra 'api_base_path' to pick the API"
        )
    scheme = parts.scheme or ("http" if is_loopback(hostname) else "https")
    if scheme not in ("http", "https"):
        raise CelonisConfigError(f"Connection '{conn_id}': unsupported URL scheme {scheme!r}")
    if scheme == "http" and not is_loopback(hostname) and not allow_insecure_http:
        raise CelonisConfigError(
            f"Connection '{conn_id}': plain http to {hostname} would send the key unencrypted; use https "
            "(plain http is only allowed for loopback hosts unless the extra allow_insecure_http is true)"
        )
    netloc_host = f"[{hostname}]" if ":" in hostname else hostname
    effective_port = parts.port or port
    netloc = f"{netloc_host}:{effective_port}" if effective_port else netloc_host
    return f"{scheme}://{netloc}"


def _verify(value: Any) -> bool | str:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no", ""):
        return _as_bool(value, "verify") if value.strip() else True
    return str(value)  # a CA bundle path


def _timeout(value: Any, conn_id: str) -> float:
    if value in (None, ""):
        return DEFAULT_TIMEOUT
    try:
        timeout = float(value)
    except (TypeError, ValueError):
        raise CelonisConfigError(
            f"Connection '{conn_id}': timeout must be a number of seconds, got {value!r}"
        ) from None
    if not timeout > 0 or timeout == float("inf"):
        raise CelonisConfigError(f"Connection '{conn_id}': timeout must be a positive number, got {value!r}")
    return timeout


def _retries(value: Any, conn_id: str) -> int:
    if value in (None, ""):
        return 5
    try:
        retries = int(value)
    except (TypeError, ValueError):
        raise CelonisConfigError(
            f"Connection '{conn_id}': retries must be a whole number, got {value!r}"
        ) from None
    if retries < 0:
        raise CelonisConfigError(f"Connection '{conn_id}': retries cannot be negative, got {value!r}")
    return retries
