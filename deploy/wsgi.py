"""The WSGI entry point of a Flask-Token-Vault app run by gunicorn on several workers and hosts.

Run it with ``gunicorn -c gunicorn.conf.py wsgi:app`` from this folder (``make bench`` does, on
two gunicorn instances sharing one Redis). Copy it next to your app and replace the two example
routes with your own blueprints: what matters for scaling out is the configuration, read from
the environment (see ``env.example``):

* every worker on every host has the same ``SECRET_KEY``: it signs the session cookie and the
  keys that encrypt the refresh token in it and the cached provider tokens derive from it;
* every worker on every host uses the same Redis (``REDIS_URL``) as the provider-token cache, so
  a user's token is exchanged once per lifetime however many workers serve them;
* behind a proxy that terminates TLS, ``ProxyFix`` makes the callback URL sent to Auth0 read
  ``https://`` (set ``PROXY_HOPS=0`` when nothing sits in front of gunicorn).
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from flask_token_vault import TokenVault, provider_session, provider_token_required

CALENDAR_READ = "https://www.googleapis.com/auth/calendar.readonly"


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise RuntimeError(f"Set {name} in the environment (see deploy/env.example).")
    return value


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


def create_app() -> Flask:
    """Build the app from the environment: shared secret, shared Redis, secure cookies."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=_required("SECRET_KEY"),
        # Old keys, space-separated, while sessions signed with them are still around.
        SECRET_KEY_FALLBACKS=os.environ.get("SECRET_KEY_FALLBACKS", "").split(),
        AUTH0_DOMAIN=_required("AUTH0_DOMAIN"),
        AUTH0_CLIENT_ID=_required("AUTH0_CLIENT_ID"),
        AUTH0_CLIENT_SECRET=_required("AUTH0_CLIENT_SECRET"),
        # One cache for every worker and host: one exchange per user and token lifetime.
        TOKEN_VAULT_CACHE=_required("REDIS_URL"),
        TOKEN_VAULT_CONNECTIONS={"google-oauth2": {"scopes": ["openid", "email", "profile"]}},
        SESSION_COOKIE_SECURE=_flag("SESSION_COOKIE_SECURE", True),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        GOOGLE_API_BASE=os.environ.get("GOOGLE_API_BASE", "https://www.googleapis.com"),
    )
    TokenVault(app)

    hops = int(os.environ.get("PROXY_HOPS", "1"))
    if hops:
        # Trust exactly as many X-Forwarded-* hops as there are proxies in front of gunicorn.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        """Answer the load balancer's health check (no session, no Redis, no Auth0)."""
        return {"ok": True}

    @app.get("/calendars")
    @provider_token_required("google-oauth2", scopes=[CALENDAR_READ])
    def calendars() -> dict[str, Any]:
        """List the signed-in user's Google calendars."""
        google = provider_session("google-oauth2", scopes=[CALENDAR_READ], timeout=10)
        base = app.config["GOOGLE_API_BASE"]
        answer = google.get(f"{base}/calendar/v3/users/me/calendarList")
        answer.raise_for_status()
        return {"calendars": [item.get("summary") for item in answer.json().get("items", [])]}

    return app


app = create_app()
