"""Session cookie size after signing in and connecting 1, 3 and 5 accounts.

Everything goes through the real routes: ``/auth/connect/<connection>`` sends the browser to the
emulator's ``/authorize`` (auto-login answers at once), the emulator redirects to
``/auth/callback`` and the callback sets the session cookie, whose ``Set-Cookie`` header is
measured. The emulator has ``google-oauth2`` and ``windowslive``; three more Token Vault
connections are added to its tenant for five. Then each of the five is used once, to show the
accounts are really connected although the cookie holds a single (encrypted) Auth0 refresh token.
Run alone: ``.venv/bin/python -m bench.cookie_size``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Flask, jsonify
from flask.testing import FlaskClient

from bench.common import emulator_config
from flask_token_vault import TokenVault, get_provider_token
from flask_token_vault_emulator import Emulator

EMAIL = "cookie.size@example.com"
EXTRA = ("github", "slack", "salesforce")
CONNECTIONS = ("google-oauth2", "windowslive", *EXTRA)
MARKS = (1, 3, 5)
BROWSER_LIMIT = 4096
TARGET = 1024


def make_app(emu: Emulator) -> Flask:
    """Build an app offering the five connections, with one route using each token."""
    app = Flask(__name__)
    app.config.update(
        emulator_config(emu),
        TOKEN_VAULT_CONNECTIONS={
            "google-oauth2": {"scopes": ["openid", "email", "profile"]},
            "windowslive": {"scopes": ["User.Read"]},
            **{name: {"scopes": ["read"]} for name in EXTRA},
        },
    )
    TokenVault(app)

    @app.get("/token/<connection>")
    def token(connection: str) -> Any:
        return jsonify(length=len(get_provider_token(connection)))

    return app


def connect(client: FlaskClient, connection: str) -> str:
    """Connect one account through the real routes; return the callback's Set-Cookie header."""
    start = client.get(f"/auth/connect/{connection}")
    assert start.status_code == 302, start.get_data(as_text=True)
    answer = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    callback = client.get(f"{back.path}?{back.query}")
    assert callback.status_code == 302, callback.get_data(as_text=True)
    cookies = callback.headers.getlist("Set-Cookie")
    session = [c for c in cookies if c.startswith("session=")]
    assert len(session) == 1, cookies
    return session[0]


def run() -> dict[str, Any]:
    """Connect five accounts one after another, measuring the cookie at 1, 3 and 5."""
    rows: list[dict[str, Any]] = []
    with Emulator(auto_login=EMAIL) as emu:
        vault_on = {"federated_connections_access_tokens": {"active": True}}
        for name in EXTRA:
            emu.add_connection(name, "oauth2", options=vault_on, default_scopes=["read"])
        app = make_app(emu)
        client = app.test_client()
        for count, connection in enumerate(CONNECTIONS, start=1):
            header = connect(client, connection)
            if count in MARKS:
                value = header.split(";", 1)[0].split("=", 1)[1]
                rows.append(
                    {
                        "accounts": count,
                        "value_bytes": len(value.encode()),
                        "header_bytes": len(header.encode()),
                    }
                )
        sub = emu.user_id_for(EMAIL)
        before = emu.exchange_count(sub)
        for connection in CONNECTIONS:
            answer = client.get(f"/token/{connection}")
            assert answer.status_code == 200, (connection, answer.get_data(as_text=True))
        used = emu.exchange_count(sub) - before
        connected = sorted({t["connection"] for t in _tokensets(emu, sub)})
    return {"rows": rows, "connected": connected, "exchanges_after": used}


def _tokensets(emu: Emulator, sub: str) -> list[dict[str, Any]]:
    return [t.to_dict() for t in emu.state.tokensets_for(sub)]


def report(results: dict[str, Any]) -> str:
    """Return the printed summary."""
    lines = [
        f"(d) session cookie after sign-in through the real callback (target < {TARGET} B "
        f"at 5 accounts; browsers cap a cookie at {BROWSER_LIMIT} B)"
    ]
    lines += [
        f"  {r['accounts']} connected account(s): cookie value {r['value_bytes']} B, "
        f"Set-Cookie header {r['header_bytes']} B"
        for r in results["rows"]
    ]
    lines.append(
        f"  accounts in the vault: {', '.join(results['connected'])}; "
        f"one token fetched for each: {results['exchanges_after']} exchanges"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run()))
