"""Serve the control API (``/__emulator/...``) that lets tests in other processes drive it.

Every endpoint takes and answers JSON. Bad input answers 400 ``{"error": "..."}``. These
endpoints change the tenant without any authentication: they exist for local testing only, which
is why the emulator listens on 127.0.0.1 and must never face the internet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response

from . import backchannel
from .faults import Fault
from .state import EmulatorState
from .state.common import DEFAULT_CLIENT_ID, DEFAULT_LOGIN_SCOPE, user_id_for
from .state.tenant_store import TENANT_FEATURES
from .web import current_state, json_body, json_response

bp = Blueprint("control", __name__, url_prefix="/__emulator")


class ControlError(Exception):
    """Reject a control request with 400 and a message."""


@bp.errorhandler(ControlError)
@bp.errorhandler(ValueError)
def bad_input(error: Exception) -> Response:
    """Answer 400 with the reason the control request was refused."""
    return json_response({"error": str(error)}, 400)


def _optional_text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ControlError(f"'{name}' must be a non-empty string")
    return value


def _required_text(body: dict[str, Any], name: str) -> str:
    value = _optional_text(body, name)
    if value is None:
        raise ControlError(f"'{name}' is required")
    return value


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise ControlError(f"'{name}' must be true or false")
    return value


#: The control actions that take nothing: ``POST /__emulator/<name>`` answers ``{"ok": true}``.
_ACTIONS: dict[str, Callable[[EmulatorState], None]] = {
    # Forget users, tokens, connected accounts, counters and faults.
    "reset": EmulatorState.reset,
    # Put the default clients, connections and MFA policy back.
    "restore-tenant": EmulatorState.restore_tenant,
    # Make the tenant a new, unconfigured one (what ``flask token-vault setup`` starts from).
    "bare-tenant": EmulatorState.make_bare,
}


def _action_view(action: Callable[[EmulatorState], None]) -> Callable[[], Response]:
    def view() -> Response:
        action(current_state())
        return json_response({"ok": True})

    return view


for _name, _action in _ACTIONS.items():
    bp.add_url_rule("/" + _name, _name.replace("-", "_"), _action_view(_action), methods=["POST"])


@bp.get("/stats")
def stats() -> Response:
    """Answer the counters: exchanges, token requests, provider calls, users and tokensets."""
    return json_response(current_state().stats())


@bp.get("/faults")
def list_faults() -> Response:
    """List the faults still waiting to be hit."""
    state = current_state()
    with state.lock:
        faults = [fault.to_dict() for fault in state.faults]
    return json_response({"faults": faults})


_FAULT_FIELDS = frozenset(Fault.__dataclass_fields__)


@bp.post("/faults")
def add_fault() -> Response:
    """Add a fault: ``{"endpoint", "status", "body", "content_type", "headers", "delay", ...}``."""
    body = json_body()
    unknown = sorted(set(body) - _FAULT_FIELDS)
    if unknown:
        raise ControlError(f"unknown fault fields: {', '.join(unknown)}")
    fault = Fault(**body)
    current_state().add_fault(fault)
    return json_response({"fault": fault.to_dict()}, 201)


@bp.delete("/faults")
def clear_faults() -> Response:
    """Remove every fault."""
    current_state().clear_faults()
    return json_response({"ok": True})


@bp.post("/auto-login")
def auto_login() -> Response:
    """Set auto-login ``{"email", "name", "account", "consent"}``; a null email turns it off."""
    body = json_body()
    consent = _flag(body, "consent", True)
    current_state().set_auto_login(
        _optional_text(body, "email"),
        name=_optional_text(body, "name"),
        account=_optional_text(body, "account"),
        consent=consent,
    )
    return json_response({"ok": True})


@bp.post("/accounts")
def connect_account() -> Response:
    """Connect an account without a browser: ``{"email", "connection", "scopes", "account"}``."""
    body = json_body()
    scopes = body.get("scopes", [])
    if not isinstance(scopes, (str, list)) or not all(isinstance(s, str) for s in scopes):
        raise ControlError("'scopes' must be a list of strings (or one string)")
    tokenset = current_state().connect_account(
        _required_text(body, "email"),
        _required_text(body, "connection"),
        scopes,
        account=_optional_text(body, "account"),
    )
    return json_response(
        {"tokenset_id": tokenset.id, "user_id": tokenset.user_id, "scopes": tokenset.scopes}
    )


@bp.post("/refresh-tokens")
def refresh_tokens() -> Response:
    """Issue an Auth0 refresh token for a user: ``{"email", "scope", "client_id"}``."""
    body = json_body()
    token = current_state().issue_refresh_token_for(
        _required_text(body, "email"),
        scope=_optional_text(body, "scope") or DEFAULT_LOGIN_SCOPE,
        client_id=_optional_text(body, "client_id") or DEFAULT_CLIENT_ID,
    )
    return json_response({"refresh_token": token.token, "user_id": token.user_id})


@bp.post("/provider-token-ttl")
def provider_token_ttl() -> Response:
    """Set the lifetime of provider tokens for a connection: ``{"connection", "seconds"}``."""
    body = json_body()
    seconds = body.get("seconds")
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise ControlError("'seconds' must be an integer")
    current_state().set_provider_ttl(_required_text(body, "connection"), seconds)
    return json_response({"ok": True})


@bp.post("/revoke-provider-tokens")
def revoke_provider_tokens() -> Response:
    """Revoke provider tokens issued so far: ``{"email", "connection"}`` (both optional)."""
    body = json_body()
    revoked = current_state().revoke_provider_tokens_for(
        _optional_text(body, "email"), _optional_text(body, "connection")
    )
    return json_response({"revoked": revoked})


@bp.post("/break-provider-refresh")
def break_provider_refresh() -> Response:
    """Make the provider refuse (or accept again) a user's refresh token on a connection."""
    body = json_body()
    broken = _flag(body, "broken", True)
    changed = current_state().break_provider_refresh(
        _required_text(body, "email"),
        _required_text(body, "connection"),
        broken,
        account=_optional_text(body, "account"),
    )
    return json_response({"changed": changed})


@bp.get("/users/<path:email>")
def user(email: str) -> Response:
    """Describe a user and their connected accounts (404 when unknown)."""
    state = current_state()
    found = state.user_by_id(user_id_for(email))
    if found is None:
        return json_response({"error": f"no user {email}"}, 404)
    return json_response(
        {
            "user_id": found.user_id,
            "email": found.email,
            "name": found.name,
            "tokensets": [tokenset.to_dict() for tokenset in state.tokensets_for(found.user_id)],
        }
    )


@bp.post("/clients")
def add_client() -> Response:
    """Register a client: ``{"client_id", "client_secret", "grant_types", "management_scopes"}``."""
    body = json_body()
    lists: dict[str, list[str] | None] = {}
    for name in ("grant_types", "management_scopes"):
        value = body.get(name)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(s, str) for s in value)
        ):
            raise ControlError(f"'{name}' must be a list of strings")
        lists[name] = value
    client = current_state().add_client(
        _required_text(body, "client_id"),
        _required_text(body, "client_secret"),
        _optional_text(body, "name") or "Emulator client",
        grant_types=lists["grant_types"],
        management_scopes=lists["management_scopes"],
    )
    return json_response({"client_id": client.client_id}, 201)


@bp.post("/tenant-features")
def tenant_features() -> Response:
    """Switch tenant features (bools): tokenset endpoints, Connected Accounts, Assurance policy."""
    body = json_body()
    unknown = sorted(set(body) - set(TENANT_FEATURES))
    if unknown:
        raise ControlError(f"unknown tenant features: {', '.join(unknown)}")
    flags: dict[str, bool | None] = {}
    for name in TENANT_FEATURES:
        value = body.get(name)
        if value is not None and not isinstance(value, bool):
            raise ControlError(f"'{name}' must be true or false")
        flags[name] = value
    current_state().set_tenant_features(**flags)
    return json_response({"ok": True})


@bp.post("/organizations")
def add_organization() -> Response:
    """Create an Organization: ``{"name", "members": [emails] | absent}``; answers its id."""
    body = json_body()
    members = body.get("members")
    if members is not None and not (
        isinstance(members, list) and all(isinstance(m, str) for m in members)
    ):
        raise ControlError("'members' must be a list of e-mail addresses")
    ids = None if members is None else [user_id_for(email) for email in members]
    organization = current_state().add_organization(_required_text(body, "name"), ids)
    return json_response({"id": organization.id, "name": organization.name}, 201)


@bp.post("/tokenset-timestamps")
def tokenset_timestamps() -> Response:
    """Make the Management API write tokenset times as ``{"style": "epoch" | "iso"}``."""
    current_state().set_tokenset_timestamps(_required_text(json_body(), "style"))
    return json_response({"ok": True})


@bp.post("/backchannel-logout")
def backchannel_logout() -> Response:
    """End a user's Auth0 sessions and send logout tokens: ``{"email", "sid", "client_id"}``.

    Without ``sid``, every session of the user ends. Answers what each URL answered.
    """
    body = json_body()
    deliveries = backchannel.end_sessions(
        current_state(),
        user_id_for(_required_text(body, "email")),
        sid=_optional_text(body, "sid"),
        client_id=_optional_text(body, "client_id"),
    )
    return json_response({"deliveries": [d.to_dict() for d in deliveries]})


@bp.post("/mfa-policy")
def mfa_policy() -> Response:
    """Set the tenant's MFA policy: ``{"always": true | false}``."""
    always = json_body().get("always")
    if not isinstance(always, bool):
        raise ControlError("'always' must be true or false")
    current_state().set_mfa_policy(always)
    return json_response({"ok": True})
