"""Keep the tokens the tenant issues: access, refresh, logout and provider tokens."""

from __future__ import annotations

import secrets
from typing import Any, ClassVar

from ..fake_data import CalendarEvent
from .common import (
    BACKCHANNEL_LOGOUT_EVENT,
    LOGOUT_TOKEN_LIFETIME,
    PROVIDER_TOKEN_PREFIX,
    split_scopes,
)
from .records import Grant, ProviderToken, RefreshToken, Tokenset
from .tenant_store import FreshValues
from .users import UserStore


class TokenStore(UserStore):
    """Add issued tokens, and what the fake provider APIs created, to the tenant."""

    refresh_tokens: dict[str, RefreshToken]
    provider_tokens: dict[str, ProviderToken]
    created_events: dict[tuple[str, str], list[CalendarEvent]]

    #: :meth:`reset` also forgets issued tokens and created calendar events.
    FRESH: ClassVar[FreshValues] = {
        **UserStore.FRESH,
        "refresh_tokens": dict,
        "provider_tokens": dict,
        "created_events": dict,
    }

    def issue_access_token_for(
        self,
        email: str,
        audience: str,
        scope: str,
        *,
        client_id: str,
        expires_in: int,
        claims: dict[str, Any] | None,
    ) -> str:
        """Create the user if needed and sign an access token for an API, as a login would.

        ``claims`` replace or add claims (a ``None`` value removes one), to make tokens a test
        wants refused: another ``iss``, ``aud`` or ``exp``. The token is signed with the
        tenant's key whatever it says.
        """
        with self.lock:
            user = self.ensure_user(email)
            server = self.get_resource_server(audience)
            now = int(self.now())
            body: dict[str, Any] = {
                "iss": self.issuer,
                "sub": user.user_id,
                "aud": audience,
                "iat": now,
                "exp": now + expires_in,
                "scope": " ".join(split_scopes(scope)),
                "azp": client_id,
                "jti": secrets.token_urlsafe(12),
            }
            if server is not None and server.rbac:
                body["permissions"] = [s for s in split_scopes(scope) if s in server.scopes]
            return self._sign(body, claims or {})

    def logout_token(
        self, client_id: str, *, sub: str | None, sid: str | None = None, **overrides: Any
    ) -> str:
        """Return a signed back-channel logout token for a client (``overrides`` change claims).

        An override of ``None`` removes the claim, to make malformed tokens for tests.
        """
        now = int(self.now())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": client_id,
            "iat": now,
            "exp": now + LOGOUT_TOKEN_LIFETIME,
            "jti": secrets.token_urlsafe(16),
            "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        }
        if sub is not None:
            claims["sub"] = sub
        if sid is not None:
            claims["sid"] = sid
        return self._sign(claims, overrides)

    def _sign(self, claims: dict[str, Any], overrides: dict[str, Any]) -> str:
        """Sign ``claims`` once ``overrides`` replace some (a ``None`` value removes one)."""
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return self.signing_key.sign(claims)

    def new_refresh_token(self, grant: Grant, jkt: str | None = None) -> RefreshToken:
        """Issue an opaque, non-rotating Auth0 refresh token keeping ``grant``.

        With ``jkt`` it is bound to that DPoP key.
        """
        token = RefreshToken(
            **grant.grant_fields(),
            token="v1.emu." + secrets.token_urlsafe(32),
            issued_at=self.now(),
            jkt=jkt,
        )
        with self.lock:
            self.refresh_tokens[token.token] = token
        return token

    def get_refresh_token(self, token: str) -> RefreshToken | None:
        """Return the refresh token record, or None."""
        with self.lock:
            return self.refresh_tokens.get(token)

    def issue_provider_token(
        self, tokenset: Tokenset, scopes: list[str] | None = None
    ) -> ProviderToken:
        """Issue a fresh provider access token from a connected account; mark the account used."""
        with self.lock:
            connection = self._require_connection(tokenset.connection)
            provider = connection.provider
            now = self.now()
            ttl = self.provider_ttl(connection.name)
            prefix = PROVIDER_TOKEN_PREFIX.get(provider or "", "emu.")
            token = ProviderToken(
                token=prefix + secrets.token_urlsafe(32),
                user_id=tokenset.user_id,
                connection=connection.name,
                provider=provider,
                account=tokenset.account,
                scopes=list(tokenset.scopes if scopes is None else scopes),
                issued_at=now,
                expires_at=now + ttl,
            )
            self.provider_tokens[token.token] = token
            tokenset.last_used_at = now
            tokenset.expires_at = now + ttl
            return token

    def get_provider_token(self, token: str) -> ProviderToken | None:
        """Return the provider token record, or None."""
        with self.lock:
            return self.provider_tokens.get(token)

    def revoke_provider_tokens(
        self, user_id: str | None = None, connection: str | None = None
    ) -> int:
        """Revoke provider tokens issued so far (filtered by user and connection); return count."""
        with self.lock:
            count = 0
            for token in self.provider_tokens.values():
                if user_id is not None and token.user_id != user_id:
                    continue
                if connection is not None and token.connection != connection:
                    continue
                if not token.revoked:
                    token.revoked = True
                    count += 1
            return count

    # -- fake provider data ---------------------------------------------------------------

    def add_event(self, connection: str, account: str, event: CalendarEvent) -> None:
        """Remember a calendar event created through a fake provider API."""
        with self.lock:
            self.created_events.setdefault((connection, account), []).append(event)

    def events_created(self, connection: str, account: str) -> list[CalendarEvent]:
        """Return the calendar events created for an account through a fake provider API."""
        with self.lock:
            return list(self.created_events.get((connection, account), []))
