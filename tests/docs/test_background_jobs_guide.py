"""The background-jobs guide runs offline as written: its commands, against the emulator.

The "offline run" block is run by bash, command by command as the guide prints them, next to the
guide's ``jobs.py`` (``docs/_samples/background_job.py``); only the emulator's address is the
test's own (the guide's port 8100 may be taken).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from flask_token_vault_emulator import Emulator
from tests.helpers import ROOT
from tests.helpers.processes import run_to_end

GUIDE = ROOT / "docs" / "guides" / "background-jobs.rst"
SAMPLE = ROOT / "docs" / "_samples" / "background_job.py"
GUIDE_EMULATOR = "http://127.0.0.1:8100"


def console_block(caption: str) -> str:
    """Return the commands of the guide's console block with this caption, as a shell script.

    A line starting with ``$ `` starts a command; the lines under it continue it (after a
    backslash, or inside quotes) as the shell reads them.
    """
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index(f"   :caption: {caption}\n")
    lines: list[str] = []
    for line in text[start:].splitlines()[1:]:
        if line and not line.startswith("   "):
            break
        stripped = line[3:]
        if stripped.startswith("$ "):
            lines.append(stripped[2:])
        elif lines and stripped.strip():
            lines.append(stripped)
    return "\n".join(lines)


def test_the_guide_shows_the_reason_and_the_allowlist() -> None:
    script = console_block("offline run")
    assert "worker setup --ip 127.0.0.1" in script
    text = GUIDE.read_text(encoding="utf-8")
    assert "literalinclude:: ../_samples/background_job.py" in text
    assert "audit_context=AUDIT_CONTEXT" in SAMPLE.read_text(encoding="utf-8")
    assert re.search(r"--ip 203\.0\.113\.0/24", text)


def test_the_offline_run_prints_the_users_events(emu: Emulator, tmp_path: Path) -> None:
    if not shutil.which("openssl"):
        message = "the guide generates its key with openssl, which is not on PATH"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)  # CI checks everything
        pytest.skip(message + " (apt-get install openssl)")
    shutil.copy(SAMPLE, tmp_path / "jobs.py")
    script = console_block("offline run").replace(GUIDE_EMULATOR, emu.url)
    assert GUIDE_EMULATOR not in script
    bin_dir = str(Path(sys.executable).parent)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AUTH0_", "TOKEN_VAULT_", "FLASK_")) and key != "SECRET_KEY"
    }
    # The guide's `python` and `flask` are this environment's; the package is this checkout.
    env.update(PATH=bin_dir + os.pathsep + env.get("PATH", ""), PYTHONPATH=str(ROOT))
    result = run_to_end(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # What the job printed: the titles, after worker setup's last line.
    events = result.stdout.split("audit_context=...).\n", 1)[1].splitlines()
    assert events and all(events), result.stdout
    (access,) = emu.privileged_access_log()
    assert access.audit_context == "nightly calendar sync"
    assert access.user_id == emu.user_id_for("alice@example.com")
    assert "BEGIN" not in result.stdout + result.stderr  # the key never shows
