"""Redis deployments: a cold stampede on one node over TCP, one node over TLS, and a cluster.

For each deployment a fresh app is built with ``TOKEN_VAULT_CACHE`` at it, and each of
:data:`USERS` users signed in beforehand gets a burst of :data:`BURST` simultaneous requests on
a cold cache (``bench.stampede.burst``; the emulator answers each exchange after
``AUTH0_DELAY``). On a ``rediss://`` URL the extension opens connections ahead, in the
background, when the app is built: so every deployment runs twice, its first burst sent the
moment the app is built ("at once") and one second later ("after 1 s"). The ratios compare
deployments measured side by side in the same run. Run alone:
``.venv/bin/python -m bench.redis_deployments``.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from bench.common import CAL_READ, CONNECTION, fmt_ms, make_app, percentile, table
from bench.stampede import AUTH0_DELAY, WarningCounter, burst, slow_auth0
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from services.redis_servers import RedisCluster, RedisServer

USERS = 5
BURST = 64
#: How long each deployment's second app waits after start-up before its first burst.
PAUSES = {"at once": 0.0, "after 1 s": 1.0}
TCP, TLS, CLUSTER = "one node, TCP", "one node, TLS", "cluster, 3 masters"


def _deployments() -> dict[str, tuple[Any, str]]:
    """Start the three deployments; return each with the app's cache URL."""
    started: dict[str, tuple[Any, str]] = {}
    try:
        tcp = RedisServer()
        started[TCP] = (tcp, tcp.url)
        tls = RedisServer(tls=True)
        assert tls.tls is not None
        started[TLS] = (tls, f"{tls.url}?ssl_ca_certs={tls.tls.ca}")
        cluster = RedisCluster(3)
        started[CLUSTER] = (cluster, cluster.url)
    except BaseException:
        for server, _ in started.values():
            server.stop()
        raise
    return started


def _sign_in(emu: Emulator, prefix: str) -> list[tuple[str, str]]:
    """Sign :data:`USERS` new users in; return their user ids and session cookies.

    They sign in on an app of the same ``SECRET_KEY`` without a cache, so that the measured
    app is built right before its first burst.
    """
    client = make_app(emu).test_client()
    users = []
    for n in range(USERS):
        sub = login_as(client, emu, f"{prefix}-{n}@example.com", {CONNECTION: [CAL_READ]})
        cookie = client.get_cookie("session")
        assert cookie is not None
        users.append((sub, cookie.value))
    return users


def _measure(
    emu: Emulator, url: str, pause: float, users: list[tuple[str, str]], warnings: WarningCounter
) -> dict[str, Any]:
    """Build an app on ``url``, wait ``pause`` seconds, send each user's burst; return figures."""
    warnings.take()
    app = make_app(emu, TOKEN_VAULT_CACHE=url)
    time.sleep(pause)
    bursts = []
    for sub, cookie in users:
        statuses, latencies = burst(app, cookie, BURST)
        bursts.append(
            {
                "latencies": latencies,
                "errors": sum(1 for s in statuses if s != 200),
                "exchanges": emu.exchange_count(sub),
            }
        )
    first = bursts[0]["latencies"]
    every = [t for b in bursts for t in b["latencies"]]
    exchanges = [b["exchanges"] for b in bursts]
    return {
        "first_p50_s": percentile(first, 50),
        "first_p95_s": percentile(first, 95),
        "p50_s": percentile(every, 50),
        "p95_s": percentile(every, 95),
        "exchanges_per_user": sum(exchanges) / len(exchanges),
        "exchanges_max": max(exchanges),
        "errors": sum(b["errors"] for b in bursts),
        "warning_texts": dict(warnings.counts),
        "warnings": warnings.take(),
    }


def run() -> dict[str, dict[str, dict[str, Any]]]:
    """Measure every deployment at once and after a pause; return figures by pause, deployment."""
    results: dict[str, dict[str, dict[str, Any]]] = {pause: {} for pause in PAUSES}
    deployments = _deployments()
    try:
        with slow_auth0() as (emu, warnings):
            # Deployments side by side within each pause, so that a slow spell of this shared
            # machine weighs on the ratios as little as it can.
            for pause_name, pause in PAUSES.items():
                for n, (name, (_, url)) in enumerate(deployments.items()):
                    users = _sign_in(emu, f"deploy-{pause:g}-{n}")
                    results[pause_name][name] = _measure(emu, url, pause, users, warnings)
    finally:
        for server, _ in deployments.values():
            server.stop()
    return results


#: The columns of the deployments table.
HEADERS = [
    "cache",
    "first burst",
    "1st p50 ms",
    "1st p95 ms",
    f"all {USERS} p50 ms",
    f"all {USERS} p95 ms",
    "exchanges / user",
    "errors",
    "warnings",
]


def rows(results: dict[str, dict[str, dict[str, Any]]]) -> list[list[Any]]:
    """Return one table row per deployment and pause."""
    return [
        [
            name,
            pause,
            fmt_ms(r["first_p50_s"]),
            fmt_ms(r["first_p95_s"]),
            fmt_ms(r["p50_s"]),
            fmt_ms(r["p95_s"]),
            f"{r['exchanges_per_user']:.2f} (max {r['exchanges_max']})",
            r["errors"],
            r["warnings"],
        ]
        for pause, by_name in results.items()
        for name, r in by_name.items()
    ]


def _p50_ratio(a: dict[str, Any], b: dict[str, Any]) -> str:
    first = a["first_p50_s"] / b["first_p50_s"]
    return f"{first:.2f} (first burst), {a['p50_s'] / b['p50_s']:.2f} (all)"


def ratios(results: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Return the side-by-side comparisons, one line per pause."""
    lines = []
    for pause, r in results.items():
        tcp, tls, cluster = r[TCP], r[TLS], r[CLUSTER]
        lines.append(
            f"  first burst {pause}: TLS p50 / TCP p50 = {_p50_ratio(tls, tcp)}; cluster p50 / one "
            f"node p50 = {_p50_ratio(cluster, tcp)}; exchanges per user, cluster vs one node = "
            f"{cluster['exchanges_per_user']:.2f} vs {tcp['exchanges_per_user']:.2f}"
        )
    return lines


def report(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Return the printed summary."""
    head = (
        f"(i) cold stampede of {BURST} requests per user, {USERS} users, per Redis deployment "
        f"(Auth0 answers in {AUTH0_DELAY * 1000:.0f} ms; target: 1 exchange per user). First "
        "burst 'at once': sent as soon as the app is built; 'after 1 s': once the connections "
        "opened ahead at start-up are ready"
    )
    texts: Counter[str] = Counter()
    for by_name in results.values():
        for r in by_name.values():
            texts.update(r["warning_texts"])
    notes = [f"  warning x{n}: {text}" for text, n in texts.most_common(3)]
    return "\n".join([head, table(HEADERS, rows(results)), *ratios(results), *notes])


if __name__ == "__main__":
    print(report(run()))
