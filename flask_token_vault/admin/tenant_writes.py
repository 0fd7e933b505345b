"""The changes ``setup`` makes to the tenant, as methods of the Management API client.

(Layer: core, Flask-free; mixed into :class:`~.management.ManagementClient`.)

Each method reads the record again, asks the rule in :mod:`.records` whether anything is
missing, and writes the field back whole with only that added: the Management API replaces an
object field (``options``, ``refresh_token``, ``oidc_logout``) or a list whole on PATCH, so a
partial body would drop what the tenant had. Each returns whether it changed anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import quote

from .._config import Settings
from ..errors import ClientNotEligible
from .records import (
    MY_ACCOUNT_POLICY_SCOPES,
    VAULT_OPTION,
    active,
    backchannel_url_problem,
    backchannel_urls,
    client_problems,
    grant_types,
    missing_client_urls,
    missing_grant_types,
    missing_my_account_scopes,
    rotation_type,
    string_list,
)

log = logging.getLogger("flask_token_vault")


class _Api(Protocol):
    """What the writes need of the client they are mixed into."""

    settings: Settings

    @property
    def request(self) -> Callable[..., Any]:
        """Call ``/api/v2{path}`` and return its JSON (:meth:`ManagementClient.request`)."""

    def get_client(self, client_id: str | None = None) -> dict[str, Any]: ...

    def find_connection(self, name_or_id: str) -> dict[str, Any]: ...

    def read_connection(self, connection_id: str, fields: Sequence[str]) -> dict[str, Any]: ...

    def connection_clients(self, connection: Mapping[str, Any]) -> list[str]: ...


def _q(value: str) -> str:
    return quote(value, safe="")


class TenantWrites:
    """Turn on what Token Vault needs on a client or a connection, keeping everything else."""

    # connections ----------------------------------------------------------------------------
    def enable_token_vault(self: _Api, connection: str) -> bool:
        """Turn Token Vault on for a connection (by id or name); return whether anything changed.

        Sets ``options.federated_connections_access_tokens.active``, every other option kept.
        """
        found = self.find_connection(connection)
        current = self.read_connection(str(found.get("id", "")), ["options"]).get("options")
        options = dict(current) if isinstance(current, Mapping) else {}
        if active(options.get(VAULT_OPTION)):
            return False
        options[VAULT_OPTION] = {"active": True}
        return _turn_on(self, found, {"options": options}, "Token Vault")

    def enable_connected_accounts(self: _Api, connection: str) -> bool:
        """Turn Connected Accounts on for a connection; return whether anything changed."""
        found = self.find_connection(connection)
        setting = self.read_connection(str(found.get("id", "")), ["connected_accounts"]).get(
            "connected_accounts"
        )
        if active(setting):
            return False
        new = {**(setting if isinstance(setting, Mapping) else {}), "active": True}
        return _turn_on(self, found, {"connected_accounts": new}, "Connected Accounts")

    def enable_connection_for_client(
        self: _Api, connection: str, client_id: str | None = None
    ) -> bool:
        """Enable a connection (by id or name) for a client (default: the app's).

        ``PATCH /connections/{id}/clients`` with that client only, so the others stay as they
        are; returns whether anything changed.
        """
        found = self.find_connection(connection)
        target = client_id or self.settings.client_id
        if target in self.connection_clients(found):
            return False
        connection_id = str(found.get("id", ""))
        self.request(
            "PATCH",
            f"/connections/{_q(connection_id)}/clients",
            body=[{"client_id": target, "status": True}],
            operation="enabling a connection for a client",
        )
        log.info("connection %s enabled for client %s", found.get("name", connection_id), target)
        return True

    # clients --------------------------------------------------------------------------------
    def enable_token_vault_grant(self: _Api, client_id: str | None = None) -> bool:
        """Add the Token Vault grant (and authorization_code, refresh_token) to a client.

        Keeps the client's other grant types. Raises
        :class:`~flask_token_vault.ClientNotEligible` naming each problem when the client is
        not first-party, not confidential or not OIDC conformant.
        """
        target = client_id or self.settings.client_id
        client = self.get_client(target)
        problems = client_problems(client)
        if problems:
            raise ClientNotEligible(target, problems)
        missing = missing_grant_types(client)
        if not missing:
            return False
        body = {"grant_types": grant_types(client) + missing}
        _patch_client(self, target, body, "enabling the Token Vault grant")
        return True

    def allow_my_account(self: _Api, client_id: str | None = None) -> bool:
        """Let a client's refresh token get My Account API tokens; return whether it changed.

        Adds (or widens) the Multi-Resource Refresh Token policy for ``https://{domain}/me/``
        with :data:`~.records.MY_ACCOUNT_POLICY_SCOPES`, keeping the client's other policies
        and every other refresh-token setting.
        """
        target = client_id or self.settings.client_id
        client = self.get_client(target)
        if not missing_my_account_scopes(client, self.settings.base_url):
            return False
        audience = self.settings.base_url + "/me/"
        settings = _refresh_token(client)
        raw = settings.get("policies")
        policies = [dict(p) for p in raw if isinstance(p, Mapping)] if isinstance(raw, list) else []
        mine = [p for p in policies if p.get("audience") == audience]
        if mine:
            kept = string_list(mine[0], "scope")
            mine[0]["scope"] = list(dict.fromkeys([*kept, *MY_ACCOUNT_POLICY_SCOPES]))
        else:
            policies.append({"audience": audience, "scope": list(MY_ACCOUNT_POLICY_SCOPES)})
        settings["policies"] = policies
        _patch_refresh_token(self, target, settings, "allowing the My Account API")
        return True

    def disable_refresh_token_rotation(self: _Api, client_id: str | None = None) -> bool:
        """Turn refresh-token rotation off (Token Vault does not support it); return if changed.

        Keeps every other refresh-token setting, the policies included.
        """
        target = client_id or self.settings.client_id
        client = self.get_client(target)
        if rotation_type(client) != "rotating":
            return False
        settings = {**_refresh_token(client), "rotation_type": "non-rotating"}
        _patch_refresh_token(self, target, settings, "turning refresh-token rotation off")
        return True

    def add_client_urls(
        self: _Api,
        *,
        callbacks: Sequence[str] = (),
        logout_urls: Sequence[str] = (),
        client_id: str | None = None,
    ) -> list[str]:
        """Add Allowed Callback and Allowed Logout URLs to a client; return the ones added."""
        target = client_id or self.settings.client_id
        client = self.get_client(target)
        wanted = {"callbacks": callbacks, "allowed_logout_urls": logout_urls}
        missing = missing_client_urls(client, wanted)
        if missing:
            body = {name: string_list(client, name) + urls for name, urls in missing.items()}
            _patch_client(self, target, body, "adding the app's URLs")
        return [url for urls in missing.values() for url in urls]

    def add_backchannel_logout_url(self: _Api, url: str, client_id: str | None = None) -> bool:
        """Register ``url`` as a back-channel logout URL of a client (default: this app's).

        ``oidc_logout`` is written back whole with ``url`` added, every other value kept.
        Raises :class:`ValueError` for a URL Auth0 would not post to (not https, except on a
        loopback address).
        """
        problem = backchannel_url_problem(url)
        if problem is not None:
            raise ValueError(problem)
        target = client_id or self.settings.client_id
        client = self.get_client(target)
        urls = backchannel_urls(client)
        if url in urls:
            return False
        current = client.get("oidc_logout")
        settings = {**(current if isinstance(current, Mapping) else {})}
        settings["backchannel_logout_urls"] = [*urls, url]
        _patch_client(self, target, {"oidc_logout": settings}, "registering a back-channel URL")
        return True


def _turn_on(api: _Api, found: Mapping[str, Any], body: dict[str, Any], switch: str) -> bool:
    """PATCH ``body`` onto the connection ``found``, which turns ``switch`` on; return True."""
    connection_id = str(found.get("id", ""))
    operation = f"enabling {switch} on a connection"
    api.request("PATCH", f"/connections/{_q(connection_id)}", body=body, operation=operation)
    log.info("%s enabled on connection %s", switch, found.get("name", connection_id))
    return True


def _patch_client(api: _Api, target: str, body: Mapping[str, Any], operation: str) -> None:
    api.request("PATCH", f"/clients/{_q(target)}", body=dict(body), operation=operation)
    log.info("client %s: %s", target, operation)


def _refresh_token(client: Mapping[str, Any]) -> dict[str, Any]:
    settings = client.get("refresh_token")
    return dict(settings) if isinstance(settings, Mapping) else {}


def _patch_refresh_token(
    api: _Api, target: str, settings: Mapping[str, Any], operation: str
) -> None:
    # Auth0 takes refresh_token as one object: send every field back, not only the change.
    body = {"rotation_type": "non-rotating", "expiration_type": "non-expiring", **settings}
    _patch_client(api, target, {"refresh_token": body}, operation)
