"""Run every benchmark, print the figures and the targets, write docs/benchmarks.

``make bench`` runs ``python -m bench``. Each part prints its table as soon as it is done; the
end prints the targets met or missed, and the summary page, the plot and the raw figures are
written to ``docs/benchmarks/index.md``, ``docs/benchmarks/latency.png`` and
``build/bench/results.json``. ``python -m bench warm_cache peer`` runs only the named parts
(the docs are then not rewritten).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from types import ModuleType
from typing import Any

from bench import (
    cookie_size,
    crowd,
    hot_path,
    memory,
    peer,
    plugin_import,
    redis_deployments,
    scale_out,
    sdk_adapters,
    stampede,
    summary,
    warm_cache,
)
from bench.common import BUILD

PARTS: dict[str, ModuleType] = {
    "warm_cache": warm_cache,
    "hot_path": hot_path,
    "sdk_adapters": sdk_adapters,
    "stampede": stampede,
    "scale_out": scale_out,
    "cookie_size": cookie_size,
    "peer": peer,
    "plugin_import": plugin_import,
    "memory": memory,
    "crowd": crowd,
    "redis_deployments": redis_deployments,
}


def _timed(name: str, run: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    print(f"\n== {name} ...", flush=True)
    result = run()
    return result, time.monotonic() - started


def main(argv: list[str]) -> int:
    """Run the named parts (default: all) and report; return the exit status."""
    names = argv or list(PARTS)
    unknown = [n for n in names if n not in PARTS]
    if unknown:
        print(f"unknown part(s): {', '.join(unknown)}; choose from {', '.join(PARTS)}")
        return 2
    started = time.monotonic()
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for name in names:
        module = PARTS[name]
        results[name], seconds[name] = _timed(name, module.run)
        print(module.report(results[name]), flush=True)
        print(f"   ({seconds[name]:.0f} s)", flush=True)
    meta = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "seconds": seconds,
        "total_seconds": time.monotonic() - started,
    }
    BUILD.mkdir(parents=True, exist_ok=True)
    (BUILD / "results.json").write_text(json.dumps({"meta": meta, **results}, indent=2))
    if set(names) == set(PARTS):
        verdicts = summary.targets(results)
        print("\n== targets", flush=True)
        print(summary.targets_text(verdicts), flush=True)
        page, plot = summary.write_docs(results, meta, verdicts)
        print(f"\nwrote {page.relative_to(summary.ROOT)} and {plot.relative_to(summary.ROOT)}")
    print(f"bench took {meta['total_seconds']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
