"""Many users at once: 5,000 distinct users cold-starting against one instance on Redis.

One gunicorn instance of the deployment example (4 gthread workers, as in ``scale_out``) and
one Redis. CROWD users are signed in; then 64 client threads send each user's requests
(REPEAT per user, shuffled so that a user's requests overlap with others') over keep-alive
connections. Targets: exactly one exchange per user, no error; p50/p99 latency printed. Run
alone: ``.venv/bin/python -m bench.crowd``.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections import Counter
from typing import Any

from bench.common import BUILD, CONNECTION, percentile, table, wait_until
from bench.scale_out import WORKERS, Gunicorn, _sign_in, gunicorn_env
from flask_token_vault_emulator import Emulator
from services.redis_servers import RedisServer

CROWD = 5000
REPEAT = 3
CLIENTS = 64


def _send(port: int, jobs: list[str], out: list[tuple[float, int]], lock: threading.Lock) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    mine: list[tuple[float, int]] = []
    try:
        for cookie in jobs:
            start = time.perf_counter()
            try:
                conn.request(
                    "GET",
                    "/decorated",
                    headers={"Cookie": f"session={cookie}", "Accept": "application/json"},
                )
                answer = conn.getresponse()
                answer.read()
                status = answer.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status = 0
            mine.append((time.perf_counter() - start, status))
    finally:
        conn.close()
        with lock:
            out.extend(mine)


def run() -> dict[str, Any]:
    """Sign the crowd in, send its requests, count exchanges per user."""
    BUILD.mkdir(parents=True, exist_ok=True)
    server = RedisServer()
    instance: Gunicorn | None = None
    try:
        with Emulator() as emu:
            started = time.monotonic()
            by_user = _sign_in(emu, [f"crowd-{n:05d}@example.com" for n in range(CROWD)])
            signed_in_s = time.monotonic() - started
            env = gunicorn_env(emu, server.url)
            instance = Gunicorn("crowd", env, BUILD)
            wait_until(instance.ready, 60, "gunicorn crowd")
            jobs = [cookie for cookie in by_user.values() for _ in range(REPEAT)]
            random.Random(7).shuffle(jobs)
            shares = [jobs[i::CLIENTS] for i in range(CLIENTS)]
            results: list[tuple[float, int]] = []
            lock = threading.Lock()
            before = emu.stats()["exchanges"]["total"]
            started = time.monotonic()
            threads = [
                threading.Thread(target=_send, args=(instance.port, share, results, lock))
                for share in shares
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            seconds = time.monotonic() - started
            rows = emu.stats()["exchanges"]["by_user_connection"]
            per_user = Counter(
                {r["user_id"]: r["count"] for r in rows if r["connection"] == CONNECTION}
            )
            counts = [per_user[sub] for sub in by_user]
            latencies = [lat for lat, _ in results]
            return {
                "users": CROWD,
                "requests": len(results),
                "errors": sum(status != 200 for _, status in results),
                "exchanges": emu.stats()["exchanges"]["total"] - before,
                "per_user_min": min(counts),
                "per_user_max": max(counts),
                "p50_s": percentile(latencies, 50),
                "p99_s": percentile(latencies, 99),
                "seconds": seconds,
                "sign_in_seconds": signed_in_s,
            }
    finally:
        if instance is not None:
            instance.stop()
        server.stop()


def report(results: dict[str, Any]) -> str:
    """Return the printed summary."""
    r = results
    return "\n".join(
        [
            f"(h) {r['users']} distinct users cold-starting on one instance ({WORKERS} workers), "
            f"Redis cache, {REPEAT} overlapping requests each from {CLIENTS} clients "
            "(target: exactly 1 exchange per user, 0 errors)",
            table(
                ["users", "requests", "errors", "exchanges", "per user", "p50 ms", "p99 ms", "s"],
                [
                    [
                        r["users"],
                        r["requests"],
                        r["errors"],
                        r["exchanges"],
                        f"{r['per_user_min']}-{r['per_user_max']}",
                        f"{r['p50_s'] * 1000:.1f}",
                        f"{r['p99_s'] * 1000:.0f}",
                        f"{r['seconds']:.1f}",
                    ]
                ],
            ),
        ]
    )


if __name__ == "__main__":
    print(report(run()))
