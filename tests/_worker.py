"""A separate process for multi-process tests: same app, same cookie, its own threads.

Usage: python -m tests._worker MODE JSON_ARGS. Prints one JSON line with the results.
Modes: ``fetch`` (N threads GET /calendar at a given wall-clock time), ``hold`` (take the
Redis single-flight lock for the user's key and sleep until killed).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from types import SimpleNamespace
from typing import Any

from flask_token_vault.cache import Slot
from tests.helpers import make_app


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
        answer = client.get("/calendar")
        results[i] = [answer.status_code, answer.get_json()]

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
    with state.cache.lock(state.cache.key_for(slot)) as acquired:
        print(json.dumps({"acquired": acquired}), flush=True)
        time.sleep(3600)
    return {}


if __name__ == "__main__":
    mode, raw = sys.argv[1], sys.argv[2]
    out = {"fetch": fetch, "hold": hold}[mode](json.loads(raw))
    print(json.dumps(out), flush=True)
