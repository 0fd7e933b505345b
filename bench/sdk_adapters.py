"""What each provider SDK adapter adds to a warm SDK call, against the bare token path.

For each adapter, two arms run in the same request context (session loaded, cache warm, the
request's memo holding the token), interleaved in rounds:

- **bare**: what an app writes without the adapter: ``get_provider_token_set(...)`` and the
  token put where the SDK wants it (an ``Authorization`` header, an Azure ``AccessToken``, a
  Slack client's ``token``);
- **adapter**: the adapter's entry point the SDK calls on each API call: google-auth's
  ``before_request``, Azure's ``get_token``, httpx's auth flow, PyGithub's ``authentication``,
  and for Slack a whole ``api_call`` with the sending stubbed out in both arms.

Nothing reaches a provider, so the difference is the adapter's own cost per call (target:
<= 2 µs). The adapters are made once, as a view makes them; all use the bench's one
connection (each is connection-agnostic). Run alone: ``.venv/bin/python -m bench.sdk_adapters``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
from azure.core.credentials import AccessToken
from flask import Flask, session
from slack_sdk import WebClient
from slack_sdk.web import SlackResponse

from bench.common import CAL_READ, CONNECTION, make_app, table
from flask_token_vault import get_provider_token_set
from flask_token_vault.providers.github_auth import VaultGithubAuth
from flask_token_vault.providers.google_auth import VaultCredentials
from flask_token_vault.providers.httpx_auth import VaultAuth
from flask_token_vault.providers.microsoft import VaultTokenCredential
from flask_token_vault.providers.slack_client import VaultWebClient
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as

ROUNDS = 15
PER_ROUND = 5000
TARGET_US = 2.0
SCOPES = [CAL_READ]
URL = "https://www.googleapis.com/calendar/v3/users/me/calendarList"


def _unsent(client: WebClient, api_url: str, req_args: dict[str, Any]) -> SlackResponse:
    """Answer a Slack call without sending it: the same for both Slack arms."""
    return SlackResponse(
        client=client,
        http_verb="POST",
        api_url=api_url,
        req_args=req_args,
        data={"ok": True},
        headers={},
        status_code=200,
    )


class _UnsentWebClient(WebClient):
    def _sync_send(self, api_url: str, req_args: dict[str, Any]) -> SlackResponse:
        return _unsent(self, api_url, req_args)


class _UnsentVaultWebClient(VaultWebClient):
    def _sync_send(self, api_url: str, req_args: dict[str, Any]) -> SlackResponse:
        return _unsent(self, api_url, req_args)


def _bare_token() -> str:
    return get_provider_token_set(CONNECTION, SCOPES).access_token


def arms() -> dict[str, tuple[Callable[[], object], Callable[[], object]]]:
    """Return, per adapter, its bare arm and its adapter arm (made in a request context)."""
    headers: dict[str, str] = {}
    google = VaultCredentials(CONNECTION, SCOPES)
    microsoft = VaultTokenCredential(CONNECTION, SCOPES)
    request = httpx.Request("GET", URL)
    auth = VaultAuth(CONNECTION, SCOPES)
    github = VaultGithubAuth(CONNECTION, SCOPES)
    slack_plain = _UnsentWebClient()
    slack = _UnsentVaultWebClient(CONNECTION, SCOPES)

    def bare_header() -> object:
        headers["Authorization"] = "Bearer " + _bare_token()
        return headers

    def bare_access_token() -> object:
        found = get_provider_token_set(CONNECTION, SCOPES)
        return AccessToken(found.access_token, int(found.expires_at))

    def bare_request() -> object:
        request.headers["Authorization"] = "Bearer " + _bare_token()
        return request

    def bare_slack() -> object:
        slack_plain.token = _bare_token()
        return slack_plain.api_call("auth.test")

    def google_call(credentials: VaultCredentials) -> object:
        credentials.before_request(None, "GET", URL, headers)  # type: ignore[no-untyped-call]
        return headers

    def github_header() -> object:
        # What PyGithub does per request (``Auth.authentication`` in PyGithub 2).
        headers["Authorization"] = f"{github.token_type} {github.token}"
        return headers

    return {
        "google-auth": (bare_header, lambda: google_call(google)),
        "azure (msgraph)": (
            bare_access_token,
            lambda: microsoft.get_token("https://graph.microsoft.com/.default"),
        ),
        "httpx": (bare_request, lambda: next(auth.sync_auth_flow(request))),
        "PyGithub": (bare_header, github_header),
        "slack_sdk (api_call)": (bare_slack, lambda: slack.api_call("auth.test")),
    }


def _per_call_us(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(PER_ROUND):
        call()
    return (time.perf_counter() - start) / PER_ROUND * 1e6


def measure(app: Flask, emu: Emulator) -> dict[str, dict[str, Any]]:
    """Interleave bare and adapter arms per adapter; return medians and differences."""
    client = app.test_client()
    login_as(client, emu, "sdk@example.com", {CONNECTION: [CAL_READ]})
    assert client.get("/decorated").status_code == 200  # warm the cache
    cookie = client.get_cookie("session")
    assert cookie is not None
    environ = {"HTTP_COOKIE": f"session={cookie.value}"}
    before = emu.exchange_count()
    out: dict[str, dict[str, Any]] = {}
    with app.test_request_context("/decorated", environ_base=environ):
        session.get("_")
        for name, (bare, adapter) in arms().items():
            adapter()  # the adapter's first call (google-auth's first refresh) is not a warm one
            bares: list[float] = []
            ours: list[float] = []
            for _ in range(ROUNDS):
                bares.append(_per_call_us(bare))
                ours.append(_per_call_us(adapter))
            out[name] = {
                "bare_us": statistics.median(bares),
                "adapter_us": statistics.median(ours),
                "added_us": statistics.median(o - b for b, o in zip(bares, ours, strict=True)),
                "target_us": TARGET_US,
            }
    assert emu.exchange_count() == before, "a warm cache must not exchange"
    return out


def run() -> dict[str, dict[str, Any]]:
    """Measure every adapter with the in-process cache."""
    with Emulator() as emu:
        return measure(make_app(emu), emu)


def rows(results: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Return one row per adapter."""
    return [
        [
            name,
            f"{r['bare_us']:.2f}",
            f"{r['adapter_us']:.2f}",
            f"{r['added_us']:+.2f}",
            "met" if r["added_us"] <= TARGET_US else "MISSED",
        ]
        for name, r in results.items()
    ]


def report(results: dict[str, dict[str, Any]]) -> str:
    """Return the printed summary."""
    head = (
        f"(g) a warm SDK call through each adapter against the bare token path (median of "
        f"{ROUNDS} interleaved rounds x {PER_ROUND}; target: adds <= {TARGET_US:g} µs)"
    )
    return head + "\n" + table(["adapter", "bare µs", "adapter µs", "added µs", ""], rows(results))


if __name__ == "__main__":
    print(report(run()))
