"""The guides' instructions work as written: install lines, the background-jobs task and set-up."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from flask_token_vault import TokenVault
from flask_token_vault_emulator import Emulator
from tests.helpers import ROOT
from tests.helpers.apps import CAL_READ, make_app
from tests.helpers.keys import keyed_config, register_client_key, rsa_key_pem

DOCS = ROOT / "docs"
SAMPLE = DOCS / "_samples" / "quickstart_app.py"
JOBS_GUIDE = (DOCS / "guides" / "background-jobs.rst").read_text(encoding="utf-8")
#: ``pip install`` of the package by its name on PyPI, where it is not.
FROM_PYPI = re.compile(r"pip install\s+['\"]?flask-token-vault\b", re.IGNORECASE)
#: Pages that still say so, until they are rewritten (the troubleshooting table, the testing
#: guide's quick start).
NOT_YET = {"troubleshooting.rst", "guides/testing.rst"}


def code_blocks(text: str, language: str) -> list[str]:
    """Return the reStructuredText code blocks of ``language`` in ``text``, dedented."""
    found = re.findall(
        rf"^( *)\.\. code-block:: {language}\n\n((?:\1   .*\n|\n)+)", text, re.MULTILINE
    )
    return [textwrap.dedent(body).strip() + "\n" for _, body in found]


def user_pages() -> Iterator[tuple[str, str]]:
    """Yield the README, the docs pages and the example app's modules, each by its name."""
    yield "README.md", (ROOT / "README.md").read_text(encoding="utf-8")
    for path in sorted(DOCS.rglob("*")):
        if path.suffix in (".rst", ".md") and "_build" not in path.parts:
            yield path.relative_to(DOCS).as_posix(), path.read_text(encoding="utf-8")
    for path in sorted((ROOT / "example_app").glob("*.py")):
        yield path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8")


def test_no_page_installs_the_package_from_pypi() -> None:
    """The README says it is not on PyPI: every install line installs a checkout."""
    offending = [
        name for name, text in user_pages() if name not in NOT_YET and FROM_PYPI.search(text)
    ]
    assert offending == []


# -- background jobs -----------------------------------------------------------------------------


@pytest.fixture
def myapp(emu: Emulator) -> Iterator[types.ModuleType]:
    """The ``myapp`` module the guide imports: an app on the emulator, with a client key."""
    credential = register_client_key(emu)
    emu.set_privileged_access(credential, {"google-oauth2": [CAL_READ, "openid"]})
    module = types.ModuleType("myapp")
    module.vault = TokenVault()  # type: ignore[attr-defined]
    module.create_app = lambda: make_app(emu, **keyed_config())  # type: ignore[attr-defined]
    sys.modules["myapp"] = module
    yield module
    del sys.modules["myapp"]


def test_the_background_jobs_task_runs_as_written(emu: Emulator, myapp: types.ModuleType) -> None:
    (task,) = [
        block for block in code_blocks(JOBS_GUIDE, "python") if "def refresh_calendar" in block
    ]
    emu.connect_account("ann@example.com", "google-oauth2", [CAL_READ])
    namespace: dict[str, object] = {}
    exec(compile(task, "background-jobs.rst", "exec"), namespace)  # noqa: S102 - the guide's own code
    refresh_calendar = namespace["refresh_calendar"]
    assert callable(refresh_calendar)
    assert refresh_calendar(emu.user_id_for("ann@example.com")) > 0
    # It called the connection's API (the emulator's Google), not googleapis.com.
    assert emu.stats()["provider_calls"]["google"] == {"200": 1}


def test_the_background_jobs_key_step_keeps_the_quick_start_starting(tmp_path: Path) -> None:
    """Step 1 removes AUTH0_CLIENT_SECRET: the quick start, changed as it says, still starts."""
    (lines,) = [block for block in code_blocks(JOBS_GUIDE, "python") if "os.environ.get(" in block]
    sample = SAMPLE.read_text(encoding="utf-8")
    secret_line = re.search(r"^( *)AUTH0_CLIENT_SECRET=.*\n", sample, re.MULTILINE)
    if secret_line is not None:  # the quick start reads the secret itself: apply the guide
        indented = textwrap.indent(lines, secret_line.group(1))
        sample = sample.replace(secret_line.group(0), indented)
    (tmp_path / "app.py").write_text(sample, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH0_", "FLASK_"))}
    env.update(
        AUTH0_DOMAIN="http://127.0.0.1:8100",
        AUTH0_CLIENT_ID="emulator-client-id",
        AUTH0_CLIENT_PRIVATE_KEY=rsa_key_pem(),
        SECRET_KEY="a-long-random-secret-key-for-this-test-only",
        PYTHONPATH=str(ROOT),
    )
    started = subprocess.run(
        [sys.executable, "-c", "import app"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert started.returncode == 0, started.stderr
