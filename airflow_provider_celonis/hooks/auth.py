"""Authorization headers and the per-process OAuth token cache.

Tokens are fetched once per process and client, reused by every hook instance (sync or async), and
refreshed a minute before they expire; a 401 drops the cached token so that the next call fetches one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from airflow_provider_celonis.hooks.connection import CelonisConnectionConfig

#: Refresh this many seconds before expiry, so that a token never expires between check and use.
REFRESH_MARGIN = 60.0


@dataclass
class _Token:
    value: str
    refresh_at: float


class TokenCache:
    """Process-wide OAuth tokens keyed by (token URL, client id, scopes)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._tokens: dict[tuple[str, str, str], _Token] = {}
        self._lock = threading.Lock()
        #: Replaceable so that tests can let tokens age without sleeping.
        self.clock = clock

    @staticmethod
    def key(cfg: CelonisConnectionConfig) -> tuple[str, str, str]:
        return (cfg.token_url, cfg.client_id or "", cfg.oauth_scopes)

    def get(self, cfg: CelonisConnectionConfig) -> str | None:
        with self._lock:
            token = self._tokens.get(self.key(cfg))
        if token and token.refresh_at > self.clock():
            return token.value
        return None

    def put(self, cfg: CelonisConnectionConfig, value: str, expires_in: float) -> None:
        # A short-lived token (below the margin) is still used once rather than refetched in a loop.
        margin = min(REFRESH_MARGIN, expires_in / 2)
        with self._lock:
            self._tokens[self.key(cfg)] = _Token(value, self.clock() + expires_in - margin)

    def invalidate(self, cfg: CelonisConnectionConfig, value: str | None = None) -> None:
        with self._lock:
            current = self._tokens.get(self.key(cfg))
            if current and (value is None or current.value == value):
                del self._tokens[self.key(cfg)]


TOKEN_CACHE = TokenCache()


def static_authorization(cfg: CelonisConnectionConfig) -> str:
    """The header for key auth: ``AppKey`` for application keys, ``Bearer`` for user API keys."""
    prefix = "AppKey" if cfg.auth_type == "app_key" else "Bearer"
    return f"{prefix} {cfg.secret}"


def token_request(
    cfg: CelonisConnectionConfig,
) -> tuple[dict[str, str], dict[str, str], tuple[str, str] | None]:
    """Form body, headers and basic-auth pair for a client-credentials token request."""
    form = {"grant_type": "client_credentials", "scope": cfg.oauth_scopes}
    headers = {"Accept": "application/json"}
    basic: tuple[str, str] | None = None
    if cfg.oauth_client_auth == "post":
        form["client_id"] = cfg.client_id or ""
        form["client_secret"] = cfg.secret
    else:
        basic = (cfg.client_id or "", cfg.secret)
    return form, headers, basic
