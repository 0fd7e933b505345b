"""The emulator's pages and banner say what is wrong and what to run, true to the tenant's shape."""

from __future__ import annotations

import html
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from flask_token_vault.admin.cli import cli
from flask_token_vault_emulator import Emulator
from flask_token_vault_emulator.__main__ import banner
from tests.helpers import ROOT, TIMEOUT
from tests.helpers.apps import CAL_READ, make_app
from tests.helpers.oauth import (
    REDIRECT_URI,
    authorize_request,
    bearer,
    my_account_access_token,
    pkce_pair,
)
from tests.helpers.processes import environment_without, run_to_end

QUICK_START = ROOT / "docs" / "_samples" / "quickstart_app.py"


def page_text(answer: requests.Response, element: str) -> str:
    """Return the text of the page element with this id (the emulator's pages are small)."""
    found = re.search(rf'id="{element}"[^>]*>(.*?)</', answer.text, re.DOTALL)
    assert found, answer.text
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


# -- callback URL mismatch -----------------------------------------------------------------------


def test_a_bare_tenant_names_the_setup_line_for_the_callback_url_asked_for(emu: Emulator) -> None:
    """setup registered 127.0.0.1:5000; the browser came from localhost:5000."""
    emu.bare_tenant()
    app = make_app(emu, TOKEN_VAULT_CONNECT_FLOW="connected_accounts")
    setup = app.test_cli_runner().invoke(cli, ["setup", "--base-url", "http://127.0.0.1:5000"])
    assert setup.exit_code == 0, setup.output
    asked = "http://localhost:5000/auth/callback"

    refused = authorize_request(emu, redirect_uri=asked)
    assert refused.status_code == 400
    message = page_text(refused, "message")
    assert "always allowed" not in message
    assert "loopback URLs included" in message
    assert asked in message and "http://127.0.0.1:5000/auth/callback" in message
    fix = page_text(refused, "fix")
    assert fix == "flask token-vault setup --base-url http://localhost:5000"

    # The line, run as printed, lets the same sign-in through.
    words = shlex.split(fix)
    assert words[:2] == ["flask", "token-vault"]
    rerun = app.test_cli_runner().invoke(cli, words[2:])
    assert rerun.exit_code == 0, rerun.output
    assert authorize_request(emu, redirect_uri=asked).status_code == 200


@pytest.mark.parametrize(
    ("asked", "base"),
    [
        ("https://app.example.com/auth/connect/callback", "https://app.example.com"),
        ("https://example.com/shop/login/callback", "https://example.com/shop"),
    ],
)
def test_the_set_up_tenant_says_which_urls_pass_unlisted(
    emu: Emulator, asked: str, base: str
) -> None:
    """A URL prefix or a mount point is kept out of, or in, the base URL as setup wants it."""
    refused = authorize_request(emu, redirect_uri=asked)
    assert refused.status_code == 400
    message = page_text(refused, "message")
    assert "any http://127.0.0.1 or http://localhost URL through unlisted" in message
    assert page_text(refused, "fix") == f"flask token-vault setup --base-url {base}"


def test_a_callback_url_not_shaped_like_the_extensions_gets_no_setup_line(emu: Emulator) -> None:
    refused = authorize_request(emu, redirect_uri="https://spa.example.com/")
    assert refused.status_code == 400
    assert "Allowed Callback URLs" in page_text(refused, "message")
    assert 'id="fix"' not in refused.text


# -- the start-up banner ---------------------------------------------------------------------------


def exported_environment(lines: list[str]) -> dict[str, str]:
    """Paste ``lines`` into a fresh bash (this virtualenv first on PATH); return what it exports."""
    env = environment_without()
    env.pop("SECRET_KEY", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    script = "\n".join([*lines, "env -0"])
    result = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, timeout=60, check=True
    )
    pairs = (item.partition("=") for item in result.stdout.decode().split("\0") if item)
    return {name: value for name, _, value in pairs}


def test_the_banner_exports_are_enough_to_start_the_quick_start_app(emu: Emulator) -> None:
    printed = banner(emu)
    exports = [line.strip() for line in printed.splitlines() if line.strip().startswith("export ")]
    environment = exported_environment(exports)
    key = environment["SECRET_KEY"]
    assert len(key) >= 32 and key not in printed  # made by the shell, never printed
    assert exported_environment(exports)["SECRET_KEY"] != key  # a new one each time
    assert environment["AUTH0_DOMAIN"] == emu.url

    # The quick start's app.py starts with nothing but the pasted lines.
    started = run_to_end(
        [sys.executable, "-c", "import runpy, sys; runpy.run_path(sys.argv[1])", str(QUICK_START)],
        cwd=ROOT,  # this checkout's package, as in the other tests
        env=environment,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr


# -- the consent page ------------------------------------------------------------------------------


def definitions(answer: requests.Response) -> dict[str, str]:
    """Return the page's ``<dt>`` labels with the text of the ``<dd>`` that follows each."""
    pairs = re.findall(r"<dt>(.*?)</dt>\s*<dd[^>]*>(.*?)</dd>", answer.text, re.DOTALL)
    return {
        label.strip(): " ".join(html.unescape(re.sub(r"<[^>]+>", " ", value)).split())
        for label, value in pairs
    }


def test_the_connected_accounts_page_names_the_provider_and_lists_the_scopes(
    emu: Emulator,
) -> None:
    google = emu.state.connections["google-oauth2"]
    google.connected_accounts = {"active": True}
    token = my_account_access_token(emu, "ivy@example.com", "create:me:connected_accounts")
    started = requests.post(
        emu.url + "/me/v1/connected-accounts/connect",
        json={
            "connection": "google-oauth2",
            "redirect_uri": REDIRECT_URI,
            "state": "state-1",
            "code_challenge": pkce_pair()[1],
            "code_challenge_method": "S256",
            "scopes": [CAL_READ],
        },
        headers=bearer(token),
        timeout=TIMEOUT,
    )
    assert started.status_code == 201, started.text
    ticket = started.json()["connect_params"]["ticket"]
    page = requests.get(started.json()["connect_uri"], params={"ticket": ticket}, timeout=TIMEOUT)

    assert page_text(page, "page-title") == "Connect Google"
    rows = definitions(page)
    assert rows["Connection"] == "Google (google-oauth2)"
    assert rows["Google scopes"] == f"openid email profile {CAL_READ}"
    assert all(rows.values()), rows  # no row left empty
    assert "Google account" in page.text


def test_the_sign_in_page_through_a_connection_names_the_provider(emu: Emulator) -> None:
    page = authorize_request(emu, connection="windowslive", connection_scope="Calendars.Read")
    rows = definitions(page)
    assert rows["Connection"] == "Microsoft (windowslive)"
    assert rows["Scopes"] == "openid profile email offline_access"
    assert rows["Microsoft scopes"].endswith("User.Read Calendars.Read")
    plain = definitions(authorize_request(emu))
    assert plain == {"Connection": "none (email sign-in)", "Scopes": plain["Scopes"]}


# -- what a browser asks for besides the page --------------------------------------------------


def test_the_emulators_pages_cause_no_favicon_404(emu: Emulator) -> None:
    pages = [
        authorize_request(emu),  # the sign-in page
        authorize_request(emu, client_id="nobody"),  # an error page
    ]
    for page in pages:
        assert '<link rel="icon" href="data:,">' in page.text, page.text
    # A JSON document opened in a browser tab: the browser asks for /favicon.ico.
    icon = requests.get(emu.url + "/favicon.ico", timeout=TIMEOUT)
    assert icon.status_code == 204
