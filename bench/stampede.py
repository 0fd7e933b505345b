"""Stampede: N requests at once for the same user and connection on a cold cache.

Each run signs in a new user (so the cache is cold for them), starts N threads each with its own
test client and the user's cookie, releases them together from a barrier, and counts the
exchanges the emulator performed for that user (target: exactly 1 for every N) and the latency
of each request. The emulator answers each exchange after ``AUTH0_DELAY`` seconds, like a real
Auth0 round trip, so that the other requests do arrive while the first exchange is in flight.
Run alone: ``.venv/bin/python -m bench.stampede``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from flask import Flask

from bench.common import CAL_READ, CONNECTION, fmt_ms, make_app, percentile, table
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from services.redis_servers import RedisServer

SIZES = (1, 8, 64, 256)
AUTH0_DELAY = 0.05
JOIN_TIMEOUT = 60.0


def burst(app: Flask, cookie: str, n: int) -> tuple[list[int], list[float]]:
    """Send ``n`` simultaneous GET /decorated; return statuses and latencies in seconds."""
    barrier = threading.Barrier(n + 1)
    statuses = [0] * n
    latencies = [0.0] * n

    def one(i: int) -> None:
        client = app.test_client()
        client.set_cookie("session", cookie)
        barrier.wait(JOIN_TIMEOUT)
        started = time.perf_counter()
        statuses[i] = client.get("/decorated", headers={"Accept": "application/json"}).status_code
        latencies[i] = time.perf_counter() - started

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait(JOIN_TIMEOUT)
    deadline = time.monotonic() + JOIN_TIMEOUT
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in threads):
        raise RuntimeError(f"stampede of {n}: requests still running after {JOIN_TIMEOUT:.0f} s")
    return statuses, latencies


class WarningCounter(logging.Handler):
    """Count the extension's warnings by their text (first words), instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.getMessage()] += 1

    def take(self) -> int:
        """Return how many warnings came since the last call, and forget them."""
        total = sum(self.counts.values())
        self.counts.clear()
        return total


@contextmanager
def slow_auth0() -> Iterator[tuple[Emulator, WarningCounter]]:
    """Start the emulator with every exchange taking ``AUTH0_DELAY``; count warnings quietly."""
    logger = logging.getLogger("flask_token_vault")
    warnings = WarningCounter()
    logger.addHandler(warnings)
    propagate, logger.propagate = logger.propagate, False
    try:
        with Emulator() as emu:
            emu.add_fault("token:exchange", status=0, delay=AUTH0_DELAY, times=-1)
            yield emu, warnings
            emu.clear_faults()
    finally:
        logger.removeHandler(warnings)
        logger.propagate = propagate


def run() -> dict[str, list[dict[str, Any]]]:
    """Run every size against the in-process cache and against Redis; return the figures."""
    results: dict[str, list[dict[str, Any]]] = {}
    server = RedisServer()
    probe = redis.Redis.from_url(server.url)
    try:
        with slow_auth0() as (emu, warnings):
            for name, config in (("in-process", {}), ("redis", {"TOKEN_VAULT_CACHE": server.url})):
                app = make_app(emu, **config)
                rows = results[name] = []
                for n in SIZES:
                    client = app.test_client()
                    sub = login_as(
                        client, emu, f"stampede-{name}-{n}@example.com", {CONNECTION: [CAL_READ]}
                    )
                    cookie = client.get_cookie("session")
                    assert cookie is not None
                    warnings.take()
                    before = int(probe.info("stats")["total_connections_received"])
                    statuses, latencies = burst(app, cookie.value, n)
                    opened = int(probe.info("stats")["total_connections_received"]) - before
                    texts = dict(warnings.counts)
                    rows.append(
                        {
                            "n": n,
                            "exchanges": emu.exchange_count(sub),
                            "errors": sum(1 for s in statuses if s != 200),
                            "p50_s": percentile(latencies, 50),
                            "p99_s": percentile(latencies, 99),
                            "max_s": max(latencies),
                            "warnings": warnings.take(),
                            "redis_connections": opened if name == "redis" else 0,
                            "warning_texts": texts,
                        }
                    )
    finally:
        probe.close()
        server.stop()
    return results


#: The columns of the stampede table, printed and on the docs page alike.
HEADERS = [
    "cache",
    "N",
    "exchanges",
    "errors",
    "p50 ms",
    "p99 ms",
    "p99 / Auth0 time",
    "Redis conns opened",
    "warnings logged",
]


def rows(results: dict[str, list[dict[str, Any]]]) -> list[list[Any]]:
    """Return one table row per cache and N."""
    return [
        [
            name,
            r["n"],
            r["exchanges"],
            r["errors"],
            fmt_ms(r["p50_s"]),
            fmt_ms(r["p99_s"]),
            f"{r['p99_s'] / AUTH0_DELAY:.1f}",
            r["redis_connections"] if name == "redis" else "-",
            r["warnings"],
        ]
        for name, runs in results.items()
        for r in runs
    ]


def report(results: dict[str, list[dict[str, Any]]]) -> str:
    """Return the printed summary."""
    head = (
        f"(b) stampede on a cold cache, one user and connection (Auth0 answers in "
        f"{AUTH0_DELAY * 1000:.0f} ms; target: 1 exchange)"
    )
    body = table(HEADERS, rows(results))
    texts: Counter[str] = Counter()
    for runs in results.values():
        for r in runs:
            texts.update(r["warning_texts"])
    notes = "".join(f"\n  warning x{n}: {text}" for text, n in texts.most_common(3))
    return head + "\n" + body + notes


if __name__ == "__main__":
    print(report(run()))
