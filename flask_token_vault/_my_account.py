"""A client of Auth0's My Account API for Connected Accounts (layer: core, Flask-free).

:class:`MyAccountClient` calls ``/me/v1/connected-accounts`` with a user's My Account access
token, through the app's transport (timeouts, one deadline, retries). With DPoP on, the token
is bound to the app's key: each try sends ``Authorization: DPoP <token>`` and a proof carrying
the token's hash (``ath``). Errors come out as :class:`~flask_token_vault.MyAccountError`
carrying the API's problem document.
"""

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
#: The only ``authorization_params`` the connect endpoint accepts.
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
#: What to do when Auth0 will not let the app use the My Account API.
MRRT_REMEDY = (
    "Let the application use the My Account API: enable Multi-Resource Refresh Token with a "
    "policy for the audience https://{domain}/me/ and the scopes create:me:connected_accounts, "
    "read:me:connected_accounts and delete:me:connected_accounts; `flask token-vault doctor` "
    "checks it."
)
#: What to do when the My Account API refuses to start a connection.
CONNECT_REMEDY = (
    "Make sure Connected Accounts is on for the connection (connected_accounts.active) and the "
    "app's connect callback is an Allowed Callback URL: `flask token-vault setup` does both, and "
    "`flask token-vault doctor` says which way this tenant fills the vault. If the tenant fills "
    "it by sign-in only, set TOKEN_VAULT_CONNECT_FLOW = 'authorize'."
)


def connect_scopes(scopes: Iterable[str], connection: str | None = None) -> list[str]:
    """Return the scopes of a connect request, refusing more than the API takes.

    Raises :class:`~flask_token_vault.InvalidRequest` (before any HTTP call) for more than
    :data:`MAX_CONNECT_SCOPES`; an empty list means the ``scopes`` field is left out.
    """
    wanted = list(dict.fromkeys(s for s in scopes if s))
    if len(wanted) > MAX_CONNECT_SCOPES:
        raise InvalidRequest(
            f"Connecting {connection or 'an account'} would ask for {len(wanted)} scopes; the "
            f"My Account API takes at most {MAX_CONNECT_SCOPES}.",
            error="too_many_scopes",
            connection=connection,
            remedy="Ask for fewer scopes: trim TOKEN_VAULT_CONNECTIONS or the scopes the view "
            "requires.",
        )
    return wanted


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
    """Call the Connected Accounts endpoints of Auth0's My Account API (``/me/v1``).

    Each call takes the user's My Account access token (see :func:`my_account_token`).
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
        remedy = None
        answer_status = 502
        if status in (400, 404, 409):
            answer_status = status
            if status == 400 and operation == "connect":
                remedy = CONNECT_REMEDY
            elif status == 409:
                remedy = "The account is connected already; go back to the page you were on."
        elif status == 429:
            answer_status = 429
        elif status in (401, 403):
            remedy = MRRT_REMEDY.replace("{domain}", urlsplit(self.settings.base_url).netloc)
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
            code=answer_status,
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
        """Start connecting an account; return ``{connect_uri, auth_session, connect_params}``.

        ``scopes`` is sent only when there are some (the API refuses an empty list); more than
        :data:`MAX_CONNECT_SCOPES` raise :class:`~flask_token_vault.InvalidRequest` before any
        HTTP call.
        """
        wanted = connect_scopes(scopes, connection)
        params = dict(authorization_params or {})
        refused = sorted(set(params) - CONNECT_AUTHORIZATION_PARAMS)
        if refused:
            raise InvalidRequest(f"Connected Accounts does not accept the parameters {refused}.")
        body: dict[str, Any] = {
            "connection": connection,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        if wanted:
            body["scopes"] = wanted
        if params:
            body["authorization_params"] = params
        answer = self._call("POST", "/connect", access_token, operation="connect", json=body)
        ticket = (answer or {}).get("connect_params", {}) if isinstance(answer, Mapping) else {}
        if (
            not isinstance(answer, Mapping)
            or not isinstance(answer.get("connect_uri"), str)
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

    def list_connections(self, access_token: str) -> list[ConnectableConnection]:
        """Return the connections the user can connect an account at, every page.

        ``GET /me/v1/connected-accounts/connections`` (scope ``read:me:connected_accounts``):
        the connections with Connected Accounts on that are enabled for this app.
        """

        def page(query: dict[str, str]) -> Any:
            operation = "listing the connections to connect"
            return self._call(
                "GET", "/connections", access_token, operation=operation, params=query
            )

        return [
            ConnectableConnection.from_api(item)
            for item in cursor_pages(page, "connections")
            if isinstance(item.get("name"), str)
        ]

    def list_accounts(
        self, access_token: str, connection: str | None = None
    ) -> list[ConnectedAccount]:
        """Return the user's connected accounts (of one connection, or all), every page."""
        return list(self._iter_accounts(access_token, connection))

    def _iter_accounts(
        self, access_token: str, connection: str | None
    ) -> Iterator[ConnectedAccount]:
        def page(query: dict[str, str]) -> Any:
            return self._call(
                "GET", "/accounts", access_token, operation="listing accounts", params=query
            )

        filters = {"connection": connection} if connection else {}
        for item in cursor_pages(page, "accounts", **filters):
            yield ConnectedAccount.from_api(item)

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
