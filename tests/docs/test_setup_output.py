"""What the docs show ``flask token-vault setup`` printing is what it prints.

The quick start's app (docs/_samples/quickstart_app.py) is set up on a bare emulator tenant with
the docs' command; the listing in docs/setup.rst and the summary in docs/quickstart.rst must be
that output, with the emulator at the docs' address (and a connection id being any id).
"""

from __future__ import annotations

import re
import runpy
import secrets
import textwrap

import pytest
from flask import Flask

from flask_token_vault.admin.cli import cli
from flask_token_vault_emulator import Emulator
from tests.helpers import ROOT

DOCS = ROOT / "docs"
SAMPLE = DOCS / "_samples" / "quickstart_app.py"
COMMAND = "flask --app app token-vault setup --base-url http://127.0.0.1:5000"
DOCS_EMULATOR = "http://127.0.0.1:8100"
CONNECTION_ID = re.compile(r"\bcon_[A-Za-z0-9]+")


def comparable(text: str) -> list[str]:
    """Return the lines without trailing spaces, any connection id written as ``con_ID``."""
    return [CONNECTION_ID.sub("con_ID", line.rstrip()) for line in text.strip().splitlines()]


def console_after(page: str, command: str) -> list[str]:
    """Return the output lines a console block of ``page`` shows after ``$ command``."""
    text = (DOCS / page).read_text(encoding="utf-8")
    found = re.search(rf"^( +)\$ {re.escape(command)}\n((?:\1.*\n|\n)+)", text, re.MULTILINE)
    assert found, f"{page} shows no `$ {command}`"
    lines = textwrap.dedent(found.group(2)).splitlines()
    shown = []
    for line in lines:
        if line.startswith("$ "):
            break
        shown.append(line)
    return comparable("\n".join(shown))


@pytest.fixture
def quickstart_setup(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run the docs' setup command for the quick start's app on a bare tenant; its output."""
    emu.bare_tenant()
    for key, value in {**emu.app_config(), "SECRET_KEY": secrets.token_urlsafe(32)}.items():
        monkeypatch.setenv(key, value)
    namespace = runpy.run_path(str(SAMPLE))
    app = namespace.get("app") or namespace["create_app"]()
    assert isinstance(app, Flask)
    args = COMMAND.split("token-vault ", 1)[1].split()
    result = app.test_cli_runner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return comparable(result.output.replace(emu.url, DOCS_EMULATOR))


def test_the_setup_guide_shows_what_setup_prints(quickstart_setup: list[str]) -> None:
    assert console_after("setup.rst", COMMAND) == quickstart_setup


def test_the_quickstart_shows_setups_summary_line(quickstart_setup: list[str]) -> None:
    shown = console_after("quickstart.rst", COMMAND)
    assert shown[-1] == quickstart_setup[-1]
    assert re.fullmatch(r"\d+ changed, \d+ unchanged, \d+ skipped, \d+ not made\.", shown[-1])
