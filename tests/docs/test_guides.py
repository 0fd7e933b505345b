"""The guides' instructions work as written: install lines, the background-jobs task and set-up."""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import ROOT
from tests.helpers.keys import rsa_key_pem
from tests.helpers.processes import environment_without, run_to_end

DOCS = ROOT / "docs"
SAMPLE = DOCS / "_samples" / "quickstart_app.py"
JOBS_GUIDE = (DOCS / "guides" / "background-jobs.rst").read_text(encoding="utf-8")
#: ``pip install`` of the package by its name on PyPI, where it is not.
FROM_PYPI = re.compile(r"pip install\s+['\"]?flask-token-vault\b", re.IGNORECASE)


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
    offending = [name for name, text in user_pages() if FROM_PYPI.search(text)]
    assert offending == []


# -- background jobs -----------------------------------------------------------------------------


# The guide's task itself (docs/_samples/background_job.py) runs in test_background_jobs_guide.py.


def test_the_background_jobs_key_step_keeps_the_quick_start_starting(tmp_path: Path) -> None:
    """Step 1 removes AUTH0_CLIENT_SECRET: the quick start, changed as it says, still starts."""
    (lines,) = [block for block in code_blocks(JOBS_GUIDE, "python") if "os.environ.get(" in block]
    sample = SAMPLE.read_text(encoding="utf-8")
    secret_line = re.search(r"^( *)AUTH0_CLIENT_SECRET=.*\n", sample, re.MULTILINE)
    if secret_line is not None:  # the quick start reads the secret itself: apply the guide
        indented = textwrap.indent(lines, secret_line.group(1))
        sample = sample.replace(secret_line.group(0), indented)
    (tmp_path / "app.py").write_text(sample, encoding="utf-8")
    env = environment_without()
    env.update(
        AUTH0_DOMAIN="http://127.0.0.1:8100",
        AUTH0_CLIENT_ID="emulator-client-id",
        AUTH0_CLIENT_PRIVATE_KEY=rsa_key_pem(),
        SECRET_KEY="a-long-random-secret-key-for-this-test-only",
        PYTHONPATH=str(ROOT),
    )
    started = run_to_end(
        [sys.executable, "-c", "import app"],
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr
