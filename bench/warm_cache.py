"""Warm-cache cost of a decorated route against the same route undecorated.

Both routes are requested through Flask's test client in interleaved rounds (bare, decorated,
bare, ...), so a slow spell of this noisy machine hits both alike. Each round gives a paired
ratio; the figures printed are medians over rounds. With Redis, the server's own command
counters tell how many round trips a warm request costs (target: one ``GET``).
Run alone: ``.venv/bin/python -m bench.warm_cache``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from flask import Flask

from bench.common import CAL_READ, CONNECTION, RedisCounter, make_app, table
from flask_token_vault.emulator import Emulator
from flask_token_vault.testing import login_as
from tests.redis_server import RedisServer

ROUNDS = 12
PER_ROUND = 250


def measure(app: Flask, emu: Emulator, counter: RedisCounter | None) -> dict[str, Any]:
    """Time both routes on a warm cache; count Redis commands per decorated request."""
    client = app.test_client()
    login_as(client, emu, "warm@example.com", {CONNECTION: [CAL_READ]})
    assert client.get("/decorated").status_code == 200  # fills the cache
    before = emu.exchange_count()
    bare: list[float] = []
    decorated: list[float] = []
    for _ in range(ROUNDS):
        for path, out in (("/bare", bare), ("/decorated", decorated)):
            start = time.perf_counter()
            for _ in range(PER_ROUND):
                client.get(path)
            out.append((time.perf_counter() - start) / PER_ROUND * 1e6)
    assert emu.exchange_count() == before, "a warm cache must not exchange"
    commands: dict[str, float] = {}
    if counter is not None:
        counter.reset()
        for _ in range(PER_ROUND):
            client.get("/decorated")
        commands = {k: v / PER_ROUND for k, v in counter.commands().items()}
        counter.reset()
        for _ in range(PER_ROUND):
            client.get("/bare")
        assert counter.total() == 0, "the bare route must not touch Redis"
    ratios = [d / b for b, d in zip(bare, decorated, strict=True)]
    return {
        "bare_us": statistics.median(bare),
        "decorated_us": statistics.median(decorated),
        "overhead_us": statistics.median(d - b for b, d in zip(bare, decorated, strict=True)),
        "ratio": statistics.median(ratios),
        "best_bare_us": min(bare),
        "best_decorated_us": min(decorated),
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
                f"{r['decorated_us']:.0f}",
                f"{r['overhead_us']:.0f}",
                f"{r['ratio']:.2f}",
                trips,
            ]
        )
    return out


def report(results: dict[str, dict[str, Any]]) -> str:
    """Return the printed summary."""
    rows_ = rows(results)
    head = f"(a) warm-cache cost per request (median of {ROUNDS} paired rounds x {PER_ROUND})"
    body = table(
        ["cache", "bare µs", "decorated µs", "overhead µs", "ratio", "Redis cmds/request"], rows_
    )
    return head + "\n" + body


def main() -> dict[str, dict[str, Any]]:
    """Run and print."""
    results = run()
    print(report(results), flush=True)
    return results


if __name__ == "__main__":
    main()
