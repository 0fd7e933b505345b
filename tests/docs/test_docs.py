"""Keep the docs in step with the code: names, config keys, errors and the runnable samples.

These read the reStructuredText sources, not the built HTML, so they run in ``make test``
without Sphinx; ``make docs`` builds the site itself with warnings as errors.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest
from blinker import NamedSignal

import flask_token_vault
import flask_token_vault_pytest as pytest_plugin
from flask_token_vault import _config as config
from flask_token_vault import _exchange as exchange
from flask_token_vault import signals
from flask_token_vault.errors import ConfigurationError, TokenVaultError
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from tests.helpers import ROOT
from tests.helpers.processes import environment_without, run_to_end

DOCS = ROOT / "docs"
SAMPLES = DOCS / "_samples"
PACKAGE = ROOT / "flask_token_vault"
CAL_READ = "https://www.googleapis.com/auth/calendar.readonly"

AUTODOC = re.compile(
    r"^\.\. auto(?:class|function|data|exception|attribute|method|module)::\s+([\w.]+)"
    r"(?:\(.*\))?\s*$",
    re.MULTILINE,
)
CONFIG_KEY = re.compile(r"\b(?:TOKEN_VAULT|AUTH0)_[A-Z][A-Z0-9_]*[A-Z0-9]\b")


def read(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def documented_objects() -> set[str]:
    """Return the fully qualified names of the API reference's autodoc directives."""
    text = read("api.rst")
    names: set[str] = set()
    module = ""
    for line in text.splitlines():
        current = re.match(r"^\.\. (?:py:)?(?:current)?module::\s+(\S+)\s*$", line)
        if current:
            module = current.group(1)
            continue
        found = AUTODOC.match(line)
        if found:
            name = found.group(1)
            whole = "." in name or not module or "automodule" in line
            names.add(name if whole else f"{module}.{name}")
    return names


def resolve(dotted: str) -> object:
    """Return the object a documented dotted name refers to."""
    try:
        return importlib.import_module(dotted)
    except ImportError:
        module_name, _, attr = dotted.rpartition(".")
        return getattr(importlib.import_module(module_name), attr)


def is_documented(dotted: str) -> bool:
    """Tell whether the API reference documents ``dotted``, under this or another name."""
    documented = documented_objects()
    if dotted in documented:
        return True
    target = resolve(dotted)
    return any(resolve(name) is target for name in documented)


def all_modules() -> list[ModuleType]:
    """Import every module of the package, so errors defined anywhere in it are seen."""
    modules = [flask_token_vault]
    for info in pkgutil.walk_packages(flask_token_vault.__path__, "flask_token_vault."):
        if info.name.endswith("__main__"):
            continue
        modules.append(importlib.import_module(info.name))
    return modules


def error_classes() -> list[type[Exception]]:
    """Return ConfigurationError and every TokenVaultError subclass the package defines."""
    all_modules()
    found: list[type[Exception]] = [ConfigurationError, TokenVaultError]
    todo: list[type[TokenVaultError]] = [TokenVaultError]
    seen: set[type[TokenVaultError]] = set()
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.startswith("flask_token_vault") and sub not in seen:
                seen.add(sub)
                todo.append(sub)
                # Private mixins are no error of their own: their subclasses are.
                if not sub.__name__.startswith("_"):
                    found.append(sub)
    return found


def config_keys_in_code() -> set[str]:
    """Return every ``TOKEN_VAULT_*`` and ``AUTH0_*`` key named in the package's modules."""
    keys: set[str] = set()
    for path in PACKAGE.glob("*.py"):
        keys.update(CONFIG_KEY.findall(path.read_text(encoding="utf-8")))
    return keys


def config_table_rows(title: str) -> dict[str, str]:
    """Return each key of a configuration table with its default line ("Default: ...")."""
    text = read("configuration.rst")
    start = text.index(f".. list-table:: {title}")
    table = []
    for line in text[start:].splitlines()[1:]:
        if line and not line.startswith(" "):
            break
        table.append(line)
    rows = re.findall(
        r"^   \* - ``([A-Z0-9_]+)``\n     - .*\n\n       (.+)$", "\n".join(table), re.MULTILINE
    )
    return dict(rows)


def config_table_keys() -> list[str]:
    """Return the keys in the first column of the configuration tables (everyday, tuning)."""
    return [*config_table_rows("Configuration keys"), *config_table_rows("Tuning keys")]


def section_titles(text: str) -> set[str]:
    """Return the section titles of a reStructuredText document."""
    lines = text.splitlines()
    return {
        lines[i].strip().strip("`")
        for i in range(len(lines) - 1)
        if lines[i].strip()
        and re.fullmatch(r"([-=~^\"'+*])\1+", lines[i + 1].strip())
        and len(lines[i + 1].strip()) >= len(lines[i].strip())
    }


# -- API reference ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", flask_token_vault.__all__)
def test_public_name_is_in_the_api_reference(name: str) -> None:
    assert is_documented(f"flask_token_vault.{name}")


@pytest.mark.parametrize(
    "name", [name for name, value in vars(signals).items() if isinstance(value, NamedSignal)]
)
def test_signal_is_in_the_api_reference(name: str) -> None:
    assert is_documented(f"flask_token_vault.signals.{name}")


@pytest.mark.parametrize(
    "name",
    [
        "flask_token_vault_pytest.testing.login_as",
        "flask_token_vault_pytest.testing.emulator_config",
        "flask_token_vault_pytest.testing.fail_next_exchange",
        "flask_token_vault_pytest.testing.FakeClock",
        "flask_token_vault_pytest",
        "flask_token_vault_emulator.Emulator",
    ],
)
def test_test_helper_is_in_the_api_reference(name: str) -> None:
    assert is_documented(name)


@pytest.mark.parametrize("name", pytest_plugin.__all__)
def test_plugin_fixture_is_documented(name: str) -> None:
    """Each fixture has an API entry and a row in the testing guide's fixtures table."""
    assert is_documented(f"flask_token_vault_pytest.{name}")
    assert f"   * - ``{name}``\n" in read("guides/testing.rst")


@pytest.mark.parametrize("dotted", sorted(documented_objects()))
def test_api_reference_documents_only_names_that_exist(dotted: str) -> None:
    resolve(dotted)


# -- configuration ------------------------------------------------------------------------------


def test_config_table_is_found_and_has_no_duplicates() -> None:
    keys = config_table_keys()
    assert len(keys) > 10
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    ("title", "table"), [("Configuration keys", config.EVERYDAY), ("Tuning keys", config.TUNING)]
)
def test_config_tables_show_the_settings_table_defaults_included(
    title: str, table: tuple[config.Setting, ...]
) -> None:
    """Each key sits in its table (everyday or tuning) with the default the code uses."""
    documented = config_table_rows(title)
    assert documented == {setting.name: setting.documented_default for setting in table}


@pytest.mark.parametrize(
    "key", sorted(config_keys_in_code() | {"SECRET_KEY", "SECRET_KEY_FALLBACKS"})
)
def test_config_key_is_in_the_table(key: str) -> None:
    assert key in config_table_keys()


def test_every_key_in_the_table_is_read_by_the_code() -> None:
    source = "\n".join(p.read_text(encoding="utf-8") for p in PACKAGE.glob("*.py"))
    stale = [key for key in config_table_keys() if key not in source]
    assert stale == []


# -- troubleshooting ----------------------------------------------------------------------------


def test_error_classes_are_discovered() -> None:
    names = {cls.__name__ for cls in error_classes()}
    assert {"InsufficientScope", "Misconfigured", "ConfigurationError"} <= names


@pytest.mark.parametrize("cls", error_classes(), ids=lambda cls: cls.__name__)
def test_error_class_has_a_troubleshooting_section(cls: type[Exception]) -> None:
    assert cls.__name__ in section_titles(read("troubleshooting.rst"))


@pytest.mark.parametrize(
    "cls",
    [cls for cls in error_classes() if issubclass(cls, TokenVaultError)],
    ids=lambda cls: cls.__name__,
)
def test_error_code_is_in_troubleshooting(cls: type[TokenVaultError]) -> None:
    assert f"``{cls.default_error}``" in read("troubleshooting.rst")


def auth0_codes_mapped() -> list[str]:
    """Return the Auth0 error codes that ``error_from_answer`` tells apart."""
    source = inspect.getsource(exchange.error_from_answer)
    codes = set(re.findall(r'code == "([a-z_]+)"', source))
    for group in re.findall(r"code in \(([^)]*)\)", source):
        codes.update(re.findall(r'"([a-z_]+)"', group))
    codes.update(exchange._NOT_CONNECTED)
    return sorted(codes)


def test_auth0_codes_are_found() -> None:
    assert "federated_connection_refresh_token_flow_failed" in auth0_codes_mapped()


@pytest.mark.parametrize("code", auth0_codes_mapped())
def test_auth0_code_is_in_troubleshooting(code: str) -> None:
    assert code in section_titles(read("troubleshooting.rst"))


@pytest.mark.parametrize("status", ["429", "5xx"])
def test_auth0_status_is_in_troubleshooting(status: str) -> None:
    assert any(status in title for title in section_titles(read("troubleshooting.rst")))


# -- runnable samples ---------------------------------------------------------------------------


SAMPLE_PROJECT = ("sample_app.py", "test_sample_app.py")


def test_sample_tests_use_only_the_plugin() -> None:
    """The sample's tests get the emulator from the plugin's fixtures, not from their own."""
    text = (SAMPLES / "test_sample_app.py").read_text(encoding="utf-8")
    assert "Emulator(" not in text
    assert 'scope="session"' not in text
    assert "flask_token_vault_pytest.testing import login_as" not in text
    used = set(re.findall(r"\btoken_vault_[a-z_]+\b", text))
    assert {
        "token_vault_app_config",
        "token_vault_emulator_reset",
        "token_vault_login_as",
        "token_vault_fail_next_exchange",
    } <= used
    assert used <= set(pytest_plugin.__all__)


def run_user_project(project: Path, test_file: str) -> None:
    """Run ``test_file``'s tests in ``project`` as a user's project: only the installed plugin.

    Every test it defines must pass (a count, so that none is silently collected away).
    """
    env = environment_without("AUTH0_", "SECRET_KEY")
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
    result = run_to_end(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test_file],
        cwd=project,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    count = len(re.findall(r"^def test_", (project / test_file).read_text(), re.M))
    assert count >= 3
    assert re.search(rf"^{count} passed\b", result.stdout, re.M), result.stdout


def test_sample_tests_pass(tmp_path: Path) -> None:
    """The testing guide's sample app and tests pass as a project that has only the plugin.

    The project holds the two files and a pytest.ini, no conftest.py: the ``token_vault_*``
    fixtures must come from the ``pytest11`` entry point that installing the package registers.
    """
    for name in SAMPLE_PROJECT:
        shutil.copy(SAMPLES / name, tmp_path / name)
    (tmp_path / "pytest.ini").write_text("[pytest]\nfilterwarnings = error\n", encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*SAMPLE_PROJECT, "pytest.ini"])
    run_user_project(tmp_path, "test_sample_app.py")


def test_the_testing_guides_tests_pass_on_the_readme_quick_start(tmp_path: Path) -> None:
    """The quick start's app.py, saved verbatim from the README, passes the guide's test file."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick_start = readme.split("## Quick start", 1)[1]
    (app_py,) = re.findall(r"^```python\n(.*?)^```", quick_start.split("\n## ", 1)[0], re.M | re.S)
    (tmp_path / "app.py").write_text(app_py, encoding="utf-8")
    shutil.copy(SAMPLES / "test_app.py", tmp_path / "test_app.py")
    run_user_project(tmp_path, "test_app.py")


@pytest.fixture
def quickstart(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import the quick start's app.py with the environment the quick start sets."""
    monkeypatch.setenv("SECRET_KEY", "quick-start-secret-0123456789-abcdefgh")
    monkeypatch.setenv("AUTH0_DOMAIN", emu.url)
    monkeypatch.setenv("AUTH0_CLIENT_ID", emu.client_id)
    monkeypatch.setenv("AUTH0_CLIENT_SECRET", emu.client_secret)
    monkeypatch.setenv("GOOGLE_API_BASE", emu.google_api_base)
    spec = importlib.util.spec_from_file_location("quickstart_app", SAMPLES / "quickstart_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart_offers_to_sign_in(quickstart: ModuleType) -> None:
    response = quickstart.app.test_client().get("/")
    assert response.status_code == 200
    assert b'href="/auth/login?next=%2F"' in response.data


def test_quickstart_lists_events(quickstart: ModuleType, emu: Emulator) -> None:
    client = quickstart.app.test_client()
    login_as(client, emu, "alice@example.com", {"google-oauth2": [CAL_READ]}, name="Alice")
    assert b"Hello Alice." in client.get("/").data
    response = client.get("/calendar")
    assert response.status_code == 200
    assert response.json is not None
    assert response.json["events"]


def test_quickstart_sends_a_visitor_to_google(quickstart: ModuleType) -> None:
    response = quickstart.app.test_client().get("/calendar")
    assert response.status_code == 302
    assert response.location.startswith("/auth/connect/google-oauth2?")


def test_quickstart_commands_match_the_sample() -> None:
    """The quick start's environment and emulator command are the ones the sample reads."""
    text = read("quickstart.rst")
    keys = (
        "SECRET_KEY",
        "AUTH0_DOMAIN",
        "AUTH0_CLIENT_ID",
        "AUTH0_CLIENT_SECRET",
        "GOOGLE_API_BASE",
    )
    for key in keys:
        assert f"export {key}=" in text or f" {key}=" in text
    assert "python -m flask_token_vault_emulator --port 8100" in text
    assert ":caption: app.py" in text
