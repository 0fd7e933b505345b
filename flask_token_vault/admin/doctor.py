"""Check that the Auth0 tenant and the app are set up for Token Vault, with a fix for each fault.

:func:`run_doctor` (and ``flask token-vault doctor``) is the plan of ``setup`` read as checks
(``pip check`` beside ``pip install``): each item ``setup`` would still make is a failed check
whose fix is ``flask token-vault setup --only KEY`` or the Dashboard path; an item the app does
not need with its settings is skipped. Around it are the checks that have no fix in ``setup``:
the domain and its discovery document, Management API access, ``offline_access``, whether
``TOKEN_VAULT_CONNECT_FLOW`` matches the way the tenant fills the vault, the MFA policy,
Organizations and the Authentication Assurance step-up, API mode, the client key, the views'
connections, ``SECRET_KEY``, the session cookie and the cache.
A client with privileged access (background tokens) is checked by the plan of ``worker setup``'s
step (:class:`~.worker_access.PrivilegedWorker`), whose fix is that command.

The tenant checks use the Management API with the app's own client (scopes ``read:clients``,
``read:connections``, ``read:mfa_policies``, and ``read:resource_servers`` for the API);
without that access they are skipped and the "Management API access" check says how to grant
it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Flask

from .._config import Settings
from .._exchange import GRANT_TYPE
from .._oidc import read_discovery
from .._parsers import is_loopback_host
from ..errors import Auth0Unavailable, ManagementForbidden, ManagementNotFound, TokenVaultError
from . import places
from .app_checks import Check, app_checks, failed, passed, skipped
from .management import ManagementClient
from .records import VaultSwitches, missing_my_account_scopes, vault_switches
from .setup_plan import NOT_MADE, PLANNED, UNCHANGED, SetupAction, SetupContext, setup_context
from .sign_in_checks import assurance_check, organization_check
from .tenant_setup import SETUP_STEPS
from .worker_access import PrivilegedWorker

_SETUP = f"Run `{places.SETUP}`"


def run_doctor(
    app: Flask | None = None, *, processes: int | None = None, base_url: str | None = None
) -> list[Check]:
    """Run every check against the app's tenant and configuration; return the results.

    ``processes`` is how many processes serve the app (default: ``WEB_CONCURRENCY``, else 1);
    ``base_url`` is the app's address, as for :func:`~flask_token_vault.plan_setup`.
    """
    context = setup_context(app, base_url)
    state, target = context.state, context.app
    settings, management = state.settings, state.management
    discovery, answers = _discovery(management)
    checks: list[Check] = [discovery]
    if not answers:
        # Every tenant check would fail for the same reason: one cause, said once.
        unheard = f"not checked: nothing answers at {settings.base_url}"
        client, access = None, [skipped(name, unheard) for name in _ACCESS]
    else:
        client, access = _read_client(context)
    checks.extend(access)
    checks.extend(_setup_checks(context, client is not None))
    checks.extend(_key_checks(context, client, settings))
    if "offline_access" in settings.scopes:
        checks.append(passed("offline_access requested", "TOKEN_VAULT_SCOPES has it"))
    else:
        checks.append(
            failed(
                "offline_access requested",
                "without offline_access Auth0 issues no refresh token",
                "Add 'offline_access' to TOKEN_VAULT_SCOPES.",
            )
        )
    checks.append(_flow_check(context, client))
    checks.append(_mfa_check(management, client is not None))
    checks.append(organization_check(settings, client))
    checks.append(assurance_check(settings))
    checks.extend(_api_checks(management, settings, client is not None))
    checks.extend(app_checks(target, settings.connections, state.cache.store, processes))
    return checks


def _setup_checks(context: SetupContext, available: bool) -> list[Check]:
    """Read each step of ``setup`` as checks: what it would still make is a fault."""
    if not available:
        return [skipped(s.name, "not checked: no Management API access") for s in SETUP_STEPS]
    return [
        _setup_check(places.setup_only(step.key), action)
        for step in SETUP_STEPS
        for action in step.plan(context)
    ]


def _setup_check(command: str, action: SetupAction) -> Check:
    """Read one planned item as a check; ``command`` is what makes a change still to make."""
    item = action.item
    name = f"{item.step} ({item.target})"
    by_hand = f" By hand: {item.dashboard}." if item.dashboard else ""
    if item.status == UNCHANGED:
        return passed(name, item.detail)
    if item.status == PLANNED:
        fix = f"Run `{command}`.{by_hand}"
        if not action.required:
            return skipped(name, f"not needed with these settings; setup would {item.detail}", fix)
        return failed(name, f"not yet: setup would {item.detail}", fix)
    fix = (item.fix + by_hand).strip()
    if item.status == NOT_MADE and action.required:
        return failed(name, item.detail, fix)
    return skipped(name, f"not checked: {item.detail}", fix)


# -- tenant -----------------------------------------------------------------------------------


def _discovery(management: ManagementClient) -> tuple[Check, bool]:
    """Read and check the discovery document as the app does (``oidc.read_discovery``).

    Return the check and whether anything answers at ``AUTH0_DOMAIN``.
    """
    name = "domain reachable and discovery valid"
    settings = management.settings
    try:
        read_discovery(settings, management.transport)
    except TokenVaultError as exc:
        plain = _plain_http_instead(management) if isinstance(exc, Auth0Unavailable) else None
        if plain is not None:
            return failed(
                name,
                f"{settings.base_url} fails over https ({exc.description}), but {plain} answers "
                "over plain http: "
                "it is a local stand-in for Auth0, and a bare AUTH0_DOMAIN means https",
                f"Set AUTH0_DOMAIN={plain} (with http://).",
            ), True
        return failed(name, str(exc.description), exc.remedy), exc.error != "connection_error"
    return passed(name, f"issuer {settings.issuer}"), True


def _plain_http_instead(management: ManagementClient) -> str | None:
    """Return the http:// URL of a server on this machine that AUTH0_DOMAIN reaches over https.

    Only loopback hosts are tried: plain http is accepted for them alone (a local stand-in
    for Auth0).
    """
    settings = management.settings
    parts = urlsplit(settings.base_url)
    if parts.scheme != "https" or not is_loopback_host(parts.hostname or ""):
        return None
    plain = f"http://{parts.netloc}"
    try:
        answer = management.transport.http.get(
            plain + "/.well-known/openid-configuration", timeout=settings.http_timeout
        )
        document = answer.json() if answer.status_code == 200 else None
    except (requests.RequestException, ValueError):
        return None
    if isinstance(document, dict) and document.get("issuer") == plain + "/":
        return plain
    return None


#: The checks that read the tenant's client through the Management API.
_ACCESS = ("Management API access", "client exists")


def _read_client(context: SetupContext) -> tuple[dict[str, Any] | None, list[Check]]:
    management, client_id = context.management, context.client_id
    access, exists = _ACCESS
    grant_fix = (
        "Authorize this application for the Auth0 Management API with the scopes "
        f"read:clients, read:connections and read:mfa_policies ({places.MANAGEMENT_API_ACCESS}), "
        "and enable its Client Credentials grant."
    )
    try:
        client = context.client()
    except ManagementNotFound:
        return None, [
            passed(access),
            failed(
                exists,
                f"the tenant has no client {client_id}",
                "Set AUTH0_CLIENT_ID to the client id of your Regular Web Application.",
            ),
        ]
    except ManagementForbidden as exc:
        return None, [
            failed(access, exc.message or str(exc.description), grant_fix),
            skipped(exists, "not checked: no Management API access"),
        ]
    except TokenVaultError as exc:
        if exc.error == "invalid_client":
            if management.settings.client_key is not None:
                said = "Auth0 refused the assertion signed with AUTH0_CLIENT_PRIVATE_KEY"
                fix = (
                    f"Register the key's public half on the client: run `{places.CREDENTIALS_ADD}` "
                    "with the app still on its secret, or set AUTH0_CLIENT_PRIVATE_KEY to the key "
                    "registered for this client."
                )
            else:
                said = "Auth0 refused AUTH0_CLIENT_ID / AUTH0_CLIENT_SECRET"
                fix = (
                    "Copy the client id and secret of your Regular Web Application from the "
                    "Auth0 Dashboard into AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET."
                )
            return None, [
                skipped(access, "not checked: the client credentials were refused"),
                failed(exists, f"{said} (invalid_client)", fix),
            ]
        return None, [
            failed(access, str(exc.description), grant_fix),
            skipped(exists, "not checked: no Management API access"),
        ]
    return client, [passed(access), passed(exists, str(client.get("name") or client_id))]


def _key_checks(
    context: SetupContext, client: Mapping[str, Any] | None, settings: Settings
) -> list[Check]:
    """Check the client key, background-token access and DPoP against the client."""
    management = context.management
    checks: list[Check] = []
    key = settings.client_key
    if settings.dpop_key is not None:
        checks.append(passed("DPoP", "tokens are bound to TOKEN_VAULT_DPOP_KEY"))
    if key is None:
        return checks
    name = "client key matches a credential"
    if client is None:
        checks.append(skipped(name, "not checked: the client could not be read"))
        return checks
    found: dict[str, Any] | None = None
    try:
        found = next((c for c in management.list_credentials() if c.get("kid") == key.kid), None)
    except TokenVaultError:
        found = None  # without read:client_credentials, Auth0's acceptance is the proof
    if found is not None and found.get("alg") not in (None, key.algorithm):
        checks.append(
            failed(
                name,
                f"credential {found.get('id')} is registered for {found.get('alg')}",
                f"Set AUTH0_CLIENT_PRIVATE_KEY_ALG to {found.get('alg')}.",
            )
        )
    elif found is not None:
        checks.append(passed(name, f"credential {found.get('id')} ({key.algorithm})"))
    else:
        # The Management API token behind every check above was asked for with this key.
        checks.append(passed(name, "Auth0 accepted an assertion signed with it"))
    access = client.get("token_vault_privileged_access")
    worker = "background tokens (Privileged Worker)"
    if isinstance(access, Mapping) and access.get("credentials"):
        grants = [
            str(g.get("connection")) for g in access.get("grants") or [] if isinstance(g, Mapping)
        ]
        checks.append(passed(worker, "allowed for " + (", ".join(grants) or "no connection")))
        # Auth0's rules for the access (allowlist, grants, limits, connections enabled), read
        # from the step `worker setup` applies.
        for action in PrivilegedWorker().plan(context):
            checks.append(_setup_check(places.WORKER_SETUP_ARGS, action))
    else:
        checks.append(
            skipped(
                worker,
                "not set up: jobs cannot call worker_token()",
                f"Run `{places.WORKER_SETUP_ARGS}` if background jobs need provider tokens.",
            )
        )
    return checks


_FLOW_CHECK = "TOKEN_VAULT_CONNECT_FLOW matches the tenant"


def _flow_check(context: SetupContext, client: Mapping[str, Any] | None) -> Check:
    """Say which way the tenant fills the vault and whether the app's flow is that one."""
    flow, base_url = context.flow, context.state.settings.base_url
    found: dict[str, VaultSwitches] = {}
    for name in context.state.settings.connections if client is not None else ():
        with contextlib.suppress(TokenVaultError):  # its own check names why
            found[name] = vault_switches(context.connection(name))
    if client is None or not found:
        return skipped(_FLOW_CHECK, "not checked: the client or the connections could not be read")
    names = sorted(found)
    by_ca = [n for n in names if found[n].connected_accounts]
    by_sign_in = [n for n in names if found[n].sign_in]
    policy = not missing_my_account_scopes(client, base_url)
    ca_ready = len(by_ca) == len(names) and policy
    sign_in_ready = len(by_sign_in) == len(names)
    parts = [
        "Connected Accounts on " + (", ".join(by_ca) or "no connection"),
        "sign-in (2025 switch) on " + (", ".join(by_sign_in) or "no connection"),
        "My Account API policy " + ("present" if policy else "missing"),
        f"TOKEN_VAULT_CONNECT_FLOW is {flow!r}",
    ]
    detail = "tenant: " + "; ".join(parts)
    if flow == "connected_accounts":
        if ca_ready:
            return passed(_FLOW_CHECK, "the tenant uses Connected Accounts; " + detail)
        if sign_in_ready:
            fix = (
                f"{_SETUP} to turn on Connected Accounts and the My Account API policy, or set "
                "TOKEN_VAULT_CONNECT_FLOW = 'authorize': this tenant fills the vault by sign-in."
            )
        else:
            fix = f"{_SETUP}: it turns on Connected Accounts and the My Account API policy."
        detail = "the tenant is not set up for Connected Accounts; " + detail
        return failed(_FLOW_CHECK, detail, fix)
    if sign_in_ready:
        note = (
            " (Connected Accounts is on too: Auth0's current tenants then store tokens only "
            "through it, so 'connected_accounts' is the safer choice)"
            if ca_ready
            else ""
        )
        return passed(_FLOW_CHECK, "the tenant fills the vault by sign-in; " + detail + note)
    if ca_ready:
        fix = (
            "Set TOKEN_VAULT_CONNECT_FLOW = 'connected_accounts': this tenant fills the vault "
            "through Connected Accounts."
        )
        return failed(_FLOW_CHECK, "the tenant uses Connected Accounts; " + detail, fix)
    fix = (
        f"{_SETUP}, then set TOKEN_VAULT_CONNECT_FLOW = 'connected_accounts' (Auth0's current "
        "way; 'authorize' also works once the 2025 switch is on)."
    )
    return failed(_FLOW_CHECK, "the tenant fills the vault in neither way; " + detail, fix)


def _mfa_check(management: ManagementClient, available: bool) -> Check:
    name = "MFA policy is not Always"
    if not available:
        return skipped(name, "not checked: no Management API access")
    try:
        policies = management.get_mfa_policies()
    except ManagementForbidden:
        return skipped(
            name,
            "not checked: the Management API token lacks read:mfa_policies",
            f"Grant read:mfa_policies to check it, or check {places.MFA} yourself.",
        )
    except TokenVaultError as exc:
        return skipped(name, f"not checked: {exc.description}")
    if "all-applications" in policies:
        return failed(
            name,
            "the tenant's MFA policy is 'Always': the Token Vault exchange fails under it",
            f"Set {places.MFA} > Require Multi-factor Auth to 'Never' and "
            "enforce MFA in a post-login Action instead.",
        )
    return passed(name, "policy: " + (", ".join(policies) or "never"))


_API_CLIENT_FIX = (
    f"Run `{places.API_CLIENT_ENABLE}` (it creates or finds the Custom API Client of "
    "AUTH0_AUDIENCE, with the Token Vault grant), then set TOKEN_VAULT_API_CLIENT_ID and "
    "TOKEN_VAULT_API_CLIENT_SECRET to its credentials."
)


def _api_checks(management: ManagementClient, settings: Settings, available: bool) -> list[Check]:
    """Check API mode: the API (AUTH0_AUDIENCE) and its Custom API Client."""
    identifier = settings.audience
    if not identifier:
        return []
    exists, rs256 = f"API {identifier} exists", "API signs access tokens with RS256"
    configured = "Custom API Client configured"
    linked, grant = (
        "Custom API Client linked to the API",
        "Custom API Client has the Token Vault grant",
    )
    client_names = [linked, grant]
    checks: list[Check] = []
    if not available:
        checks = [skipped(n, "not checked: no Management API access") for n in (exists, rs256)]
    else:
        try:
            server = management.get_resource_server(identifier)
        except ManagementNotFound as exc:
            checks = [
                failed(exists, "the tenant has no API with this identifier", exc.remedy),
                skipped(rs256, "not checked: the API does not exist"),
            ]
        except ManagementForbidden:
            fix = "Grant read:resource_servers to this application for the Management API."
            checks = [
                skipped(exists, "not checked: the token lacks read:resource_servers", fix),
                skipped(rs256, "not checked: the API could not be read"),
            ]
        except TokenVaultError as exc:
            checks = [
                failed(exists, str(exc.description), exc.remedy),
                skipped(rs256, "not checked: the API could not be read"),
            ]
        else:
            checks.append(passed(exists, str(server.get("name") or server.get("id") or "")))
            alg = server.get("signing_alg")
            if alg == "RS256":
                checks.append(passed(rs256))
            else:
                checks.append(
                    failed(
                        rs256,
                        f"signing_alg is {str(alg)[:20]!r}",
                        f"Set the API's Signing Algorithm to RS256 ({places.APIS} > the API > "
                        "Settings): access tokens are checked against the "
                        "tenant's public keys, which HS256 tokens do not use.",
                    )
                )
    client_id = settings.api_client_id
    if not client_id:
        checks.append(
            skipped(
                configured,
                "TOKEN_VAULT_API_CLIENT_ID is not set: calls with an access token cannot be "
                "exchanged (they answer 503)",
                _API_CLIENT_FIX,
            )
        )
        return checks
    checks.append(passed(configured, client_id))
    if not available:
        return [
            *checks,
            *(skipped(n, "not checked: no Management API access") for n in client_names),
        ]
    try:
        client = management.get_client(client_id)
    except ManagementNotFound:
        return [
            *checks,
            failed(linked, f"the tenant has no client {client_id}", _API_CLIENT_FIX),
            skipped(grant, "not checked: the client does not exist"),
        ]
    except TokenVaultError as exc:
        return [
            *checks,
            failed(linked, str(exc.description), exc.remedy),
            skipped(grant, "not checked: the client could not be read"),
        ]
    linked_to = client.get("resource_server_identifier")
    if client.get("app_type") == "resource_server" and linked_to == identifier:
        checks.append(passed(linked, identifier))
    else:
        found = f"app_type is {client.get('app_type')!r}, linked to {linked_to!r}"
        checks.append(failed(linked, found, _API_CLIENT_FIX))
    grants = [g for g in client.get("grant_types") or [] if isinstance(g, str)]
    if GRANT_TYPE in grants:
        checks.append(passed(grant))
    else:
        checks.append(
            failed(
                grant,
                "the Token Vault grant is not among its grant types",
                f"Run `{places.API_CLIENT_ENABLE}` (it adds the grant), or enable Token "
                "Vault in the client's Advanced Settings > Grant Types.",
            )
        )
    return checks
