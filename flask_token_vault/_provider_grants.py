"""Revoke the app's grant at the provider before an account leaves the vault (request-time).

Auth0 deletes a connected account without telling the provider: the user's Google account
still lists the app, with its access, until they remove it by hand. Where the provider offers an
endpoint that revokes a grant with the token alone, :func:`revoke_provider_grant` calls it.

Which providers can, and why the others cannot:

- Google (``google-oauth2``): ``POST https://oauth2.googleapis.com/revoke`` with the token ends
  the whole grant (access and refresh tokens).
- Microsoft (``windowslive``): none. Microsoft identity platform has no endpoint that revokes
  one app's consent or refresh token for a user; the user removes the app at
  https://account.live.com/consent/Manage (or an admin in Entra ID).
- GitHub: its ``DELETE /applications/{client_id}/grant`` needs the OAuth app's client secret,
  which Auth0 holds, not this app.
- Any other connection: not known here, reported as such.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from ._http import Failure
from ._state import get_state
from ._tokens import get_provider_token
from .errors import ProviderUnavailable, TokenVaultError

log = logging.getLogger("flask_token_vault")

#: Google's revocation endpoint, for a connection whose ``api_base`` is Google's own.
GOOGLE_REVOKE_URL = "https://oauth2.googleapis.com/revoke"
_GOOGLE_API_BASE = "https://www.googleapis.com"

#: Why a provider's grant cannot be revoked from here, by connection name.
NO_REVOCATION: dict[str, str] = {
    "windowslive": "Microsoft has no endpoint that revokes one app's access for a user; the "
    "user removes the app at https://account.live.com/consent/Manage.",
    "github": "GitHub revokes a grant only with the OAuth app's client secret, which Auth0 "
    "holds; the user removes the app at https://github.com/settings/applications.",
}


@dataclass(frozen=True)
class ProviderRevocation:
    """What became of the app's grant at one provider, when an account was disconnected."""

    #: The Auth0 connection (``google-oauth2``...).
    connection: str
    #: The connected account (``cac_...``), when one was named.
    account_id: str | None
    #: ``"revoked"``, ``"not_supported"`` (the provider offers no way) or ``"failed"``.
    outcome: str
    #: Why, in a sentence (never a token).
    detail: str

    @property
    def revoked(self) -> bool:
        """Tell whether the provider confirmed the grant is gone."""
        return self.outcome == "revoked"

    def to_dict(self) -> dict[str, str | None]:
        """Return it as JSON-ready data."""
        return asdict(self)


def revocation_url(connection: str) -> str | None:
    """Return where ``connection``'s provider revokes a grant, or ``None`` when it cannot.

    Google's own API base uses :data:`GOOGLE_REVOKE_URL`; another ``api_base`` (a local
    stand-in for Google, in tests) is asked at ``{api_base}/revoke``.
    """
    if connection != "google-oauth2":
        return None
    conn = get_state().settings.connections.get(connection)
    base = conn.api_base if conn is not None and conn.api_base else _GOOGLE_API_BASE
    return GOOGLE_REVOKE_URL if base == _GOOGLE_API_BASE else base.rstrip("/") + "/revoke"


def revoke_provider_grant(
    connection: str, login_hint: str | None = None, account_id: str | None = None
) -> ProviderRevocation:
    """Revoke the signed-in user's grant to this app at ``connection``'s provider; say how it went.

    Takes the user's provider token from the vault (as :func:`get_provider_token` does) and
    sends it to the provider's revocation endpoint. Never raises for the provider's answer: the
    outcome is reported, so a disconnect can go on and say what was left behind.
    """

    def report(outcome: str, detail: str) -> ProviderRevocation:
        log.info("provider revocation: connection=%s outcome=%s", connection, outcome)
        return ProviderRevocation(connection, account_id, outcome, detail)

    url = revocation_url(connection)
    if url is None:
        reason = NO_REVOCATION.get(connection, "No revocation endpoint is known for it.")
        return report("not_supported", reason)
    try:
        token = get_provider_token(connection, login_hint=login_hint)
    except TokenVaultError as exc:
        return report("failed", f"No provider token to revoke ({exc.error}).")
    try:
        answer = get_state().transport.send(
            "POST", url, error=_unreachable, what="provider revocation", data={"token": token}
        )
    except TokenVaultError as exc:
        return report("failed", exc.description or exc.error)
    status = getattr(answer, "status_code", 0)
    if status == 200:
        return report("revoked", "The provider revoked the grant.")
    return report("failed", f"The provider answered {status}.")


def _unreachable(failure: Failure) -> TokenVaultError:
    return ProviderUnavailable(f"The provider could not be reached ({failure.code}).")
