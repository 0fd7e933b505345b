"""A separate process for multi-process tests: same app, same cookie, its own threads.

Usage: python -m tests.helpers._worker MODE JSON_ARGS. Prints one JSON line with the results.
Modes: ``fetch`` (N threads GET /calendar at a given wall-clock time), ``hold`` (take the
Redis single-flight lock for the user's key and sleep until killed, or ``hold_seconds`` then let
go), ``load`` (one thread per session cookie GETs /calendar at a steady pace for a while,
starting when the test says, see ``processes.start_together``),
``peek`` (count the users' tokens this app still finds in the cache) and ``timed`` (requests in
a row, with their latencies and the redis-py version in use).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from types import SimpleNamespace
from typing import Any

from flask_token_vault import signals
from flask_token_vault._cache import Slot
from tests.helpers.apps import make_app


def _app(args: dict[str, Any]) -> Any:
    target = SimpleNamespace(**args["emulator"])
    return make_app(target, TOKEN_VAULT_CACHE=args["redis_url"], **args.get("config", {}))


def fetch(args: dict[str, Any]) -> dict[str, Any]:
    app = _app(args)
    results: list[Any] = [None] * args["threads"]

    def run(i: int) -> None:
        client = app.test_client()
        client.set_cookie("session", args["cookie"])
        time.sleep(max(0.0, args["start_at"] - time.time()))
        started = time.monotonic()
        answer = client.get("/calendar")
        results[i] = [answer.status_code, answer.get_json(), time.monotonic() - started]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(args["threads"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"results": results}


def hold(args: dict[str, Any]) -> dict[str, Any]:
    app = _app(args)
    state = app.extensions["token_vault"]
    slot = Slot(args["sub"], "google-oauth2", None, tuple(sorted(args["scopes"])))
    key = state.cache.key_for(slot)
    with state.cache.lock(key) as acquired:
        print(json.dumps({"acquired": acquired}), flush=True)
        time.sleep(args.get("hold_seconds", 3600))
    return {"released": True}


def load(args: dict[str, Any]) -> dict[str, Any]:
    """Each user GETs /calendar every ``pace`` seconds for ``duration`` seconds."""
    app = _app(args)
    opened: list[float] = []
    signals.cache_unavailable.connect(
        lambda sender, **kw: opened.append(time.time()), app, weak=False
    )
    cookies: list[str] = args["cookies"]
    results: list[list[list[float]]] = [[] for _ in cookies]
    # Ready: the test answers with the wall-clock time at which every worker starts.
    print(json.dumps({"ready": True}), flush=True)
    start_at = float(sys.stdin.readline())
    duration, pace = args["duration"], args["pace"]

    def run(i: int) -> None:
        client = app.test_client()
        client.set_cookie("session", cookies[i])
        time.sleep(max(0.0, start_at - time.time()))
        while time.time() < start_at + duration:
            began = time.time()
            status = client.get("/calendar").status_code
            results[i].append([began, time.time() - began, status])
            time.sleep(max(0.0, pace - (time.time() - began)))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(cookies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"results": results, "breaker_opened": opened}


def peek(args: dict[str, Any]) -> dict[str, Any]:
    """Count the users' tokens this app (a fresh process: nothing in memory) finds in the cache."""
    app = _app(args)
    cache = app.extensions["token_vault"].cache
    scopes = tuple(sorted(args["scopes"]))
    slots = [Slot(sub, "google-oauth2", None, scopes) for sub in args["subs"]]
    return {"found": sum(cache.get(slot) is not None for slot in slots)}


def timed(args: dict[str, Any]) -> dict[str, Any]:
    """GET /calendar ``requests`` times in a row; report statuses, latencies, redis-py version."""
    import redis

    app = _app(args)
    client = app.test_client()
    client.set_cookie("session", args["cookie"])
    statuses, latencies = [], []
    for _ in range(args["requests"]):
        started = time.monotonic()
        statuses.append(client.get("/calendar").status_code)
        latencies.append(time.monotonic() - started)
    return {"version": redis.__version__, "statuses": statuses, "latencies": latencies}


if __name__ == "__main__":
    mode, raw = sys.argv[1], sys.argv[2]
    modes = {
        "fetch": fetch,
        "hold": hold,
        "load": load,
        "peek": peek,
        "timed": timed,
    }
    out = modes[mode](json.loads(raw))
    print(json.dumps(out), flush=True)
