"""Warm-cache cost of a decorated route, against a signed-in route and a bare one.

The three routes (``bench.common.add_bench_routes``) are requested through Flask's test client
in interleaved rounds (bare, signed-in, decorated, ...), so a slow spell of this noisy machine
hits all alike. Each round gives paired ratios; the figures printed are medians over rounds.
The target compares the decorated route with the signed-in one, which reads the same session
(what every signed-in app pays anyway): decorated / signed-in <= 1.05. Decorated / bare is
printed too. With Redis, the server's own command counters tell how many round trips a warm
request costs. Run alone: ``.venv/bin/python -m bench.warm_cache``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from flask import Flask

from bench.common import CAL_READ, CONNECTION, RedisCounter, make_app, table
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from services.redis_servers import RedisServer

ROUNDS = 12
PER_ROUND = 250
ROUTES = ("/bare", "/signed-in", "/decorated")
#: Decorated / signed-in, in test-client time.
RATIO_TARGET = 1.05


def measure(app: Flask, emu: Emulator, counter: RedisCounter | None) -> dict[str, Any]:
    """Time the three routes on a warm cache; count Redis commands per decorated request."""
    client = app.test_client()
    login_as(client, emu, "warm@example.com", {CONNECTION: [CAL_READ]})
    assert client.get("/decorated").status_code == 200  # fills the cache
    assert client.get("/signed-in").status_code == 200
    before = emu.exchange_count()
    times: dict[str, list[float]] = {path: [] for path in ROUTES}
    for _ in range(ROUNDS):
        for path in ROUTES:
            start = time.perf_counter()
            for _ in range(PER_ROUND):
                client.get(path)
            times[path].append((time.perf_counter() - start) / PER_ROUND * 1e6)
    assert emu.exchange_count() == before, "a warm cache must not exchange"
    commands: dict[str, float] = {}
    if counter is not None:
        counter.reset()
        for _ in range(PER_ROUND):
            client.get("/decorated")
        commands = {k: v / PER_ROUND for k, v in counter.commands().items()}
        counter.reset()
        for _ in range(PER_ROUND):
            client.get("/signed-in")
        assert counter.total() == 0, "the signed-in route must not touch Redis"
    bare, signed, deco = (times[p] for p in ROUTES)
    return {
        "bare_us": statistics.median(bare),
        "signed_in_us": statistics.median(signed),
        "decorated_us": statistics.median(deco),
        "overhead_us": statistics.median(d - s for s, d in zip(signed, deco, strict=True)),
        "ratio": statistics.median(d / s for s, d in zip(signed, deco, strict=True)),
        "ratios": [d / s for s, d in zip(signed, deco, strict=True)],
        "ratio_bare": statistics.median(d / b for b, d in zip(bare, deco, strict=True)),
        "redis_commands_per_request": commands,
    }


def run() -> dict[str, dict[str, Any]]:
    """Measure with the in-process cache and with Redis; return the figures."""
    results: dict[str, dict[str, Any]] = {}
    server = RedisServer()
    counter = RedisCounter(server.url)
    try:
        with Emulator() as emu:
            results["in-process"] = measure(make_app(emu), emu, None)
            results["redis"] = measure(make_app(emu, TOKEN_VAULT_CACHE=server.url), emu, counter)
    finally:
        counter.close()
        server.stop()
    return results


def rows(results: dict[str, dict[str, Any]]) -> list[list[Any]]:
    """Return one table row per cache: for the printed report and the docs page alike."""
    out = []
    for name, r in results.items():
        per = r["redis_commands_per_request"]
        trips = ", ".join(f"{k.upper()} {v:g}" for k, v in sorted(per.items()))
        trips = trips or ("0" if name == "redis" else "-")
        out.append(
            [
                name,
                f"{r['bare_us']:.0f}",
                f"{r['signed_in_us']:.0f}",
                f"{r['decorated_us']:.0f}",
                f"{r['overhead_us']:.0f}",
                f"{r['ratio']:.2f}",
                f"{r['ratio_bare']:.2f}",
                trips,
            ]
        )
    return out


HEADERS = [
    "cache",
    "bare µs",
    "signed-in µs",
    "decorated µs",
    "decorated - signed-in µs",
    "decorated / signed-in",
    "decorated / bare",
    "Redis cmds/request",
]


def report(results: dict[str, dict[str, Any]]) -> str:
    """Return the printed summary."""
    head = (
        f"(a) warm-cache cost per request through the test client (median of {ROUNDS} "
        f"interleaved rounds x {PER_ROUND}; target decorated / signed-in <= {RATIO_TARGET})"
    )
    return head + "\n" + table(HEADERS, rows(results))


if __name__ == "__main__":
    print(report(run()))
