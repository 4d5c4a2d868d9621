"""Credentials: application keys, API keys, and OAuth 2.0 client-credentials tokens with scopes."""

from __future__ import annotations

import base64
import secrets
import threading
import time
from dataclasses import dataclass

from .errors import ApiError
from .settings import EmulatorSettings

DATA_PUSH_SCOPES = frozenset({"integration.data-pools", "integration.data-pools:data_push"})


@dataclass(frozen=True)
class Principal:
    """Who is calling: ``pools`` empty means every pool; ``scopes`` is None for keys (not scoped)."""

    kind: str
    pools: frozenset[str] = frozenset()
    scopes: frozenset[str] | None = None


@dataclass(frozen=True)
class Token:
    client_id: str
    scopes: frozenset[str]
    expires_at: float


class OAuthError(Exception):
    """An OAuth 2.0 error answer (RFC 6749 section 5.2)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


class Authenticator:
    """Checks ``Authorization`` headers and issues tokens; tokens live in memory only."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self._settings = settings
        self._tokens: dict[str, Token] = {}
        self._lock = threading.Lock()

    def authenticate(self, header: str | None) -> Principal:
        """The caller behind an ``Authorization`` header, or a 401."""
        scheme, _, credential = (header or "").strip().partition(" ")
        credential = credential.strip()
        if not credential:
            raise ApiError(401, "Missing or malformed Authorization header", short="UNAUTHORIZED")
        if scheme.lower() == "appkey":
            for spec in self._settings.app_keys:
                if secrets.compare_digest(spec.key, credential):
                    return Principal("app_key", spec.pools)
        elif scheme.lower() == "bearer":
            for spec in self._settings.api_keys:
                if secrets.compare_digest(spec.key, credential):
                    return Principal("api_key", spec.pools)
            with self._lock:
                token = self._tokens.get(credential)
            if token is not None:
                if token.expires_at <= time.time():
                    raise ApiError(401, "The access token has expired", short="TOKEN_EXPIRED")
                return Principal("oauth", scopes=token.scopes)
        raise ApiError(401, "Invalid credentials", short="UNAUTHORIZED")

    def authorize_pool(self, principal: Principal, pool_id: str) -> None:
        """403 unless the caller may push to ``pool_id``."""
        if principal.scopes is not None and not principal.scopes & DATA_PUSH_SCOPES:
            raise ApiError(403, "The token lacks the scope integration.data-pools", short="FORBIDDEN")
        if principal.pools and pool_id not in principal.pools:
            raise ApiError(403, f"Not allowed to access data pool {pool_id}", short="FORBIDDEN")

    def issue_token(
        self,
        grant_type: str | None,
        basic: str | None,
        client_id: str | None,
        client_secret: str | None,
        scope: str | None,
    ) -> dict[str, object]:
        """Handle a client-credentials token request; raises OAuthError."""
        if basic:
            scheme, _, encoded = basic.partition(" ")
            if scheme.lower() == "basic":
                try:
                    client_id, _, client_secret = base64.b64decode(encoded.strip()).decode().partition(":")
                except (ValueError, UnicodeDecodeError) as exc:
                    raise OAuthError(401, "invalid_client", "malformed Basic credentials") from exc
        client = next((c for c in self._settings.oauth_clients if c.client_id == client_id), None)
        if client is None or not secrets.compare_digest(client.secret, client_secret or ""):
            raise OAuthError(401, "invalid_client", "unknown client or wrong secret")
        if grant_type != "client_credentials":
            raise OAuthError(400, "unsupported_grant_type", "only client_credentials is supported")
        requested = frozenset((scope or "").split())
        if client.scopes and not requested <= client.scopes:
            raise OAuthError(400, "invalid_scope", f"allowed scopes: {' '.join(sorted(client.scopes))}")
        granted = requested or client.scopes or DATA_PUSH_SCOPES
        ttl = self._settings.token_ttl
        access = secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            self._tokens = {k: t for k, t in self._tokens.items() if t.expires_at > now}
            self._tokens[access] = Token(client.client_id, granted, now + ttl)
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(ttl),
            "scope": " ".join(sorted(granted)),
        }
