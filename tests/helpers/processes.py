"""Run the app concurrently: threads in this process, workers in processes of their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flask import Flask

from tests.helpers import ROOT

#: The emulator's attributes :func:`make_app` reads.
_APP_READS = ("url", "client_id", "client_secret", "google_api_base", "graph_api_base")


def hammer(app: Flask, cookie: str, n: int, path: str = "/calendar") -> list[int]:
    """Send ``n`` requests at once from ``n`` threads with one session cookie; return statuses."""
    barrier = threading.Barrier(n)
    statuses: list[int] = [0] * n

    def run(i: int) -> None:
        client = app.test_client()
        client.set_cookie("session", cookie)
        barrier.wait()
        statuses[i] = client.get(path).status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def emulator_args(emu: Any) -> dict[str, str]:
    """Return what a worker process needs to build :func:`make_app` for this emulator.

    The worker stands them up as the emulator (a namespace with these attributes).
    """
    return {name: getattr(emu, name) for name in _APP_READS}


def spawn_worker(
    mode: str, args: dict[str, Any], *, first_on_path: str | None = None, stdin: bool = False
) -> subprocess.Popen[str]:
    """Start ``python -m tests.helpers._worker MODE ARGS`` in a process of its own.

    ``first_on_path`` goes before everything on ``sys.path`` (another version of a package);
    with ``stdin`` the test can write to the worker (see :func:`start_together`).
    """
    path = [first_on_path] if first_on_path else []
    return subprocess.Popen(
        [sys.executable, "-m", "tests.helpers._worker", mode, json.dumps(args)],
        cwd=ROOT,
        stdin=subprocess.PIPE if stdin else None,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([*path, str(ROOT)])},
    )


def start_together(workers: list[subprocess.Popen[str]], delay: float = 0.3) -> float:
    """Wait until every worker says it is ready, then tell all of them when to start.

    However long each took to import and build its app on a busy machine, they start at the
    same wall-clock time, which is returned.
    """
    for worker in workers:
        assert worker.stdout is not None
        assert json.loads(worker.stdout.readline()) == {"ready": True}
    start_at = time.time() + delay
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(f"{start_at}\n")
        worker.stdin.flush()
    return start_at


def worker_output(worker: subprocess.Popen[str], timeout: float = 120) -> Any:
    """Wait for a worker and return the JSON of its last line of output (kill it if late)."""
    try:
        out, _ = worker.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.communicate()
        raise
    return json.loads(out.strip().splitlines()[-1])


def environment_without(*prefixes: str) -> dict[str, str]:
    """Return this process's environment less the variables whose names start with ``prefixes``.

    By default the Auth0 and Flask settings (``AUTH0_``, ``FLASK_``): a fresh terminal's.
    """
    dropped = prefixes or ("AUTH0_", "FLASK_")
    return {name: value for name, value in os.environ.items() if not name.startswith(dropped)}


def run_to_end(
    args: Sequence[str],
    *,
    timeout: float,
    cwd: Path | str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` to their end, output captured as text; a failure is returned, not raised."""
    return subprocess.run(
        list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
