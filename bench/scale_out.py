"""Scale-out: the deployment example under gunicorn, 4 workers, 1 and 2 instances on one Redis.

Two gunicorn instances (``deploy/gunicorn.conf.py``, 4 gthread workers each, on two ports)
stand in for two hosts; they share one Redis as the provider-token cache and one emulator as
Auth0. USERS users are signed in with ``login_as`` on an app with the same ``SECRET_KEY``, and
the load generator rotates through their cookies. Phases:

1. cold start across both hosts: every user's first requests land on 8 processes at once;
   exchanges per user (target: exactly 1);
2. cross-host stampede: STAMPEDE connections for one new user on both hosts at once (target 1);
3. requests/s of ``/decorated`` against ``/bare`` at several concurrencies on one instance and
   at the top one on both (target ratio >= 0.9), latency percentiles, Redis commands per
   request, errors (target 0); PAIRS pairs of adjacent rounds, in alternating order, each
   give a ratio, and the median is reported, so the machine's slow spells hit both routes;
4. token lifetime: provider tokens live LIFETIME s; under steady load on both hosts for
   RENEW_FOR s each user's token is renewed once per lifetime (target: 1 exchange per user per
   lifetime).

Run alone: ``.venv/bin/python -m bench.scale_out`` (``BENCH_LOADGEN=python`` forces the Python
load generator).
"""

from __future__ import annotations

import http.client
import math
import os
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import (
    BUILD,
    CAL_READ,
    CONNECTION,
    ROOT,
    SECRET_KEY,
    RedisCounter,
    fmt_ms,
    free_port,
    make_app,
    stop_process,
    table,
    wait_until,
)
from bench.loadgen import LoadGenerator, LoadResult, make_loadgen
from flask_token_vault._cache import effective_leeway
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from services.redis_servers import RedisServer

USERS = 20
WORKERS = 4
THREADS = 8
INSTANCES = 2
CONCURRENCY = (1, 4, 16, 64)
ROUND_SECONDS = 2.0
PAIRS = 5
COLD_SECONDS = 3.0
STAMPEDE = 256
LIFETIME = 8
RENEW_FOR = 14.0
LEEWAY = 60.0  # TOKEN_VAULT_CACHE_LEEWAY's default; clamped to a quarter of LIFETIME


class Gunicorn:
    """One gunicorn instance of the deployment example, on its own port."""

    def __init__(self, name: str, env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.log = (logdir / f"gunicorn-{name}.log").open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(ROOT / "deploy" / "gunicorn.conf.py"),
                "bench.scale_app:app",
            ],
            cwd=ROOT,
            env={**env, "GUNICORN_BIND": f"127.0.0.1:{self.port}"},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with its workers
        )

    def ready(self) -> bool:
        """Tell whether /healthz answers 200 (raise if gunicorn died)."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"gunicorn {self.name} exited; see {self.log.name}")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def cpu_seconds(self) -> float | None:
        """Return the CPU time (user + system) its workers have used, or None without /proc."""
        total = 0
        try:
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue  # the process ended meanwhile
                if int(fields[1]) == self.proc.pid:  # ppid: a worker of this master
                    total += int(fields[11]) + int(fields[12])  # utime + stime, in ticks
        except OSError:
            return None
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """Stop the master and its workers."""
        stop_process(self.proc)
        self.log.close()


def gunicorn_env(emu: Emulator, redis_url: str) -> dict[str, str]:
    """Return the environment of a gunicorn instance of the deployment example on this bench."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN", "WEB_"))},
        "PYTHONPATH": str(ROOT),
        "SECRET_KEY": SECRET_KEY,
        "AUTH0_DOMAIN": emu.url,
        "AUTH0_CLIENT_ID": emu.client_id,
        "AUTH0_CLIENT_SECRET": emu.client_secret,
        "REDIS_URL": redis_url,
        "WEB_CONCURRENCY": str(WORKERS),
        "GUNICORN_THREADS": str(THREADS),
        "GUNICORN_LOGLEVEL": "warning",
        "SESSION_COOKIE_SECURE": "false",
    }


def _exchanges(emu: Emulator) -> Counter[str]:
    rows = emu.stats()["exchanges"]["by_user_connection"]
    return Counter({r["user_id"]: r["count"] for r in rows if r["connection"] == CONNECTION})


def _sign_in(emu: Emulator, emails: list[str]) -> dict[str, str]:
    """Return user id -> session cookie, made on an app with the deployment's SECRET_KEY."""
    app = make_app(emu)
    cookies: dict[str, str] = {}
    for email in emails:
        client = app.test_client()
        sub = login_as(client, emu, email, {CONNECTION: [CAL_READ]})
        cookie = client.get_cookie("session")
        assert cookie is not None
        cookies[sub] = cookie.value
    return cookies


def _run(
    load: LoadGenerator,
    ports: list[int],
    path: str,
    cookies: list[str],
    connections: int,
    seconds: float,
) -> LoadResult:
    return load.run(ports, path, cookies, connections, seconds)


def _cpu(targets: list[Gunicorn]) -> float | None:
    values = [t.cpu_seconds() for t in targets]
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def _compare(
    load: LoadGenerator,
    targets: list[Gunicorn],
    cookies: list[str],
    connections: int,
    label: str,
    counter: RedisCounter,
) -> dict[str, Any]:
    """Run PAIRS rounds of /bare, /signed-in and /decorated back to back (order rotating).

    The ratio that matters is decorated / signed-in: both read the same session, so what is
    left is the extension's work. Besides requests/s, the workers' CPU time per request is read
    from /proc: it is much less disturbed by other work on a shared machine than throughput,
    so its ratio is a steadier estimate of what requests/s would be on a machine of its own.
    """
    ports = [t.port for t in targets]
    paths = ("/bare", "/signed-in", "/decorated")
    got_all: dict[str, list[LoadResult]] = {p: [] for p in paths}
    ratios: list[float] = []
    ratios_bare: list[float] = []
    cpu: dict[str, list[float]] = {p: [] for p in paths}
    commands = 0
    for pair in range(PAIRS):
        order = paths[pair % 3 :] + paths[: pair % 3]
        got: dict[str, LoadResult] = {}
        for path in order:
            counter.reset()
            before = _cpu(targets)
            got[path] = _run(load, ports, path, cookies, connections, ROUND_SECONDS)
            after = _cpu(targets)
            if before is not None and after is not None and got[path].requests:
                cpu[path].append((after - before) / got[path].requests)
            if path == "/decorated":
                commands += counter.total()
        for path in paths:
            got_all[path].append(got[path])
        if got["/signed-in"].rps:
            ratios.append(got["/decorated"].rps / got["/signed-in"].rps)
        if got["/bare"].rps:
            ratios_bare.append(got["/decorated"].rps / got["/bare"].rps)

    def med(values: list[float]) -> float:
        return statistics.median(values)

    bare, signed, deco = (got_all[p] for p in paths)
    return {
        "setup": label,
        "connections": connections,
        "bare_rps": med([r.rps for r in bare]),
        "signed_in_rps": med([r.rps for r in signed]),
        "decorated_rps": med([r.rps for r in deco]),
        "ratio": med(ratios),
        "ratios": ratios,
        "ratio_bare": med(ratios_bare),
        "bare_p50_s": med([r.at(50) for r in bare]),
        "bare_p99_s": med([r.at(99) for r in bare]),
        "signed_in_p50_s": med([r.at(50) for r in signed]),
        "signed_in_p99_s": med([r.at(99) for r in signed]),
        "decorated_p50_s": med([r.at(50) for r in deco]),
        "decorated_p99_s": med([r.at(99) for r in deco]),
        "errors": sum(r.errors for r in bare + signed + deco),
        "requests": sum(r.requests for r in bare + signed + deco),
        "redis_per_request": commands / max(1, sum(r.requests for r in deco)),
        "bare_cpu_us": med(cpu["/bare"]) * 1e6 if cpu["/bare"] else None,
        "signed_in_cpu_us": med(cpu["/signed-in"]) * 1e6 if cpu["/signed-in"] else None,
        "decorated_cpu_us": med(cpu["/decorated"]) * 1e6 if cpu["/decorated"] else None,
    }


def run(prefer: str | None = None) -> dict[str, Any]:
    """Run every phase; return the figures."""
    prefer = prefer or os.environ.get("BENCH_LOADGEN", "auto")
    BUILD.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    server = RedisServer()
    counter = RedisCounter(server.url)
    instances: list[Gunicorn] = []
    load: LoadGenerator | None = None
    try:
        with Emulator() as emu:
            emails = [f"scale-{n:02d}@example.com" for n in range(USERS)]
            by_user = _sign_in(emu, emails)
            cookies = list(by_user.values())
            env = gunicorn_env(emu, server.url)
            for n in range(INSTANCES):
                instances.append(Gunicorn(chr(ord("A") + n), env, BUILD))
            for inst in instances:
                wait_until(inst.ready, 60, f"gunicorn {inst.name}")
            load = make_loadgen(BUILD, prefer)
            results["loadgen"] = load.name
            both = [inst.port for inst in instances]
            _run(load, both, "/bare", cookies, 8, 1.0)  # warm up workers and the generator

            # 1. cold start across hosts
            counter.flush()
            before = _exchanges(emu)
            cold = _run(load, both, "/decorated", cookies, 64, COLD_SECONDS)
            per_user = [(_exchanges(emu) - before)[sub] for sub in by_user]
            results["cold"] = {
                "users": USERS,
                "processes": WORKERS * INSTANCES,
                "requests": cold.requests,
                "errors": cold.errors,
                "exchanges": sum(per_user),
                "per_user_min": min(per_user),
                "per_user_max": max(per_user),
            }

            # 2. cross-host stampede for one new user
            lone = _sign_in(emu, ["scale-stampede@example.com"])
            before = _exchanges(emu)
            burst = _run(load, both, "/decorated", list(lone.values()), STAMPEDE, 2.0)
            sub = next(iter(lone))
            results["stampede"] = {
                "connections": STAMPEDE,
                "requests": burst.requests,
                "errors": burst.errors,
                "exchanges": (_exchanges(emu) - before)[sub],
                "p50_s": burst.at(50),
                "p99_s": burst.at(99),
            }

            # 3. throughput, decorated against bare
            rows = [
                _compare(
                    load, instances[:1], cookies, c, f"1 instance x {WORKERS} workers", counter
                )
                for c in CONCURRENCY
            ]
            rows.append(
                _compare(
                    load,
                    instances,
                    cookies,
                    CONCURRENCY[-1],
                    f"{INSTANCES} instances x {WORKERS} workers",
                    counter,
                )
            )
            results["throughput"] = rows

            # 4. renewal once per token lifetime under steady load; new users, so that no
            # process holds a token of theirs yet and every clock starts together
            emu.set_provider_token_ttl(CONNECTION, LIFETIME)
            fresh = _sign_in(emu, [f"scale-life-{n:02d}@example.com" for n in range(USERS)])
            before = _exchanges(emu)
            steady = _run(load, both, "/decorated", list(fresh.values()), 32, RENEW_FOR)
            per_user = [(_exchanges(emu) - before)[sub] for sub in fresh]
            usable = math.floor(LIFETIME - effective_leeway(LIFETIME, LEEWAY))
            lifetimes = math.ceil(RENEW_FOR / usable)
            results["lifetime"] = {
                "token_lifetime_s": LIFETIME,
                "cached_for_s": usable,
                "seconds": RENEW_FOR,
                "lifetimes": lifetimes,
                "requests": steady.requests,
                "errors": steady.errors,
                "exchanges": sum(per_user),
                "per_user_min": min(per_user),
                "per_user_max": max(per_user),
                "per_user_per_lifetime": sum(per_user) / USERS / lifetimes,
            }
            emu.set_provider_token_ttl(CONNECTION, 3600)
    finally:
        if load is not None:
            load.close()
        for inst in instances:
            inst.stop()
        counter.close()
        server.stop()
    return results


def cpu_ratio(row: dict[str, Any]) -> float | None:
    """Return signed-in / decorated worker CPU per request (the rps ratio of a CPU-bound server)."""
    if not row.get("signed_in_cpu_us") or not row.get("decorated_cpu_us"):
        return None
    return float(row["signed_in_cpu_us"] / row["decorated_cpu_us"])


def cpu_text(row: dict[str, Any]) -> str:
    """Return ``signed-in/decorated (ratio)`` worker CPU per request, or ``-`` without /proc."""
    ratio = cpu_ratio(row)
    if ratio is None:
        return "-"
    return f"{row['signed_in_cpu_us']:.0f}/{row['decorated_cpu_us']:.0f} ({ratio:.2f})"


#: The columns of the throughput table, printed and on the docs page alike.
THROUGHPUT_HEADERS = [
    "setup",
    "conns",
    "bare rps",
    "signed-in rps",
    "decorated rps",
    "decorated / signed-in",
    "decorated / bare",
    "signed-in p50/p99 ms",
    "decorated p50/p99 ms",
    "worker CPU µs/req, signed-in/decorated (ratio)",
    "Redis cmds/req",
    "errors",
]


def throughput_rows(results: dict[str, Any]) -> list[list[Any]]:
    """Return one row of the throughput table per setup and concurrency."""
    return [
        [
            r["setup"],
            r["connections"],
            f"{r['bare_rps']:.0f}",
            f"{r['signed_in_rps']:.0f}",
            f"{r['decorated_rps']:.0f}",
            f"{r['ratio']:.2f}",
            f"{r['ratio_bare']:.2f}",
            f"{fmt_ms(r['signed_in_p50_s'])}/{fmt_ms(r['signed_in_p99_s'])}",
            f"{fmt_ms(r['decorated_p50_s'])}/{fmt_ms(r['decorated_p99_s'])}",
            cpu_text(r),
            f"{r['redis_per_request']:.2f}",
            r["errors"],
        ]
        for r in results["throughput"]
    ]


def report(results: dict[str, Any]) -> str:
    """Return the printed summary."""
    cold, stamp, life = results["cold"], results["stampede"], results["lifetime"]
    lines = [
        f"(c) scale-out: gunicorn gthread {WORKERS} workers x {THREADS} threads per instance, "
        f"one Redis, load generator: {results['loadgen']}, median of {PAIRS} rounds of the three "
        f"routes back to back, {ROUND_SECONDS:g} s each (target decorated / signed-in >= 0.95)",
    ]
    lines.append(table(THROUGHPUT_HEADERS, throughput_rows(results)))
    lines.append(
        f"  cold start on {cold['processes']} processes (2 hosts), {cold['users']} users: "
        f"{cold['exchanges']} exchanges = {cold['exchanges'] / cold['users']:.2f} per user "
        f"(min {cold['per_user_min']}, max {cold['per_user_max']}), "
        f"{cold['errors']} errors in {cold['requests']} requests"
    )
    lines.append(
        f"  cross-host stampede, {stamp['connections']} connections, one user: "
        f"{stamp['exchanges']} exchange(s), {stamp['errors']} errors, "
        f"p50 {fmt_ms(stamp['p50_s'])} ms, p99 {fmt_ms(stamp['p99_s'])} ms"
    )
    lines.append(
        f"  token lifetime {life['token_lifetime_s']} s (cached {life['cached_for_s']} s), "
        f"{life['seconds']:g} s of load = {life['lifetimes']} lifetimes: "
        f"{life['exchanges']} exchanges for {USERS} users = "
        f"{life['per_user_per_lifetime']:.2f} per user per lifetime "
        f"(per user min {life['per_user_min']}, max {life['per_user_max']}), "
        f"{life['errors']} errors"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run()))
