"""The package's shape: layers point down, one transport, the emulator stays out of the way."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT

PACKAGE = ROOT / "flask_token_vault"


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Return module -> modules of the package it imports (anywhere in the module)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*up, base] if base else up)
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            graph[name].update(
                t for t in targets if t in modules and t not in (name, "flask_token_vault")
            )
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one import cycle as a list of modules, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 20  # the walk found the package
    assert find_cycle(graph) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_core_modules_know_nothing_of_flask() -> None:
    graph = import_graph()
    core = ["flask_token_vault._http", "flask_token_vault._exchange", "flask_token_vault._cache"]
    core += ["flask_token_vault._store", "flask_token_vault.admin.management"]
    core += ["flask_token_vault._my_account", "flask_token_vault._crypto"]
    core += ["flask_token_vault._oidc", "flask_token_vault._revocation"]
    for name in core:
        source = (ROOT / (name.replace(".", "/") + ".py")).read_text(encoding="utf-8")
        assert "from flask " not in source and "import flask\n" not in source, name
        assert "flask_token_vault._state" not in graph[name], name


def test_only_the_transport_retries() -> None:
    """Backoff with jitter is the mark of a retry loop: only ``_http.py`` has one."""
    users = sorted(
        name for name, path in _modules().items() if "random." in path.read_text(encoding="utf-8")
    )
    assert users == ["flask_token_vault._http"]


def test_importing_and_serving_never_loads_the_emulator() -> None:
    script = """
import sys
from flask import Flask
from flask_token_vault import TokenVault, get_provider_token, provider_token_required
app = Flask("x")
app.config.update(SECRET_KEY="layer-test-secret-0123456789abcdef",
                  AUTH0_DOMAIN="tenant.example.com",
                  AUTH0_CLIENT_ID="id", AUTH0_CLIENT_SECRET="secret")
TokenVault(app)
assert app.test_client().get("/auth/logout").status_code in (200, 302)
print(sorted(m for m in sys.modules if m.startswith("flask_token_vault_emulator")))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_the_runtime_package_never_names_the_emulator() -> None:
    """The emulator is a package of its own: nothing in ``flask_token_vault/`` mentions it."""
    mentions = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted(PACKAGE.rglob("*"))
        if path.suffix in (".py", ".html")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "emulat" in line.lower()
    ]
    assert len(list(PACKAGE.rglob("*.py"))) > 20  # the walk found the package
    assert mentions == []
