"""The ``error`` codes each error class is raised with besides its default one (layer: bottom).

Written once: the error's ``remedy`` and page title come from here, and so does the
troubleshooting guide's table (``tests/docs/test_error_table.py`` checks it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    """An ``error`` code an error class is raised with besides its default one."""

    #: What happened, in the developer's words, and its most likely cause.
    cause: str
    #: The one command or setting that fixes it (the error's ``remedy``).
    fix: str
    #: The page's heading when the class's own does not fit this code.
    title: str | None = None


#: By error class name: code -> what it means and what fixes it.
CODES: dict[str, dict[str, Code]] = {
    "LoginRequired": {
        "invalid_grant": Code(
            "Auth0 no longer accepts the session's refresh token: it was revoked (sign-out "
            "elsewhere, a password change) or expired.",
            "Sign in again.",
        ),
        "fresh_login_required": Code(
            "The view is decorated with fresh_login_required and the user last authenticated at "
            "Auth0 longer ago than its max_age.",
            "Sign in again (the login_url given asks Auth0 for a new authentication).",
            "Please sign in again",
        ),
        "unmet_authentication_requirements": Code(
            "Auth0's My Account API Authentication Assurance refused a /me/ token: the user has "
            "not passed a second factor recently enough (15 minutes by default), or has none.",
            "Sign in again with a second factor (the retry_url asks for "
            "TOKEN_VAULT_STEP_UP_ACR_VALUES); a browser connect does this by itself.",
            "A stronger sign-in is needed",
        ),
        "session_unreadable": Code(
            "The session's refresh token cannot be opened: SECRET_KEY changed since sign-in.",
            "Sign in again; keep SECRET_KEY the same on every process and across restarts.",
        ),
        "session_ended": Code(
            "An on_behalf() handle outlived the session it was taken in (sign-out, a "
            "back-channel logout, the session's absolute lifetime).",
            "Sign in again, then start the work again from the new session.",
        ),
    },
    "CallbackError": {
        "missing_state": Code(
            "The answer from Auth0 came without its state: the callback URL was opened by hand.",
            "Start the sign-in again from a link on this site.",
        ),
        "state_mismatch": Code(
            "The answer belongs to no round trip this browser started: another tab finished it, "
            "the cookie was lost between the two sites, or the link was forged.",
            "Start the sign-in again from a link on this site.",
        ),
        "link_expired": Code(
            "The round trip to Auth0 took longer than it may, or was finished already.",
            "Start the sign-in again from a link on this site.",
            "This link has expired",
        ),
        "issuer_mismatch": Code(
            "The answer names another issuer than this site's tenant (RFC 9207 mix-up defence).",
            "Start the sign-in again from a link on this site.",
        ),
        "invalid_id_token": Code(
            "Auth0's ID token failed its checks (signature, audience, nonce or times); a clock "
            "far off does this too.",
            "Check this machine's clock and that AUTH0_CLIENT_ID is this application's.",
        ),
        "stale_authentication": Code(
            "A sign-in asked for a recent authentication (max_age) and Auth0's ID token has no "
            "auth_time, or an older one.",
            "Start the sign-in again from a link on this site; check this machine's clock.",
        ),
        "organization_mismatch": Code(
            "A sign-in asked for an Auth0 Organization (AUTH0_ORGANIZATION, or login_url's "
            "organization) and the ID token's org_id (or org_name) names another, or none.",
            "Check AUTH0_ORGANIZATION and that the application is enabled for that organization "
            "in Auth0 (Organizations tab, 'Type of users': organization).",
        ),
        "step_up_failed": Code(
            "A step-up sign-in asked for acr_values (a second factor) and the ID token shows "
            "neither that acr nor amr 'mfa': the tenant has no MFA factor the user can pass.",
            "Turn on a multi-factor factor in Auth0 (Security > Multi-factor Auth) or change "
            "TOKEN_VAULT_STEP_UP_ACR_VALUES.",
        ),
        "missing_code": Code(
            "Auth0's answer carries neither a code nor an error.",
            "Start the sign-in again from a link on this site.",
        ),
        "access_denied": Code(
            "The user declined at Auth0's page, or a rule or Action of the tenant refused.",
            "Try again and allow access to use this feature.",
            "Access not granted",
        ),
        "account_mismatch": Code(
            "The account connected is the account of another user of this site.",
            "Connect an account of your own, or sign out first to use the other one.",
            "That account belongs to someone else",
        ),
    },
    "AccountNotConnected": {
        "federated_connection_refresh_token_not_found": Code(
            "Token Vault holds no account of this user at the connection.",
            "Connect the account at this provider, then try again.",
        ),
    },
    "ReconsentRequired": {
        "federated_connection_refresh_token_flow_failed": Code(
            "The provider refused the refresh token Token Vault holds: the user revoked this "
            "app's access at the provider, or the provider expired the grant.",
            "Connect the account again to renew the permission given to this app.",
        ),
    },
    "InsufficientScope": {
        "invalid_scope": Code(
            "Auth0 refused to issue a provider token with the scopes asked for: the user did not "
            "grant them.",
            "Connect the account again and allow the additional permissions.",
        ),
    },
    "InvalidRequest": {
        "account_not_found": Code(
            "The connected account id names no account of the signed-in user (removed already, "
            "or another user's).",
            "List the user's accounts again (my_connected_accounts()) and use one of their ids.",
        ),
        "invalid_binding_message": Code(
            "An approval's binding message is empty or longer than Auth0's 64 characters.",
            "Shorten the message; put the details in authorization_details.",
        ),
        "csrf_failed": Code(
            "A form was posted without this site's CSRF token: a page open from before a "
            "restart with another SECRET_KEY, or a form on another site.",
            "Reload the page and send the form again.",
            "This form could not be accepted",
        ),
        "link_expired": Code(
            "A signed connect link is past its lifetime.",
            "Go back to the page that had the link and follow it again.",
            "This link has expired",
        ),
        "connect_link_invalid": Code(
            "A connect link asks for scopes the app does not declare and its signature does not "
            "hold for whoever is signed in (edited, or made for another user).",
            "Go back to the page that had the link and follow it again.",
        ),
        "too_many_scopes": Code(
            "Connecting would ask the My Account API for more scopes than it takes.",
            "Ask for fewer scopes: trim TOKEN_VAULT_CONNECTIONS or the scopes the view requires.",
        ),
        "audit_context_required": Code(
            "A background job asked for a token without saying why (Auth0 requires the "
            "audit_context of a Privileged Worker request, and records it in the tenant logs).",
            "Pass audit_context='nightly calendar sync' (say why the job needs the token, no "
            "personal data) to worker_token(), or set TOKEN_VAULT_WORKER_AUDIT_CONTEXT for jobs "
            "that share one reason.",
        ),
        "invalid_audit_context": Code(
            "The job's audit_context is empty, longer than 256 characters or more than one line.",
            "Give a short reason of 1 to 256 characters, e.g. 'nightly calendar sync'.",
        ),
        "invalid_logout_token": Code(
            "A back-channel logout request carried no logout token Auth0 signed for this app.",
            "Only Auth0 sends logout tokens here; nothing to do if this was not Auth0.",
        ),
    },
    "InvalidAccessToken": {
        "access_token_required": Code(
            "A call to the API came without an Authorization: Bearer access token.",
            "Send the access token Auth0 issued for this API (audience AUTH0_AUDIENCE).",
        ),
    },
    "Misconfigured": {
        "invalid_client": Code(
            "Auth0 refused this application's credentials: AUTH0_CLIENT_SECRET (or the client "
            "key) is not what Auth0 holds for AUTH0_CLIENT_ID.",
            "Copy the Client Secret from the application's Settings in the Auth0 Dashboard into "
            "AUTH0_CLIENT_SECRET (with a client key: `flask token-vault client credentials "
            "add`); `flask token-vault doctor` checks the credentials.",
        ),
        "unauthorized_client": Code(
            "Auth0 does not allow this application the grant it asked for (the Token Vault "
            "grant is not enabled on it).",
            "Run `flask token-vault setup`; `flask token-vault doctor` says what is missing.",
        ),
        "mfa_required": Code(
            "The tenant's MFA policy is 'Always', under which Token Vault cannot run.",
            "Set the tenant's MFA policy to 'Never' and enforce MFA in an Action; Token Vault "
            "cannot run under the 'Always' policy.",
        ),
        "missing_refresh_token": Code(
            "Auth0 issued no refresh token at sign-in, so Token Vault cannot be used.",
            "Request the 'offline_access' scope and enable the Refresh Token grant and 'Allow "
            "Offline Access' for this application in Auth0 (`flask token-vault setup`).",
        ),
        "client_key_required": Code(
            "A background job asked for a token, which needs the client key (private_key_jwt).",
            "Set AUTH0_CLIENT_PRIVATE_KEY and register its public key with `flask token-vault "
            "worker setup`.",
        ),
        "connect_not_stored": Code(
            "Auth0 finished connecting the account but Token Vault holds nothing for it: Token "
            "Vault is off on the connection, or the tenant fills the vault the other way "
            "(TOKEN_VAULT_CONNECT_FLOW).",
            "Run `flask token-vault doctor`: it says which way this tenant fills the vault; "
            "`flask token-vault setup` turns Token Vault on for the connection.",
        ),
        "issuer_mismatch": Code(
            "Auth0's discovery document names another issuer than AUTH0_DOMAIN.",
            "Set AUTH0_DOMAIN to the domain your tenant's issuer names (with a custom domain, "
            "the custom domain).",
        ),
        "discovery_mismatch": Code(
            "Auth0's discovery document sends an endpoint to another site than AUTH0_DOMAIN.",
            "Set AUTH0_DOMAIN to the domain your tenant's issuer names; if it is right, check "
            "DNS and any proxy in between.",
        ),
    },
    "ApiClientMisconfigured": {
        "api_client_not_configured": Code(
            "A call to the API needs a provider token but TOKEN_VAULT_API_CLIENT_ID is not set.",
            "Run `flask token-vault api-client enable`, then set TOKEN_VAULT_API_CLIENT_ID and "
            "TOKEN_VAULT_API_CLIENT_SECRET.",
        ),
    },
    "Auth0Unavailable": {
        "malformed_answer": Code(
            "Auth0 answered something that is not what its API documents (not JSON, or a "
            "field missing).",
            "Try again in a moment; if it persists, check that AUTH0_DOMAIN is your tenant.",
        ),
        "jwks_unavailable": Code(
            "Auth0's signing keys (/.well-known/jwks.json) could not be read.",
            "Try again in a moment; check that this machine reaches AUTH0_DOMAIN.",
        ),
        "connection_error": Code(
            "Nothing answers at AUTH0_DOMAIN, or this machine cannot reach it.",
            "Check AUTH0_DOMAIN and that the Auth0 server it names is running and reachable.",
        ),
        "timeout": Code(
            "Auth0 did not answer in time (TOKEN_VAULT_HTTP_TIMEOUT).",
            "Try again in a moment.",
        ),
    },
    "MyAccountError": {
        "malformed_answer": Code(
            "Auth0's My Account API answered something it does not document.",
            "Try connecting again in a moment.",
        ),
    },
}
