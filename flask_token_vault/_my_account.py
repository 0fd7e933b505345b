"""A client of Auth0's My Account API for Connected Accounts (layer: core, Flask-free)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ._config import Settings
from ._dpop import DPoP
from ._http import Failure, Transport, clean_text, cursor_pages
from .admin.records import ConnectedAccount
from .errors import InvalidRequest, MyAccountError

#: My Account API scope to connect an account.
CONNECT_SCOPE = "create:me:connected_accounts"
#: My Account API scope to list connected accounts.
READ_SCOPE = "read:me:connected_accounts"
#: My Account API scope to delete a connected account.
DELETE_SCOPE = "delete:me:connected_accounts"
#: The only ``authorization_params`` the connect endpoint accepts (others are left out).
CONNECT_AUTHORIZATION_PARAMS = frozenset(
    {
        "acr_values",
        "audience",
        "resource",
        "display",
        "id_token_hint",
        "login_hint",
        "max_age",
        "prompt",
        "ui_locales",
    }
)
#: How many scopes one connect request may carry (the API takes 1 to 100, never an empty list).
MAX_CONNECT_SCOPES = 100
#: What to do when the My Account API refuses to start a connection.
CONNECT_REMEDY = (
    "Make sure Connected Accounts is on for the connection (connected_accounts.active) and the "
    "app's connect callback is an Allowed Callback URL: `flask token-vault setup` does both, and "
    "`flask token-vault doctor` says which way this tenant fills the vault. If the tenant fills "
    "it by sign-in only, set TOKEN_VAULT_CONNECT_FLOW = 'authorize'."
)


def connect_scopes(scopes: Iterable[str], connection: str) -> list[str]:
    """Return the scopes of a connect request; raise InvalidRequest for more than the API takes."""
    wanted = list(dict.fromkeys(s for s in scopes if s))
    if len(wanted) > MAX_CONNECT_SCOPES:
        raise InvalidRequest(
            f"Connecting {connection} would ask for {len(wanted)} scopes; the "
            f"My Account API takes at most {MAX_CONNECT_SCOPES}.",
            error="too_many_scopes",
            connection=connection,
        )
    return wanted


def mrrt_remedy(base_url: str) -> str:
    """Return what to do when Auth0 will not let the app use the My Account API."""
    return (
        "Let the application use the My Account API: enable Multi-Resource Refresh Token with a "
        f"policy for the audience https://{urlsplit(base_url).netloc}/me/ and the scopes "
        "create:me:connected_accounts, read:me:connected_accounts and "
        "delete:me:connected_accounts; `flask token-vault doctor` checks it."
    )


@dataclass(frozen=True)
class ConnectableConnection:
    """A connection the signed-in user can connect an account at (My Account API)."""

    #: The connection name, e.g. ``google-oauth2``.
    name: str
    #: Its strategy, e.g. ``google-oauth2`` or ``oauth2``.
    strategy: str
    #: The scopes the connection offers.
    scopes: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ConnectableConnection:
        """Build a connection from the My Account API's JSON."""
        raw = data.get("scopes")
        scopes = tuple(s for s in raw if isinstance(s, str) and s) if isinstance(raw, list) else ()
        strategy = data.get("strategy")
        return cls(
            name=str(data.get("name", "")),
            strategy=strategy if isinstance(strategy, str) else "",
            scopes=tuple(dict.fromkeys(scopes)),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"name": self.name, "strategy": self.strategy, "scopes": list(self.scopes)}


class MyAccountClient:
    """Call the Connected Accounts endpoints of Auth0's My Account API with a user's token.

    Calls go through the app's transport; with DPoP on, the token is bound to the app's key.
    """

    def __init__(self, settings: Settings, transport: Transport, dpop: DPoP | None = None) -> None:
        self.settings = settings
        self.transport = transport
        #: The app's DPoP proofs: My Account tokens are bound to its key when set.
        self.dpop = dpop

    def __repr__(self) -> str:
        return f"MyAccountClient({self.settings.base_url!r})"

    def _call(
        self, method: str, path: str, access_token: str, *, operation: str, **request: Any
    ) -> Any:
        """Call ``/me/v1/connected-accounts{path}``; ``request`` goes to requests (``json``...)."""
        scheme = "DPoP" if self.dpop is not None else "Bearer"
        return self.transport.call_json(
            method,
            self.settings.base_url + "/me/v1/connected-accounts" + path,
            error=lambda failure: self._failure(failure, operation),
            what=f"My Account API call ({operation})",
            auth=lambda: f"{scheme} {access_token}",
            hook=self.dpop,
            **request,
        ).body

    def _failure(self, failure: Failure, operation: str) -> MyAccountError:
        status = failure.status
        if failure.kind in ("timeout", "connection_error") or (
            status is not None and (status >= 500 or 200 <= status < 300)
        ):
            said = {
                "timeout": "The My Account API did not answer in time",
                "connection_error": f"The My Account API could not be reached ({failure.reason})",
                "malformed_answer": f"The My Account API answered {status} with a body that is "
                "not JSON",
            }.get(failure.kind, f"The My Account API answered {status}")
            return MyAccountError(
                f"{said}. ({operation})",
                upstream_status=status,
                error="malformed_answer" if failure.kind == "malformed_answer" else failure.code,
                remedy="Auth0 did not answer properly; try again in a moment.",
                code=503,
            )
        data: Mapping[str, Any] = failure.body if isinstance(failure.body, Mapping) else {}
        status = status or 0
        kind = data.get("type")
        kind = kind if isinstance(kind, str) else None
        title = clean_text(data.get("title"), 100)
        detail = clean_text(
            data.get("detail") or data.get("message") or data.get("error_description")
        )
        code = clean_text(kind.rstrip("/").rsplit("/", 1)[-1], 100) if kind else ""
        code = code or clean_text(data.get("error"), 100) or f"http_{status}"
        refused_app = mrrt_remedy(self.settings.base_url)
        remedy = {
            400: CONNECT_REMEDY if operation == "connect" else None,
            401: refused_app,
            403: refused_app,
            409: "The account is connected already; go back to the page you were on.",
        }.get(status)
        return MyAccountError(
            f"The My Account API refused {operation} ({status}): "
            + (detail or title or code).rstrip(".")
            + ".",
            upstream_status=status,
            error_type=kind,
            title=title,
            detail=detail,
            error=code,
            remedy=remedy,
            # The user's own mistakes and the rate limit pass through; anything else is Auth0's.
            code=status if status in (400, 404, 409, 429) else 502,
        )

    def connect(
        self,
        access_token: str,
        *,
        connection: str,
        redirect_uri: str,
        state: str,
        code_challenge: str,
        scopes: Iterable[str] = (),
        authorization_params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Start connecting an account; return ``{connect_uri, auth_session, connect_params}``."""
        params = authorization_params or {}
        body: dict[str, Any] = {
            "connection": connection,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
            "scopes": connect_scopes(scopes, connection),
            "authorization_params": {
                k: v for k, v in params.items() if k in CONNECT_AUTHORIZATION_PARAMS
            },
        }
        # The API refuses an empty list or object: those fields are left out.
        body = {name: value for name, value in body.items() if value}
        answer = self._call("POST", "/connect", access_token, operation="connect", json=body)
        if not isinstance(answer, Mapping):
            answer = {}
        ticket = answer.get("connect_params")
        if (
            not isinstance(answer.get("connect_uri"), str)
            or not isinstance(answer.get("auth_session"), str)
            or not isinstance(ticket, Mapping)
            or not isinstance(ticket.get("ticket"), str)
        ):
            raise MyAccountError(
                "The My Account API answered the connect request without a ticket.",
                error="malformed_answer",
                code=503,
                connection=connection,
            )
        return dict(answer)

    def complete(
        self,
        access_token: str,
        *,
        auth_session: str,
        connect_code: str,
        redirect_uri: str,
        code_verifier: str,
    ) -> ConnectedAccount:
        """Finish connecting an account; return it."""
        answer = self._call(
            "POST",
            "/complete",
            access_token,
            operation="completing a connection",
            json={
                "auth_session": auth_session,
                "connect_code": connect_code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            },
        )
        if not isinstance(answer, Mapping) or not isinstance(answer.get("id"), str):
            raise MyAccountError(
                "The My Account API answered the completion without an account.",
                error="malformed_answer",
                code=503,
            )
        return ConnectedAccount.from_api(answer)

    def _list(
        self, access_token: str, key: str, operation: str, **filters: str
    ) -> Iterator[Mapping[str, Any]]:
        """Yield the objects of ``GET /me/v1/connected-accounts/{key}``, every page."""

        def page(query: dict[str, str]) -> Any:
            return self._call("GET", "/" + key, access_token, operation=operation, params=query)

        return cursor_pages(page, key, **filters)

    def list_connections(self, access_token: str) -> list[ConnectableConnection]:
        """Return the connections with Connected Accounts on that are enabled for this app."""
        return [
            ConnectableConnection.from_api(item)
            for item in self._list(
                access_token, "connections", "listing the connections to connect"
            )
            if isinstance(item.get("name"), str)
        ]

    def list_accounts(
        self, access_token: str, connection: str | None = None
    ) -> list[ConnectedAccount]:
        """Return the user's connected accounts (of one connection, or all), every page."""
        filters = {"connection": connection} if connection else {}
        items = self._list(access_token, "accounts", "listing accounts", **filters)
        return [ConnectedAccount.from_api(item) for item in items]

    def delete_account(self, access_token: str, account_id: str) -> None:
        """Remove one connected account from the vault (its tokens are not revoked)."""
        if not account_id.startswith("cac_") or not account_id.isascii():
            raise InvalidRequest("A connected account id starts with 'cac_'.")
        self._call(
            "DELETE",
            "/accounts/" + account_id,
            access_token,
            operation="deleting an account",
        )
