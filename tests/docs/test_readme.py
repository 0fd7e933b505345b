"""The README and the first pages of the docs, done as a newcomer would do them.

The quick start is taken out of README.md and run as written: the emulator and the app are
started by the README's own commands (on free ports instead of 8100 and 5000), a browser-like
client signs in and lists the events, and ``doctor`` fails only where the README says it will.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from packaging.requirements import Requirement

from flask_token_vault.admin.cli import cli
from tests.e2e.browser import Shots
from tests.helpers import ROOT
from tests.helpers.browser import form_fields
from tests.helpers.processes import environment_without, run_to_end

README = (ROOT / "README.md").read_text(encoding="utf-8")
SAMPLE = ROOT / "docs" / "_samples" / "quickstart_app.py"
BIN = Path(sys.executable).parent
TIMEOUT = 10


def section(title: str) -> str:
    """Return a README section (its heading's level and below) up to the next one."""
    match = re.search(rf"^(#+) {re.escape(title)}\n", README, re.MULTILINE)
    assert match, f"README has no section {title!r}"
    level = len(match.group(1))
    rest = README[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def blocks(text: str, language: str) -> list[str]:
    """Return the fenced code blocks of ``language`` in ``text``."""
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shell_env() -> dict[str, str]:
    """The environment of a fresh terminal with this virtualenv active and no Auth0 settings."""
    env = environment_without()
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("SECRET_KEY", None)
    return env


# -- one first example everywhere ------------------------------------------------------------------


def test_the_readme_quick_start_is_the_docs_quick_start() -> None:
    (code,) = blocks(section("Quick start"), "python")
    assert code == SAMPLE.read_text(encoding="utf-8")
    for page in ("index.rst", "quickstart.rst"):
        text = (ROOT / "docs" / page).read_text(encoding="utf-8")
        assert ".. literalinclude:: _samples/quickstart_app.py" in text, page
    # The settings doctor checks are in the first example, not left for later.
    assert 'SESSION_COOKIE_SAMESITE="Lax"' in code
    assert 'os.environ["SECRET_KEY"]' in code


def test_the_readme_install_line_works_from_this_repository(tmp_path: Path) -> None:
    (block,) = blocks(section("Install"), "sh")
    line = block.splitlines()[0].split("#", 1)[0]
    words = shlex.split(line)
    assert words[:4] == ["python", "-m", "pip", "install"], line
    report = tmp_path / "report.json"
    result = run_to_end(
        [sys.executable, *words[1:], "--dry-run", "--no-deps", "-q", "--report", str(report)],
        cwd=ROOT,
        env=shell_env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    installs = json.loads(report.read_text(encoding="utf-8"))["install"]
    assert [item["metadata"]["name"] for item in installs] == ["Flask-Token-Vault"]


# -- the quick start, verbatim, against the emulator -----------------------------------------------


class Shell:
    """Run README lines in bash, the last one replacing the shell (so it can be stopped).

    Its output goes to a file, not a pipe: nobody reads a server's log while it runs, and a
    full pipe would block it.
    """

    def __init__(self, lines: list[str], cwd: Path, log: Path) -> None:
        script = "\n".join([*lines[:-1], "exec " + lines[-1]])
        self.log = log
        with log.open("w", encoding="utf-8") as out:
            self.process = subprocess.Popen(
                ["bash", "-c", script],
                cwd=cwd,
                env=shell_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8")

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.output()


@dataclass
class Offline:
    """The README's offline set-up, running."""

    app: str
    emulator: str
    banner: list[str]
    app_lines: list[str]
    folder: Path


def wait_for(what: str, shell: Shell, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60
    while not ready():
        assert shell.process.poll() is None, f"{what} stopped:\n{shell.output()}"
        assert time.monotonic() < deadline, f"{what} did not start:\n{shell.output()}"
        time.sleep(0.1)


def answers(url: str) -> bool:
    try:
        requests.get(url, timeout=1)
    except requests.ConnectionError:
        return False
    return True


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Offline]:
    """Do the README's offline section: app.py, the emulator, then the app, on free ports."""
    folder = tmp_path_factory.mktemp("quickstart")
    emulator_port, app_port = free_port(), free_port()

    def ports(text: str) -> str:
        return text.replace("8100", str(emulator_port)).replace("5000", str(app_port))

    (code,) = blocks(section("Quick start"), "python")
    (folder / "app.py").write_text(code, encoding="utf-8")
    emulator_block, app_block = blocks(section("Offline, with the bundled emulator"), "sh")
    emulator_lines = [ports(line.split("#", 1)[0].strip()) for line in emulator_block.splitlines()]
    app_lines = [ports(line) for line in app_block.splitlines() if line.strip()]

    emulator = Shell(emulator_lines, folder, folder / "emulator.log")
    app: Shell | None = None
    try:
        wait_for("the emulator", emulator, lambda: "For local testing only" in emulator.output())
        banner = emulator.output().split("For local testing only")[0].splitlines()
        app = Shell(app_lines, folder, folder / "app.log")
        base = f"http://127.0.0.1:{app_port}"
        wait_for("the app", app, lambda: answers(base + "/"))
        yield Offline(base, f"http://127.0.0.1:{emulator_port}", banner, app_lines, folder)
    finally:
        if app is not None:
            app.stop()
        emulator.stop()


def test_the_emulator_prints_the_lines_the_readme_pastes(offline: Offline) -> None:
    printed = [line.strip() for line in offline.banner if line.strip().startswith("export ")]
    pasted = [line for line in offline.app_lines if line.startswith("export ")]
    # The README pastes the AUTH0_* lines, the Google API base (it calls no other API) and the
    # line that makes the app's SECRET_KEY.
    assert [line for line in printed if "MICROSOFT_GRAPH" not in line] == pasted
    assert f"export AUTH0_DOMAIN={offline.emulator}" in printed
    assert f"export GOOGLE_API_BASE={offline.emulator}/google" in printed


def test_the_readme_quick_start_runs_verbatim_against_the_emulator(offline: Offline) -> None:
    app, emulator = offline.app, offline.emulator
    browser = requests.Session()
    home = browser.get(app + "/", timeout=TIMEOUT)
    assert 'href="/auth/login?next=%2F"' in home.text

    # /calendar -> /auth/connect/google-oauth2 -> sign in first, on the emulator's page.
    page = browser.get(app + "/calendar", timeout=TIMEOUT)
    assert page.url.startswith(emulator + "/authorize?"), page.url
    fields = {**form_fields(page.text), "email": "newcomer@example.com", "action": "allow"}
    # Sign in -> /auth/callback -> back to connecting Google: the emulator's consent page,
    # for the user who just signed in.
    consent = browser.post(emulator + "/u/login", data=fields, timeout=TIMEOUT)
    assert consent.url.startswith(emulator + "/connected-accounts/connect?"), consent.url
    assert "Signed in as <strong>newcomer@example.com</strong>" in consent.text
    fields = {**form_fields(consent.text), "action": "allow"}
    # Allow -> /auth/connect/callback -> /calendar, which calls the (emulated) Google API.
    events = browser.post(emulator + "/u/login", data=fields, timeout=TIMEOUT)
    assert events.url == app + "/calendar", events.text
    assert events.status_code == 200, events.text
    assert events.json()["events"], events.text

    assert "Hello Newcomer." in browser.get(app + "/", timeout=TIMEOUT).text
    sign_out = browser.get(app + "/auth/logout", timeout=TIMEOUT).text
    assert 'id="cancel"' in sign_out and "newcomer@example.com" in sign_out


def test_doctor_on_the_quick_start_fails_only_where_the_readme_says(offline: Offline) -> None:
    lines = offline.app_lines
    assert lines[-1].startswith("flask --app app run")
    doctor = run_to_end(
        ["bash", "-c", "\n".join([*lines[:-1], "exec flask --app app token-vault doctor"])],
        cwd=offline.folder,
        env=shell_env(),
        timeout=120,
    )
    failed = re.findall(r"^\[FAIL\] ([^:]+)", doctor.stdout, re.MULTILINE)
    assert failed == ["session cookie Secure"], doctor.stdout + doctor.stderr
    offline_section = section("Offline, with the bundled emulator")
    for name in failed:
        assert f"`{name}`" in offline_section


# -- words, commands and files a newcomer meets ---------------------------------------------------

INTERNAL = re.compile(r"\bseed\b|\bseed's\b|\bissue #?\d+\b|\breviewer\b|\bthe lead\b", re.I)


def user_facing_files() -> list[Path]:
    found = [ROOT / "README.md", ROOT / "CHANGES.md", ROOT / "Makefile"]
    found += [p for p in (ROOT / "docs").rglob("*") if p.suffix in (".rst", ".md", ".py")]
    found += list(ROOT.glob("flask_token_vault/**/templates/**/*.html"))
    found += list((ROOT / "example_app" / "templates").rglob("*.html"))
    return [p for p in found if "_build" not in p.parts]


def command_help(group: object, path: list[str]) -> Iterator[str]:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    yield result.output
    for name in getattr(group, "commands", {}):
        yield from command_help(group.commands[name], [*path, name])  # type: ignore[attr-defined]


def test_no_internal_words_in_user_facing_text() -> None:
    files = user_facing_files()
    assert len(files) > 20
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not INTERNAL.search(text), (path, INTERNAL.search(text))
    for text in command_help(cli, []):
        assert not INTERNAL.search(text), text


def make_plan(target: str, venv: Path) -> str:
    """Return what ``make -n TARGET`` would run, with its virtualenv at ``venv``."""
    return subprocess.run(
        ["make", "-n", "-C", str(ROOT), target, f"VENV={venv}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


def _key(name: str) -> str:
    """Return a distribution's name as pip compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def demo_installs(extras: list[str]) -> set[str]:
    """Return what ``pip install -e '.[extras]'`` pulls in: the project's own requirements.

    The project's are read from pyproject.toml; theirs, in turn, from what is installed here.
    """
    tomllib = importlib.import_module("tomllib")  # Python 3.11+, as tools/floors.py
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    wanted += [Requirement(r) for extra in extras for r in project["optional-dependencies"][extra]]
    pulled: set[str] = set()
    while wanted:
        requirement = wanted.pop()
        name = _key(requirement.name)
        if name in pulled:
            continue
        pulled.add(name)
        for text in metadata.requires(requirement.name) or []:
            child = Requirement(text)
            asked = [{"extra": extra} for extra in ("", *requirement.extras)]
            if child.marker is None or any(child.marker.evaluate(env) for env in asked):
                wanted.append(child)
    return pulled


#: The repository's own top-level packages (the example app's imports of them are followed).
OURS = (
    "example_app",
    "flask_token_vault",
    "flask_token_vault_emulator",
    "flask_token_vault_pytest",
)


def _module_file(name: str) -> Path | None:
    """Return the file of the repository's module ``name``, if it is one."""
    base = ROOT.joinpath(*name.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def example_imports() -> set[str]:
    """Return the top-level modules from outside the repository the example app needs to start.

    The example's modules are read, and each of the repository's modules they import, in turn:
    only what a module imports as it loads, not inside functions (the RQ worker's imports in
    tasks.py are for `rq worker`, not the demo) nor under ``if TYPE_CHECKING`` or ``try``.
    """
    found: set[str] = set()
    seen: set[str] = set()
    todo = [f"example_app.{path.stem}" for path in (ROOT / "example_app").glob("*.py")]
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level:
                    parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    module = f"{parent}.{module}" if module else parent
                # ``from package import name`` may load the submodule package.name.
                targets = [module, *(f"{module}.{alias.name}" for alias in node.names)]
            for target in targets:
                parts = target.split(".")
                if parts[0] in OURS:
                    todo += [".".join(parts[: i + 1]) for i in range(len(parts))]
                else:
                    found.add(parts[0])
    return found - set(sys.stdlib_module_names) - {"__future__"}


def test_make_demo_installs_what_the_example_imports_and_no_dev_tools(tmp_path: Path) -> None:
    if shutil.which("make") is None:
        pytest.fail("make is needed: the README's first commands are make targets")
    plan = make_plan("demo", tmp_path / "venv")
    installs = [line.rstrip() for line in plan.splitlines() if "pip install" in line]
    assert len(installs) == 1, plan
    wanted = re.search(r" -e '?\.(?:\[([a-z0-9_,-]+)\])?'?$", installs[0])
    assert wanted, installs[0]
    extras = wanted.group(1).split(",") if wanted.group(1) else []
    assert extras and not {"dev", "test", "bench"} & set(extras), extras
    pulled = demo_installs(extras)
    distributions = packages_distributions()
    modules = example_imports()
    assert {"flask", "googleapiclient", "msgraph"} <= modules  # the walk saw the pages' imports
    for module in modules:
        provided_by = {_key(name) for name in distributions.get(module, [module])}
        assert provided_by & pulled, f"the example imports {module}: `make demo` leaves it out"
    assert not {"pytest", "mypy", "ruff", "sphinx", "playwright", "bandit"} & pulled
    assert "--upgrade pip" not in plan


def test_make_e2e_leaves_the_tracked_screenshot_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = make_plan("e2e", tmp_path / "venv")
    assert "E2E_PUBLISH_SCREENSHOT" not in plan and "docs/_static" not in plan
    shot = tmp_path / "shot.png"
    shot.write_bytes(b"png")
    target = tmp_path / "docs" / "e2e-calendar.png"
    monkeypatch.delenv("E2E_PUBLISH_SCREENSHOT", raising=False)
    shots = Shots(page=None, folder=tmp_path, readme_shot=target)  # type: ignore[arg-type]
    assert shots.publish(shot) is False and not target.exists()
    monkeypatch.setenv("E2E_PUBLISH_SCREENSHOT", "1")
    assert shots.publish(shot) is True and target.read_bytes() == b"png"
