"""The test app with views that call each provider through its own SDK, with the vault's tokens.

Google through google-api-python-client, Microsoft Graph through msgraph-sdk, GitHub through
PyGithub and Slack through slack_sdk: each against the emulator's fake of that API.
"""

from __future__ import annotations

import asyncio
from typing import Any

from flask import Flask, jsonify
from github import BadCredentialsException, Github
from googleapiclient.discovery import build
from msgraph.graph_service_client import GraphServiceClient

from flask_token_vault import provider_token_required
from flask_token_vault.providers.github_auth import VaultGithubAuth
from flask_token_vault.providers.google_auth import VaultCredentials
from flask_token_vault.providers.microsoft import AsyncVaultTokenCredential, graph_client
from flask_token_vault.providers.slack_async import AsyncVaultWebClient
from flask_token_vault.providers.slack_client import VaultWebClient
from flask_token_vault_emulator import Emulator
from tests.helpers.apps import CAL_READ, CAL_WRITE, make_app
from tests.helpers.sdk import VAULT_ON

SLACK = "sign-in-with-slack"
#: What alice has connected, for each app, when she signs in.
GOOGLE_GRANTS = {"google-oauth2": [CAL_READ]}
GRAPH_GRANTS = {"windowslive": ["User.Read"]}
GITHUB_GRANTS = {"github": ["read:user"]}
SLACK_GRANTS = {SLACK: ["channels:read", "users:read"]}


def calendar_service(emu: Emulator, credentials: VaultCredentials) -> Any:
    """Build Google's Calendar client as its quick start does, pointed at the emulator."""
    return build(
        "calendar",
        "v3",
        credentials=credentials,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": emu.google_api_base + "/calendar/v3/"},
    )


def google_app(emu: Emulator, **config: Any) -> Flask:
    """The test app with views that call Google through ``googleapiclient``."""
    app = make_app(emu, **config)

    @app.get("/sdk/calendars")
    @provider_token_required("google-oauth2", scopes=[CAL_READ])
    def calendars() -> Any:
        service = calendar_service(emu, VaultCredentials("google-oauth2", scopes=[CAL_READ]))
        found = service.calendarList().list().execute()
        return jsonify(ids=[item["id"] for item in found["items"]])

    @app.get("/sdk/write")
    @provider_token_required("google-oauth2", scopes=[CAL_READ])
    def write() -> Any:
        # The view asks for more than its decorator: the SDK call itself finds the gap.
        creds = VaultCredentials("google-oauth2", scopes=[CAL_READ, CAL_WRITE])
        calendar_service(emu, creds).calendarList().list().execute()
        return jsonify(ok=True)

    return app


def graph_app(emu: Emulator) -> Flask:
    """The test app with views that call Graph through Microsoft's SDK.

    Calendars.Read is declared (a connect link asks only for scopes the app declares) but the
    user has not granted it.
    """
    connections = {
        "google-oauth2": {"scopes": ["openid"], "api_base": emu.google_api_base},
        "windowslive": {"scopes": ["User.Read", "Calendars.Read"], "api_base": emu.graph_api_base},
    }
    app = make_app(emu, TOKEN_VAULT_CONNECTIONS=connections)
    base = emu.graph_api_base + "/v1.0"

    @app.get("/sdk/me")
    @provider_token_required("windowslive", scopes=["User.Read"])
    def sdk_me() -> Any:
        graph = graph_client("windowslive", ["User.Read"], base_url=base)
        user = asyncio.run(graph.me.get())
        assert user is not None
        return jsonify(mail=user.mail, name=user.display_name)

    @app.get("/sdk/me-plain")
    @provider_token_required("windowslive", scopes=["User.Read"])
    async def me_plain() -> Any:
        # Microsoft's own constructor, as in its quick start, with the vault's credential.
        graph = GraphServiceClient(
            credentials=AsyncVaultTokenCredential("windowslive"), scopes=["User.Read"]
        )
        graph.request_adapter.base_url = base
        user = await graph.me.get()
        assert user is not None
        return jsonify(mail=user.mail)

    @app.get("/sdk/events")
    @provider_token_required("windowslive", scopes=["User.Read"])
    def sdk_events() -> Any:
        graph = graph_client("windowslive", ["Calendars.Read"], base_url=base)
        asyncio.run(graph.me.events.get())
        return jsonify(ok=True)

    return app


def github(emu: Emulator, auth: VaultGithubAuth) -> Github:
    """PyGithub's client as its quick start makes it, pointed at the emulator."""
    return Github(auth=auth, base_url=emu.github_api_base, retry=None)


def github_app(emu: Emulator) -> Flask:
    """The test app with views that call GitHub through PyGithub."""
    emu.add_connection("github", "github", VAULT_ON)
    connections = {
        "google-oauth2": {"scopes": ["openid"], "api_base": emu.google_api_base},
        "windowslive": {"scopes": ["User.Read"], "api_base": emu.graph_api_base},
        "github": {"scopes": ["read:user", "user:email"]},
    }
    app = make_app(emu, TOKEN_VAULT_CONNECTIONS=connections)

    @app.get("/sdk/user")
    @provider_token_required("github", scopes=["read:user"])
    def user() -> Any:
        auth = VaultGithubAuth("github", ["read:user"])
        client = github(emu, auth)  # one client: a retry sends the renewed token through it
        return jsonify(login=auth.call(lambda: client.get_user().login))

    @app.get("/sdk/user-unretried")
    @provider_token_required("github", scopes=["read:user"])
    def user_unretried() -> Any:
        auth = VaultGithubAuth("github", ["read:user"])
        try:
            return jsonify(login=github(emu, auth).get_user().login)
        except BadCredentialsException:
            return jsonify(dropped=auth.reject_sent()), 502

    @app.get("/sdk/emails")
    @provider_token_required("github", scopes=["read:user"])
    def emails() -> Any:
        # The view asks for more than its decorator: the SDK call itself finds the gap.
        auth = VaultGithubAuth("github", ["user:email"])
        return jsonify(emails=[e.email for e in github(emu, auth).get_user().get_emails()])

    return app


def add_slack(emu: Emulator) -> None:
    """Add Auth0's Sign in with Slack connection, Token Vault on, to the emulator's tenant."""
    emu.add_connection(SLACK, "oauth2", VAULT_ON)


def slack_app(emu: Emulator, **config: Any) -> Flask:
    """The test app with views that call Slack through ``slack_sdk``."""
    add_slack(emu)
    connections = {
        "google-oauth2": {"scopes": ["openid"], "api_base": emu.google_api_base},
        "windowslive": {"scopes": ["User.Read"], "api_base": emu.graph_api_base},
        SLACK: {"scopes": ["channels:read", "chat:write"]},
    }
    app = make_app(emu, TOKEN_VAULT_CONNECTIONS=connections, **config)

    @app.get("/sdk/channels")
    @provider_token_required(SLACK, scopes=["channels:read"])
    def channels() -> Any:
        client = VaultWebClient(SLACK, ["channels:read"], base_url=emu.slack_api_base)
        names = [
            channel["name"]
            for page in client.conversations_list(limit=2)  # Slack's cursor paging
            for channel in page["channels"]
        ]
        return jsonify(names=names, user=client.auth_test()["user"])

    @app.get("/sdk/async-channels")
    @provider_token_required(SLACK, scopes=["channels:read"])
    async def async_channels() -> Any:
        client = AsyncVaultWebClient(SLACK, ["channels:read"], base_url=emu.slack_api_base)
        found = await client.conversations_list()
        return jsonify(names=[channel["name"] for channel in found["channels"]])

    @app.post("/sdk/post")
    @provider_token_required(SLACK, scopes=["channels:read"])
    def post() -> Any:
        # The view asks for more than its decorator: the SDK call itself finds the gap.
        client = VaultWebClient(SLACK, ["chat:write"], base_url=emu.slack_api_base)
        client.chat_postMessage(channel="C1", text="hello")
        return jsonify(ok=True)

    return app
