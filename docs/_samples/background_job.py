"""A job that reads a user's Google Calendar with no one signed in (the background-jobs guide)."""

import os

import click
import requests
from flask import Flask
from flask_token_vault import TokenVault, provider_api_url

CALENDAR_READ = "https://www.googleapis.com/auth/calendar.readonly"
#: Why the job takes the token. Auth0 requires it and writes it to the tenant's logs, which
#: administrators and log streams read: say what the job does, never whom it is for.
AUDIT_CONTEXT = "nightly calendar sync"

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ["SECRET_KEY"],
    AUTH0_DOMAIN=os.environ["AUTH0_DOMAIN"],
    AUTH0_CLIENT_ID=os.environ["AUTH0_CLIENT_ID"],
    # The client key signs the job's requests; the secret only until the key is registered.
    AUTH0_CLIENT_PRIVATE_KEY=os.environ.get("AUTH0_CLIENT_PRIVATE_KEY"),
    AUTH0_CLIENT_SECRET=os.environ.get("AUTH0_CLIENT_SECRET"),
    TOKEN_VAULT_CONNECTIONS={
        "google-oauth2": {
            "scopes": ["openid", "email", "profile"],
            # Google's API; the emulator prints GOOGLE_API_BASE, its fake one, to run offline.
            "api_base": os.environ.get("GOOGLE_API_BASE", "https://www.googleapis.com"),
        }
    },
)
vault = TokenVault(app)


def next_events(user_id: str) -> list[str]:
    """Return the titles of a user's next events: the job, run by a queue or a command."""
    token = vault.worker_token(
        user_id, "google-oauth2", scopes=[CALENDAR_READ], audit_context=AUDIT_CONTEXT, app=app
    )
    with app.app_context():
        url = provider_api_url("google-oauth2", "/calendar/v3/calendars/primary/events")
    answer = requests.get(
        url,
        headers={"Authorization": f"Bearer {token.access_token}"},
        params={"maxResults": "10", "singleEvents": "true", "orderBy": "startTime"},
        timeout=10,
    )
    answer.raise_for_status()
    return [event.get("summary", "(no title)") for event in answer.json()["items"]]


@app.cli.command("sync-calendar")
@click.argument("user_id")
def sync_calendar(user_id: str) -> None:
    """Print a user's next events (USER_ID: their Auth0 id, the ``sub`` of their ID token)."""
    for title in next_events(user_id):
        click.echo(title)
