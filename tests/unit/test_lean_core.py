"""The core install stays lean: SDKs and agent frameworks are extras, imported on demand."""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib.metadata import requires

from tests.helpers import ROOT

#: The libraries the adapters of ``flask_token_vault.providers`` and ``flask_token_vault.agents``
#: drive, by import name.
SDK_MODULES = (
    "google",
    "googleapiclient",
    "azure",
    "msgraph",
    "msgraph_core",
    "kiota_http",
    "httpx",
    "slack_sdk",
    "github",
    "langchain_core",
    "agents",
    "openai",
)
#: The same, by distribution name.
SDK_DISTRIBUTIONS = {
    "google-auth",
    "google-api-python-client",
    "azure-core",
    "msgraph-sdk",
    "msgraph-core",
    "microsoft-kiota-authentication-azure",
    "httpx",
    "slack-sdk",
    "pygithub",
    "langchain-core",
    "openai-agents",
}
EXTRAS = ("google", "microsoft", "httpx", "slack", "github", "langchain", "openai-agents")


def _name(requirement: str) -> str:
    for stop in "<>=!~[; ":
        requirement = requirement.split(stop)[0]
    return requirement.strip().lower().replace("_", "-")


def test_the_core_dependencies_name_no_sdk() -> None:
    tomllib = importlib.import_module("tomllib")  # Python 3.11+, as tools/floors.py
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    core = {_name(r) for r in project["dependencies"]}
    assert core and not core & SDK_DISTRIBUTIONS
    extras = project["optional-dependencies"]
    found = {_name(r) for extra in EXTRAS for r in extras[extra]}
    assert found == SDK_DISTRIBUTIONS  # each SDK is in its extra, nothing else is


def test_the_installed_core_requires_no_sdk_outside_its_extras() -> None:
    """What ``pip install .`` pulls: the requirements that carry no ``extra ==`` marker."""
    installed = requires("Flask-Token-Vault") or []
    core = {_name(r) for r in installed if "extra ==" not in r}
    assert "flask" in core and not core & SDK_DISTRIBUTIONS


def test_importing_the_package_imports_no_sdk() -> None:
    probe = (
        "import sys, flask_token_vault, flask_token_vault.providers, flask_token_vault.agents;"
        f"print(sorted(m for m in {SDK_MODULES!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]"
