"""Print or check the floors of the runtime dependencies (``name>=X`` in ``pyproject.toml``).

``python tools/floors.py pins`` prints one ``name==X`` a line, for ``pip install -c`` to put
each dependency at the lowest version the project allows. ``python tools/floors.py check``
prints the version installed of each and exits 1 unless every one is at its floor. The runtime
dependencies are ``[project] dependencies`` and the extras an app installs (:data:`EXTRAS`).
Needs Python 3.11 or later (``tomllib``).
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import tomllib

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
#: Extras that are part of an app's install, not of the development tool chain.
EXTRAS = (
    "redis",
    "rq",
    "valkey",
    "google",
    "microsoft",
    "httpx",
    "slack",
    "github",
    "langchain",
    "openai-agents",
)
_FLOOR = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?>=([0-9]+(?:\.[0-9]+)*)(?:,.*)?$")


def floors() -> dict[str, str]:
    """Return each runtime dependency's name and lowest allowed version."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"])
    for extra in EXTRAS:
        requirements += project["optional-dependencies"][extra]
    found: dict[str, str] = {}
    for requirement in requirements:
        match = _FLOOR.match(requirement.replace(" ", ""))
        if match is None:
            raise SystemExit(f"pyproject.toml: {requirement!r} has no floor (name>=X)")
        found[match.group(1).lower()] = match.group(2)
    return found


def _release(text: str) -> tuple[int, ...]:
    """Return a version's release numbers without trailing zeros (3.1 and 3.1.0 are equal)."""
    numbers = [int(n) for n in re.findall(r"\d+", text.split("+")[0])[:4]]
    while numbers and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)


def check() -> int:
    """Print each dependency's floor and installed version; return 1 if any is not the floor."""
    wrong = 0
    for name, floor in sorted(floors().items()):
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = "missing"
        ok = _release(installed) == _release(floor)
        wrong += not ok
        verdict = "ok" if ok else "NOT THE FLOOR"
        print(f"{name:<14} floor {floor:<8} installed {installed:<10} {verdict}")
    return 1 if wrong else 0


def main(argv: list[str]) -> int:
    """Run ``pins`` or ``check``."""
    if argv == ["pins"]:
        print("\n".join(f"{name}=={floor}" for name, floor in floors().items()))
        return 0
    if argv == ["check"]:
        return check()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
