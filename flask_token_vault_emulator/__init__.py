"""Run a local stand-in for an Auth0 tenant with Token Vault, plus fake provider APIs.

The emulator is a real HTTP server (a Flask app served by werkzeug in a daemon thread) that
answers like Auth0 does: OpenID discovery, JWKS, ``/authorize`` with a login-and-consent page,
``/oauth/token`` (authorization code with PKCE, refresh token, client credentials and the Token
Vault grant), ``/userinfo`` and logout. Provider tokens from the Token Vault exchange work against
fake Google Calendar (``/google``), Microsoft Graph (``/microsoft``), Slack Web API
(``/slack/api/``) and GitHub REST API (``/github``). A Slack or GitHub connection is added by
the test that needs it: ``emu.add_connection("github", "github", {...})``, or a connection
named ``sign-in-with-slack`` (Auth0's Sign in with Slack).

It is for local testing only. It binds 127.0.0.1 by default, its control API
(``/__emulator/...``) changes the tenant without authentication, and it must never face the
internet.

Usage::

    from flask_token_vault_emulator import Emulator

    with Emulator() as emu:
        emu.url            # http://127.0.0.1:PORT  (issuer: emu.url + "/")
        emu.client_id      # "emulator-client-id"
        emu.client_secret  # "emulator-client-secret"
        emu.connect_account("alice@example.com", "google-oauth2",
                            ["https://www.googleapis.com/auth/calendar.readonly"])
        refresh_token = emu.issue_refresh_token("alice@example.com")

From a shell: ``python -m flask_token_vault_emulator --port 8100 [--auto-login EMAIL]``.

Interactive login: ``GET /authorize`` shows a page with a form (``#email``, ``#name``,
``#account``, buttons ``#allow`` and ``#deny``) that posts to ``/u/login`` with a hidden ``txn``.
Allow connects the account (when ``connection`` names a Token Vault connection, with its default
scopes plus ``connection_scope``) and redirects to ``redirect_uri?code=...&state=...``; deny
redirects with ``error=access_denied``.

Non-interactive mode: when auto-login is set (``Emulator(auto_login="alice@example.com")``,
:meth:`Emulator.set_auto_login`, ``--auto-login`` or ``POST /__emulator/auto-login``),
``GET /authorize`` shows no page: it answers the redirect to ``redirect_uri`` at once, as if the
form had been submitted with "allow" (or "deny" when ``consent`` is false). Browser-less tests of
a login then only follow redirects.

Faults (:meth:`Emulator.add_fault` or ``POST /__emulator/faults``) make the next requests to an
endpoint fail: ``authorize``, ``login``, ``token`` (any ``/oauth/token``),
``token:authorization_code``, ``token:refresh_token``, ``token:exchange`` (the Token Vault
grant), ``token:client_credentials``, ``userinfo``, ``discovery``, ``jwks``, ``logout``,
``revoke`` (``/oauth/revoke``), ``google``, ``microsoft``, ``slack``, ``github``,
``management`` (``/api/v2``),
``my-account`` (``/me`` and the Connected Accounts page) or ``*`` (anything but the control
API).

APIs: the tenant has one, ``emu.api_identifier`` (``https://api.example.com/``, scopes
``read:calendar`` and ``write:calendar``), with its Custom API Client (``emu.api_client_id``,
``emu.api_client_secret``) that exchanges callers' access tokens at Token Vault, and a public
SPA client (``emu.spa_client_id``: PKCE, no secret; the token endpoint and the My Account API
answer CORS for loopback pages). ``/authorize`` with an ``audience`` issues an RS256 JWT for
that API; :meth:`Emulator.issue_access_token` signs one directly (claims may be overridden, to
make tokens a test wants refused), :meth:`Emulator.add_api` adds an API and
:meth:`Emulator.rotate_signing_key` starts signing with a new key.

Management API (``/api/v2``, see :mod:`.management`): tokensets, connections, clients (Custom API
Clients included), APIs, a user's connected accounts and the MFA policy, with Auth0's scopes and
error bodies; the default client's
client-credentials tokens carry every scope (:meth:`Emulator.add_client` with
``management_scopes`` makes one with fewer). My Account API (``/me/v1``, see
:mod:`.my_account`): Connected Accounts connect/complete/list/delete, with a consent page that
honours auto-login, and the list of connections a user can connect. :meth:`Emulator.restore_tenant`
undoes changes to clients and connections.

Tenant shapes: the default tenant is set up for Token Vault (the app has the grant and a My
Account API policy, both connections have the 2025 Token Vault switch, loopback URLs pass as
callback and logout URLs). :meth:`Emulator.bare_tenant` (``POST /__emulator/bare-tenant``) makes
it a new tenant with nothing set up, as ``flask token-vault setup`` finds one;
:meth:`Emulator.set_tenant_features` (``POST /__emulator/tenant-features``) removes the tokenset
endpoints or the connections' Connected Accounts switch.

Sessions and logout: a login starts an Auth0 session whose ``sid`` is in the ID token;
``POST /oauth/revoke`` revokes a refresh token; logging out (``/v2/logout``, ``/oidc/logout``)
ends the browser's session and sends a back-channel logout token to each client's
``oidc_logout.backchannel_logout_urls`` (set with the Management API's client PATCH or
:meth:`Emulator.set_backchannel_logout_urls`). :meth:`Emulator.backchannel_logout` (or
``POST /__emulator/backchannel-logout``) does the same for a user without a browser, and
:meth:`Emulator.logout_token` makes a token for a test to send itself.
"""

from .app import create_app
from .faults import Fault
from .server import Emulator
from .state import EmulatorState

__all__ = ["Emulator", "EmulatorState", "Fault", "create_app"]
