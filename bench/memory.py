"""Memory: what 10,000 distinct users leave in one process's memory.

The app runs in a process of its own (the emulator, which holds every user's tokens, stays in
this one). It takes its resident set size after a warm-up with a few users, serves one decorated
request for each of USERS users (each an exchange, then a token in its near cache), collects
garbage and measures again. Per-user state in the process is bounded: the near cache keeps at
most ``TOKEN_VAULT_LOCAL_CACHE_MAX_USERS`` users (a bound on memory, not an LRU; see the
deployment guide), the key memo a few thousand entries. Target: growth < 50 MB. Run alone:
``.venv/bin/python -m bench.memory``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from bench.common import BUILD, ROOT
from bench.scale_out import _sign_in
from flask_token_vault_emulator import Emulator

USERS = 10_000
WARM_UP = 200
TARGET_MB = 50.0

_CHILD = """
import gc, json, sys, threading
from types import SimpleNamespace
from bench.common import make_app

def rss_kb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

args = json.loads(sys.stdin.read())
app = make_app(SimpleNamespace(**args["emulator"]))
cookies = args["cookies"]

def serve(part):
    client = app.test_client()
    for cookie in part:
        client.set_cookie("session", cookie)
        assert client.get("/decorated").status_code == 200

serve(cookies[: args["warm_up"]])
gc.collect()
before = rss_kb()
rest = cookies[args["warm_up"] :]
threads = [threading.Thread(target=serve, args=(rest[i::8],)) for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
gc.collect()
print(json.dumps({"before_kb": before, "after_kb": rss_kb(), "served": len(cookies)}))
"""


def run() -> dict[str, Any]:
    """Serve USERS users in a child process; return its RSS before and after."""
    BUILD.mkdir(parents=True, exist_ok=True)
    with Emulator() as emu:
        cookies = list(_sign_in(emu, [f"mem-{n:05d}@example.com" for n in range(USERS)]).values())
        payload = {
            "emulator": {
                "url": emu.url,
                "client_id": emu.client_id,
                "client_secret": emu.client_secret,
            },
            "cookies": cookies,
            "warm_up": WARM_UP,
        }
        out = subprocess.run(
            [sys.executable, "-c", _CHILD],
            input=json.dumps(payload),
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            check=True,
            timeout=900,
        )
        exchanges = emu.exchange_count()
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    growth_mb = (figures["after_kb"] - figures["before_kb"]) / 1024
    return {
        "users": USERS,
        "exchanges": exchanges,
        "before_mb": figures["before_kb"] / 1024,
        "after_mb": figures["after_kb"] / 1024,
        "growth_mb": growth_mb,
        "target_mb": TARGET_MB,
    }


def report(results: dict[str, Any]) -> str:
    """Return the printed summary."""
    r = results
    return (
        f"(g) RSS of one app process serving {r['users']} distinct users (one exchange each: "
        f"{r['exchanges']}): {r['before_mb']:.1f} MB after warm-up, {r['after_mb']:.1f} MB after, "
        f"growth {r['growth_mb']:.1f} MB (target < {r['target_mb']:g} MB)"
    )


if __name__ == "__main__":
    print(report(run()))
