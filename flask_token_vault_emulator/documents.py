"""Write the tenant's users, accounts, connections and clients as Auth0's APIs describe them."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .state import Client, Connection, EmulatorState, Tokenset, User
from .state.common import DATABASE_CONNECTION


def iso_time(epoch: float) -> str:
    """Return an epoch time as Auth0 writes a date-time (UTC, milliseconds, ``Z``)."""
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _time(state: EmulatorState, epoch: float | None) -> int | str | None:
    if epoch is None:
        return None
    return iso_time(epoch) if state.tokenset_timestamps == "iso" else int(epoch)


def tokenset_document(state: EmulatorState, tokenset: Tokenset) -> dict[str, Any]:
    """Return a tokenset as the Management API lists it."""
    return {
        "id": tokenset.id,
        "connection": tokenset.connection,
        "scope": " ".join(tokenset.scopes),
        "issued_at": _time(state, tokenset.issued_at),
        "expires_at": _time(state, tokenset.expires_at),
        "last_used_at": _time(state, tokenset.last_used_at),
    }


def connected_account_document(
    state: EmulatorState, tokenset: Tokenset, *, management: bool
) -> dict[str, Any]:
    """Return a connected account as the Management API (or the My Account API) lists it."""
    document: dict[str, Any] = {
        "id": tokenset.account_id,
        "connection": tokenset.connection,
    }
    if management:
        connection = state.get_connection(tokenset.connection)
        document["connection_id"] = connection.id if connection else ""
        document["strategy"] = connection.strategy if connection else ""
    document.update(
        access_type="offline",
        scopes=list(tokenset.scopes),
        created_at=iso_time(tokenset.created_at),
        expires_at=iso_time(tokenset.expires_at),
    )
    if tokenset.account:
        # Which account at the provider: a user may connect several at one connection.
        document["login_hint"] = tokenset.account
    if tokenset.org_id:
        document["org_id"] = tokenset.org_id
    return document


def connection_document(connection: Connection, with_switch: bool = True) -> dict[str, Any]:
    """Return a connection as the Management API describes it.

    ``with_switch=False`` leaves out the top-level ``connected_accounts`` (a tenant from before
    Connected Accounts).
    """
    document: dict[str, Any] = {
        "id": connection.id,
        "name": connection.name,
        "display_name": connection.name,
        "strategy": connection.strategy,
        "options": connection.options,
        "enabled_clients": list(connection.enabled_clients),
        "is_domain_connection": False,
        "realms": [connection.name],
    }
    if with_switch and connection.connected_accounts is not None:
        document["connected_accounts"] = connection.connected_accounts
    return document


def client_document(state: EmulatorState, client: Client) -> dict[str, Any]:
    """Return a client as the Management API describes it (without its secret)."""
    refresh_token = dict(client.refresh_token)
    policies = [dict(policy) for policy in client.other_refresh_policies]
    if client.my_account_scopes:
        policies.append(
            {"audience": state.base_url + "/me/", "scope": list(client.my_account_scopes)}
        )
    if policies:
        refresh_token["policies"] = policies
    return {
        "client_id": client.client_id,
        "name": client.name,
        "app_type": client.app_type,
        "is_first_party": client.is_first_party,
        "oidc_conformant": client.oidc_conformant,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "grant_types": list(client.grant_types),
        "refresh_token": refresh_token,
        "callbacks": list(client.callbacks),
        "allowed_logout_urls": list(client.allowed_logout_urls),
        "client_authentication_methods": client.client_authentication_methods,
        "require_proof_of_possession": client.require_proof_of_possession,
        "token_vault_privileged_access": client.token_vault_privileged_access,
        **(
            {"resource_server_identifier": client.resource_server_identifier}
            if client.resource_server_identifier
            else {}
        ),
        "oidc_logout": dict(client.oidc_logout),
        "organization_usage": client.organization_usage,
    }


def user_document(user: User) -> dict[str, Any]:
    """Return a user as the Management API describes one."""
    created = iso_time(user.created_at)
    return {
        "user_id": user.user_id,
        "email": user.email,
        "email_verified": True,
        "name": user.name,
        "nickname": user.email.split("@", 1)[0],
        "created_at": created,
        "updated_at": created,
        "identities": [
            {
                "connection": DATABASE_CONNECTION,
                "provider": "auth0",
                "user_id": user.user_id.split("|", 1)[-1],
                "isSocial": False,
            }
        ],
    }
