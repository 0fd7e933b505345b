"""Example app for Flask-Token-Vault: a calendar and a profile page fetched through Token Vault.

With ``AUTH0_DOMAIN`` (and ``AUTH0_CLIENT_ID``, ``AUTH0_CLIENT_SECRET``) in the environment it
talks to that Auth0 tenant and the real Google and Microsoft APIs. Without it, it starts the
bundled Auth0 emulator on a free port, sets its tenant up for the app (what ``flask token-vault
setup`` does), and with ``AUTH0_DOMAIN`` at the emulator the extension sends Google and Microsoft
API calls to the emulator's fake APIs, so it runs offline with no Auth0 account.

The pages call the providers through their own Python libraries, with credentials from the
vault (``flask_token_vault.providers``): the calendar through Google's ``googleapiclient``, the
profile through Microsoft's ``msgraph-sdk``. Hence the ``[google,microsoft]`` extras
``make demo`` installs.

Accounts are connected through Auth0's Connected Accounts (``TOKEN_VAULT_CONNECT_FLOW =
"connected_accounts"``, the default here) or by signing in through the connection
(``TOKEN_VAULT_CONNECT_FLOW=authorize`` in the environment). With Connected Accounts the home
page lists what the tenant lets the user connect (:func:`my_connectable_connections`).

It is also an API: ``/spa`` is a single-page screen (plain JavaScript, ``static/spa.js``) that
signs in with its own public client, gets an access token for the API (``AUTH0_AUDIENCE``) and
calls ``/api/calendar`` with it; the API exchanges that token at Token Vault with its Custom
API Client (``TOKEN_VAULT_API_CLIENT_ID``). On a real tenant, set ``AUTH0_AUDIENCE``,
``TOKEN_VAULT_API_CLIENT_ID``, ``TOKEN_VAULT_API_CLIENT_SECRET`` and ``SPA_CLIENT_ID`` too.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

from flask import (
    Flask,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from kiota_abstractions.api_error import APIError
from werkzeug.wrappers import Response

from flask_token_vault import (
    AccountNotConnected,
    ReconsentRequired,
    TokenVault,
    TokenVaultError,
    connect_url,
    current_access_token,
    current_user,
    get_provider_token_set,
    management_client,
    my_connectable_connections,
    provider_api_url,
    provider_token_required,
    setup_tenant,
)
from flask_token_vault.providers.google_auth import VaultCredentials
from flask_token_vault.providers.microsoft import graph_client
from flask_token_vault_emulator import Emulator

CAL_READ = "https://www.googleapis.com/auth/calendar.readonly"
CAL_WRITE = "https://www.googleapis.com/auth/calendar.events"
GRAPH_USER_READ = "User.Read"
#: The API scope the single-page screen asks for, and /api/calendar needs.
API_READ = "read:calendar"
vault = TokenVault()
#: Settings read from the environment (a worker process gets all it needs this way).
_FROM_ENVIRONMENT = (
    "AUTH0_DOMAIN",
    "AUTH0_CLIENT_ID",
    "AUTH0_CLIENT_SECRET",
    "AUTH0_CLIENT_PRIVATE_KEY",
    "AUTH0_AUDIENCE",
    "TOKEN_VAULT_CONNECT_FLOW",
    "TOKEN_VAULT_DPOP_KEY",
    "TOKEN_VAULT_CACHE",
    "TOKEN_VAULT_API_CLIENT_ID",
    "TOKEN_VAULT_API_CLIENT_SECRET",
    "SPA_CLIENT_ID",
    "GOOGLE_API_BASE",
    "MICROSOFT_GRAPH_API_BASE",
)
_API_BASE_KEYS = {"google-oauth2": "GOOGLE_API_BASE", "windowslive": "MICROSOFT_GRAPH_API_BASE"}


def _connections(config: Any) -> dict[str, dict[str, Any]]:
    """Return the connections the pages use, each API where ``config`` says it is."""
    connections: dict[str, dict[str, Any]] = {
        "google-oauth2": {
            "label": "Google",
            "scopes": ["openid", "email", "profile", CAL_READ],
            # Asked for later, the first time the user adds an event (/calendar/new).
            "optional_scopes": [CAL_WRITE],
        },
        "windowslive": {"label": "Microsoft", "scopes": [GRAPH_USER_READ]},
    }
    # An emulator gives these two (the real APIs are the default).
    for name, key in _API_BASE_KEYS.items():
        if config.get(key):
            connections[name]["api_base"] = config[key]
    return connections


def _emulator_config(emulator: Emulator) -> dict[str, Any]:
    return {
        # Emulator.app_config, not flask_token_vault_pytest's emulator_config: importing the
        # pytest plugin's package imports pytest, which `make demo` does not install.
        **emulator.app_config(),
        "EMULATOR_URL": emulator.url,
        # The emulator's API, its Custom API Client and its public SPA client.
        "AUTH0_AUDIENCE": emulator.api_identifier,
        "TOKEN_VAULT_API_CLIENT_ID": emulator.api_client_id,
        "TOKEN_VAULT_API_CLIENT_SECRET": emulator.api_client_secret,
        "SPA_CLIENT_ID": emulator.spa_client_id,
    }


def create_app(config: dict[str, Any] | None = None, emulator: Emulator | None = None) -> Flask:
    """Build the example app; start an emulator when no Auth0 tenant is configured."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(32),
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
        EMULATOR_URL=None,
        SPA_CLIENT_ID=None,
        # The scopes the pages need are asked for when the user connects, so opening the
        # calendar right after connecting Google needs no second consent. Writing events is
        # asked for only when the user wants it (the first time they add an event).
        # How accounts are connected; `flask token-vault doctor` says which one a tenant uses.
        TOKEN_VAULT_CONNECT_FLOW="connected_accounts",  # noqa: S106 - a flow name, not a secret
    )
    for key in _FROM_ENVIRONMENT:
        if os.environ.get(key):
            app.config[key] = os.environ[key]
    if config:
        app.config.update(config)
    own_emulator = False
    if not app.config.get("AUTH0_DOMAIN"):
        own_emulator = emulator is None
        emulator = emulator or Emulator().start()
        app.config.update(_emulator_config(emulator))
        app.extensions["example_emulator"] = emulator
        print(
            f" * No AUTH0_DOMAIN set: using the bundled Auth0 emulator at {emulator.url}\n"
            f"   (another app can use it too: AUTH0_DOMAIN={emulator.url} "
            f"AUTH0_CLIENT_ID={emulator.client_id} "
            f"AUTH0_CLIENT_SECRET={emulator.client_secret})"
        )
    app.config.setdefault("TOKEN_VAULT_CONNECTIONS", _connections(app.config))
    vault.init_app(app)
    if app.extensions.get("example_emulator") is not None:
        # The SPA connects Google itself, through the My Account API: switch Connected
        # Accounts on for the connection, as `flask token-vault setup --only connections`
        # does on a real tenant.
        with app.app_context():
            management_client().enable_connected_accounts("google-oauth2")
    _register_routes(app)
    # Imported here: the assistant's modules import this one (its scopes, its form tokens).
    from example_app.assistant import assistant

    app.register_blueprint(assistant)
    if own_emulator:
        # What `flask token-vault setup` does, so either connect flow works on the emulator.
        port = os.environ.get("PORT", "5000")
        result = setup_tenant(app, base_url=f"http://127.0.0.1:{port}")
        print(
            f" * Emulator tenant set up for this app: {len(result.with_status('changed'))} "
            f"changed, {len(result.with_status('unchanged'))} already right"
        )
    return app


def _expires(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"in {minutes} min" if minutes else f"in {int(seconds)} s"


def _register_routes(app: Flask) -> None:
    # The extension shows its errors with the template token_vault/error.html: this app's
    # templates/token_vault/error.html replaces it, in the app's layout (JSON clients get JSON).
    # To handle them in code instead, one @app.errorhandler(TokenVaultError) catches every
    # one of them, whatever its status (401, 403, 429, 502...), not only the 500s.

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {"emulator_url": app.config.get("EMULATOR_URL"), "user": current_user}

    @app.get("/")
    def index() -> str:
        connections: list[dict[str, Any]] = []
        offered_by = None
        if current_user:
            settings = vault.state().settings
            names = list(settings.connections)
            not_offered: list[str] = []
            if settings.connect_flow == "connected_accounts":
                # What the tenant lets this user connect (Connected Accounts on, enabled for
                # the app), in the tenant's order; this app shows those it is configured for.
                offered_by = "Auth0's My Account API"
                try:
                    offered = [c.name for c in my_connectable_connections()]
                except TokenVaultError as exc:
                    offered, offered_by = [], f"Auth0's My Account API ({exc.description})"
                names = [n for n in offered if n in settings.connections]
                not_offered = [n for n in settings.connections if n not in offered]
            connections = [_connection_entry(name) for name in names]
            connections += [
                {
                    "name": name,
                    "label": settings.connections[name].label,
                    "connected": False,
                    "problem": "not offered by the tenant: run flask token-vault setup",
                }
                for name in not_offered
            ]
        return render_template("index.html", connections=connections, offered_by=offered_by)

    @app.get("/calendar")
    @provider_token_required("google-oauth2", scopes=[CAL_READ])
    def calendar() -> str:
        events, status = _next_events()
        can_write = get_provider_token_set("google-oauth2").has_scopes([CAL_WRITE])
        return render_template(
            "calendar.html", events=[_event(e) for e in events], status=status, can_write=can_write
        )

    # Adding an event needs one more Google scope: the first visit sends the user to grant it
    # (the scopes already granted plus this one), then back here. That is the step-up.
    @app.route("/calendar/new", methods=["GET", "POST"])
    @provider_token_required("google-oauth2", scopes=[CAL_READ, CAL_WRITE])
    def new_event() -> Any:
        start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
        start += timedelta(days=1)
        if request.method == "GET":
            return render_template(
                "new_event.html", form_token=_form_token(), start=start.strftime("%Y-%m-%dT%H:%M")
            )
        _check_form_token()
        summary = request.form.get("summary", "").strip()[:200] or "(no title)"
        try:
            start = datetime.fromisoformat(request.form.get("start", "")).replace(
                tzinfo=timezone.utc
            )
        except ValueError:
            abort(400)
        body = {
            "summary": summary,
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
        }
        try:
            added = (
                _calendar_service([CAL_WRITE])
                .events()
                .insert(calendarId="primary", body=body)
                .execute()
            )
        except HttpError as exc:
            flash(f"Google did not add the event: it answered {exc.resp.status}.")
        else:
            flash(f"Added “{summary}”, {_event(added)['when']}.")
        return redirect(url_for("calendar"))

    @app.get("/profile")
    @provider_token_required("windowslive", scopes=[GRAPH_USER_READ])
    def profile() -> str:
        # Microsoft's Graph client, with its tokens from the vault; base_url is Graph's own
        # (or the emulator's fake one). The client is async: this view runs it to the end.
        graph = graph_client(
            "windowslive", [GRAPH_USER_READ], base_url=provider_api_url("windowslive", "v1.0")
        )
        try:
            me = asyncio.run(graph.me.get())
        except APIError as exc:
            return render_template("profile.html", profile=None, status=exc.response_status_code)
        return render_template("profile.html", profile=me, status=200)

    @app.get("/spa")
    def spa() -> str:
        settings = vault.state().settings
        config = {
            "domain": settings.base_url,
            "clientId": app.config.get("SPA_CLIENT_ID"),
            "audience": settings.audience,
            "scope": f"openid profile email offline_access {API_READ}",
            "api": url_for("api_calendar"),
            # Someone signed in to this app has an Auth0 session: the SPA signs in through it
            # silently (prompt=none) instead of asking again.
            "signedIn": bool(current_user),
        }
        ready = bool(config["clientId"] and config["audience"] and settings.api_client_id)
        return render_template("spa.html", config=config, ready=ready)

    # One decorator for both callers: a browser session, or (here) a bearer access token that
    # must carry the API scope read:calendar; the provider token comes from the access-token
    # exchange with the API's Custom API Client.
    @app.get("/api/calendar")
    @provider_token_required("google-oauth2", scopes=[CAL_READ], api_scopes=[API_READ])
    def api_calendar() -> Any:
        events, status = _next_events()
        caller = current_access_token
        return jsonify(
            user=caller.sub if caller else None, status=status, events=[_event(e) for e in events]
        )

    # Browsers ask for /favicon.ico on pages that name no icon (the extension's own pages).
    @app.get("/favicon.ico")
    def favicon() -> Response:
        return send_from_directory(
            app.static_folder or "static", "favicon.svg", mimetype="image/svg+xml", max_age=86400
        )

    @app.get("/sign-in")
    def sign_in() -> Response:
        return redirect(url_for("token_vault.login", next="/"))


def _calendar_service(scopes: list[str]) -> Any:
    """Return Google's Calendar client for the current user, its credentials from the vault.

    The Calendar API's description ships with the library (``static_discovery``), and its
    endpoint is the connection's ``api_base``: Google's own, or the emulator's fake Calendar.
    """
    return build(
        "calendar",
        "v3",
        credentials=VaultCredentials("google-oauth2", scopes=scopes),
        static_discovery=True,
        client_options={"api_endpoint": provider_api_url("google-oauth2", "calendar/v3/")},
    )


def _next_events() -> tuple[list[dict[str, Any]], int]:
    """Return the user's next ten events and Google's status (no events when it refused)."""
    try:
        found = (
            _calendar_service([CAL_READ])
            .events()
            .list(calendarId="primary", maxResults=10, singleEvents=True, orderBy="startTime")
            .execute()
        )
    except HttpError as exc:
        return [], exc.resp.status
    return found.get("items", []), 200


def _form_token() -> str:
    """Return this session's token for the app's own forms (a cross-site post cannot know it)."""
    token = session.get("example_form_token")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["example_form_token"] = token
    return token


def _check_form_token() -> None:
    """Refuse a form post that does not carry this session's form token."""
    sent = request.form.get("form_token", "")
    if not hmac.compare_digest(sent.encode(), _form_token().encode()):
        abort(400)


def _connection_entry(name: str) -> dict[str, Any]:
    """Describe one connection for the home page: connected (with its token) or how to connect."""
    conn = vault.state().settings.connections[name]
    entry: dict[str, Any] = {"name": name, "label": conn.label, "connected": False}
    try:
        token = get_provider_token_set(name)
    except AccountNotConnected:
        entry["connect_url"] = connect_url(name, conn.scopes, next="/")
    except ReconsentRequired:
        entry["connect_url"] = connect_url(name, conn.scopes, next="/")
        entry["problem"] = "needs to be connected again"
    except TokenVaultError as exc:
        entry["problem"] = exc.description
    else:
        entry.update(
            connected=True,
            scopes=sorted(token.scopes or ()),
            expires=_expires(token.expires_in()),
        )
    return entry


def _event(event: dict[str, Any]) -> dict[str, str]:
    start = event.get("start", {})
    raw = start.get("dateTime") or start.get("date") or ""
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        label = when.astimezone(timezone.utc).strftime("%a %d %b, %H:%M UTC")
    except ValueError:
        label = raw
    return {"summary": event.get("summary", "(no title)"), "when": label}
