"""Doctor's checks of what sign-in asks of Auth0: Organizations and Authentication Assurance.

(Layer: admin.) Read from the app's settings and its client record; neither has a fix in
``setup``: the organization's membership and the tenant's assurance policy are the tenant
owner's choices.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._config import Settings
from .app_checks import Check, failed, passed, skipped

_ORG_TAB = "Dashboard > Applications > (the app) > Organizations"


def organization_check(settings: Settings, client: Mapping[str, Any] | None) -> Check:
    """Report AUTH0_ORGANIZATION against the client's ``organization_usage``."""
    name = "Organizations"
    wanted = settings.organization
    usage = client.get("organization_usage") if client is not None else None
    if client is None:
        shown = f"AUTH0_ORGANIZATION={wanted}" if wanted else "AUTH0_ORGANIZATION not set"
        return skipped(name, f"{shown}; the client record could not be read")
    if wanted and usage not in ("allow", "require"):
        return failed(
            name,
            f"AUTH0_ORGANIZATION={wanted}, but the application's organization_usage is "
            f"{usage or 'deny'}: Auth0 refuses the organization at sign-in",
            f"In {_ORG_TAB}, set 'Type of users' to 'Business users' or 'Both', and enable "
            "the connections the organization signs in with.",
        )
    if wanted:
        return passed(
            name,
            f"users sign in to {wanted} (organization_usage: {usage}); the callback checks "
            "org_id, connected accounts and worker subject tokens carry it",
        )
    if usage == "require":
        return passed(
            name,
            "organization_usage is require and AUTH0_ORGANIZATION is not set: Auth0 asks each "
            "user for their organization (or pass login_url(organization=...))",
        )
    return skipped(name, f"not used (AUTH0_ORGANIZATION not set, organization_usage: {usage})")


def assurance_check(settings: Settings) -> Check:
    """Report how a My Account API Authentication Assurance refusal is met (the step-up)."""
    name = "Authentication Assurance step-up"
    if not settings.step_up_acr_values:
        return failed(
            name,
            "TOKEN_VAULT_STEP_UP_ACR_VALUES is empty: a My Account API that asks for a second "
            "factor (unmet_authentication_requirements) cannot be met by a step-up sign-in",
            "Leave TOKEN_VAULT_STEP_UP_ACR_VALUES at its default (the multi-factor policy).",
        )
    where = (
        "a browser connect steps up by itself"
        if settings.connect_flow == "connected_accounts"
        else "only Connected Accounts calls need it (TOKEN_VAULT_CONNECT_FLOW is authorize)"
    )
    return passed(
        name,
        f"step-up asks for acr_values={settings.step_up_acr_values}; {where}. Auth0's "
        "assurance policy itself is not readable through the Management API: the tenant "
        "needs an MFA factor users can enrol in for the step-up to succeed",
    )
