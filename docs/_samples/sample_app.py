"""A tiny app that lists the signed-in user's Google calendars (the testing guide's example)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_token_vault import TokenVault, provider_session, provider_token_required

CALENDAR_READ = "https://www.googleapis.com/auth/calendar.readonly"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app; ``config`` overrides the settings (the tests point it at the emulator)."""
    app = Flask(__name__)
    app.config.from_prefixed_env()  # FLASK_SECRET_KEY, FLASK_AUTH0_DOMAIN, ...
    app.config.update(config or {})
    google = {
        "scopes": ["openid", "email", "profile"],
        # Google's API, or the emulator's fake one in the tests (token_vault_app_config).
        "api_base": app.config.get("GOOGLE_API_BASE", "https://www.googleapis.com"),
    }
    app.config.setdefault("TOKEN_VAULT_CONNECTIONS", {"google-oauth2": google})
    TokenVault(app)

    @app.get("/calendars")
    @provider_token_required("google-oauth2", scopes=[CALENDAR_READ])
    def calendars() -> dict[str, list[str]]:
        google = provider_session("google-oauth2", scopes=[CALENDAR_READ])
        answer = google.get("/calendar/v3/users/me/calendarList")
        answer.raise_for_status()
        return {"calendars": [item["summary"] for item in answer.json()["items"]]}

    return app
