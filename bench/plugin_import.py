"""What the pytest plugin costs a project that has Flask-Token-Vault installed but no use for it.

pytest imports every ``pytest11`` plugin at start-up. Each sample is a fresh interpreter that
imports pytest (which pytest has done anyway) and then times the plugin's import; the extension
itself is timed the same way, side by side, for scale. Target: under 20 ms.
Run alone: ``.venv/bin/python -m bench.plugin_import``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from typing import Any

SAMPLES = 9
TARGET_MS = 20.0
_SCRIPT = """
import time, pytest
t = time.perf_counter()
import {module}
print((time.perf_counter() - t) * 1000)
"""


def _sample(module: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT.format(module=module)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip())


def run() -> dict[str, Any]:
    """Time the plugin's import and the extension's, interleaved."""
    plugin: list[float] = []
    extension: list[float] = []
    for _ in range(SAMPLES):
        plugin.append(_sample("flask_token_vault_pytest"))
        extension.append(_sample("flask_token_vault"))
    return {
        "plugin_ms": statistics.median(plugin),
        "extension_ms": statistics.median(extension),
        "samples": SAMPLES,
        "target_ms": TARGET_MS,
    }


def report(results: dict[str, Any]) -> str:
    """Return the printed summary."""
    return (
        f"(e) pytest plugin import in a project that does not use it: "
        f"{results['plugin_ms']:.2f} ms (target < {TARGET_MS:g} ms; median of "
        f"{results['samples']}); importing the extension itself: {results['extension_ms']:.0f} ms"
    )


if __name__ == "__main__":
    print(report(run()))
