"""Sign in with Auth0 and list your next Google Calendar events, through Auth0 Token Vault."""

import os

from flask import Flask
from flask_token_vault import (
    TokenVault,
    current_user,
    login_url,
    provider_session,
    provider_token_required,
)
from markupsafe import escape

CALENDAR_READ = "https://www.googleapis.com/auth/calendar.readonly"

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ["SECRET_KEY"],
    AUTH0_DOMAIN=os.environ["AUTH0_DOMAIN"],
    AUTH0_CLIENT_ID=os.environ["AUTH0_CLIENT_ID"],
    AUTH0_CLIENT_SECRET=os.environ["AUTH0_CLIENT_SECRET"],
    SESSION_COOKIE_SAMESITE="Lax",  # sent on the redirect back from Auth0, not cross-site posts
    TOKEN_VAULT_CONNECTIONS={
        "google-oauth2": {
            "scopes": ["openid", "email", "profile"],
            # Google's API; the emulator prints GOOGLE_API_BASE, its fake one, to run offline.
            "api_base": os.environ.get("GOOGLE_API_BASE", "https://www.googleapis.com"),
        }
    },
    # How accounts are connected: Auth0's Connected Accounts (its current way), or "authorize"
    # (signing in through the connection) for a tenant set up that way. `flask token-vault
    # doctor` says which one your tenant uses.
    TOKEN_VAULT_CONNECT_FLOW="connected_accounts",  # noqa: S106 - a flow name, not a secret
)
vault = TokenVault(app)  # or TokenVault() and vault.init_app(app) in an app factory


@app.get("/")
def home() -> str:
    """Greet the signed-in user, or offer to sign in."""
    if not current_user:  # a proxy: test its truth, not `is None`
        return f'<a href="{login_url(next="/")}">Sign in</a>'
    return (
        f"<p>Hello {escape(current_user.name or current_user.sub)}.</p>"
        '<p><a href="/calendar">My next events</a> · <a href="/auth/logout">Sign out</a></p>'
    )


@app.get("/calendar")
@provider_token_required("google-oauth2", scopes=[CALENDAR_READ])
def calendar() -> dict[str, list[str]]:
    """List the titles of the user's next ten events."""
    google = provider_session("google-oauth2", scopes=[CALENDAR_READ])
    answer = google.get(  # a path on Google's API, or on the emulator's copy of it
        "/calendar/v3/calendars/primary/events",
        params={"maxResults": "10", "singleEvents": "true", "orderBy": "startTime"},
    )
    answer.raise_for_status()
    return {"events": [event.get("summary", "(no title)") for event in answer.json()["items"]]}
