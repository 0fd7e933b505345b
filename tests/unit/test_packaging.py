"""pyproject.toml declares what the packages import, and tools/floors.py reads its floors."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib.metadata import packages_distributions, version

from tests.helpers import ROOT
from tests.helpers.processes import run_to_end

PACKAGES = ("flask_token_vault", "flask_token_vault_emulator", "flask_token_vault_pytest")
#: The pytest plugin is loaded by pytest only: pytest is its host, not its dependency.
HOSTS = {"flask_token_vault_pytest": {"pytest"}}


def _floors(command: str) -> subprocess.CompletedProcess[str]:
    return run_to_end(
        [sys.executable, str(ROOT / "tools" / "floors.py"), command],
        timeout=60,
    )


def declared() -> dict[str, str]:
    """Return each runtime dependency pyproject.toml declares, with its floor."""
    pins = _floors("pins")
    assert pins.returncode == 0, pins.stderr
    return dict(line.split("==") for line in pins.stdout.splitlines())


def imported(package: str) -> set[str]:
    """Return the top-level modules from outside the standard library that ``package`` imports."""
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - set(PACKAGES)


def _normal(name: str) -> str:
    """Return a distribution name as PEP 503 compares them (``slack_sdk`` is ``slack-sdk``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_import_from_outside_is_a_declared_dependency() -> None:
    names = {_normal(name) for name in declared()}
    distributions = packages_distributions()
    seen = set()
    for package in PACKAGES:
        for module in imported(package) - HOSTS.get(package, set()):
            provided_by = {_normal(name) for name in distributions.get(module, [module])}
            assert provided_by & names, f"{package} imports {module}: not in pyproject.toml"
            seen |= provided_by & names
    # The walk did see the imports: the direct ones, and Redis (imported inside functions).
    assert {"flask", "werkzeug", "joserfc", "cryptography", "redis"} <= seen


def test_the_floor_check_reports_each_installed_version() -> None:
    floors = declared()
    checked = _floors("check")
    lines = {line.split()[0]: line for line in checked.stdout.splitlines()}
    assert set(lines) == set(floors)
    for name in floors:
        assert f"installed {version(name)} " in lines[name] + " "
    at_floor = [line.endswith(" ok") for line in lines.values()]
    assert checked.returncode == (0 if all(at_floor) else 1), checked.stdout
