"""What the benchmarks share: the bench app, percentiles, Redis counters, child processes."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import redis as redis_lib
from flask import Flask, abort, jsonify, session

from flask_token_vault import TokenVault, get_provider_token, provider_token_required
from flask_token_vault._session import SESSION_KEY
from flask_token_vault_emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks"
BUILD = ROOT / "build" / "bench"
SECRET_KEY = "bench-secret-key-0123456789abcdef-not-for-production"
CAL_READ = "https://www.googleapis.com/auth/calendar.readonly"
CONNECTION = "google-oauth2"


def emulator_config(emu: Emulator) -> dict[str, Any]:
    """Return the config keys that point an app at the emulator, with the bench's secret."""
    return {
        "SECRET_KEY": SECRET_KEY,
        "AUTH0_DOMAIN": emu.url,
        "AUTH0_CLIENT_ID": emu.client_id,
        "AUTH0_CLIENT_SECRET": emu.client_secret,
    }


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class KeepAliveEmulator:
    """The emulator's app served by waitress, which keeps HTTP/1.1 connections open.

    The emulator's own server (werkzeug's) answers every request with ``Connection: close``, so
    against it no client can reuse a connection, whereas Auth0 keeps them alive. Serving the
    same app (same tenant state, same counters) with waitress lets the benchmark see whether a
    client reuses its connections to Auth0.
    """

    def __init__(self, threads: int = 8) -> None:
        import waitress

        port = free_port()
        self.emulator = Emulator(port=port)
        self.server: Any = waitress.create_server(
            self.emulator.app, host="127.0.0.1", port=port, threads=threads
        )
        self.thread = threading.Thread(target=self.server.run, name="bench-waitress", daemon=True)

    def __enter__(self) -> Emulator:
        self.thread.start()
        return self.emulator

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        def close_all() -> None:  # runs in the server's loop thread, which then ends
            for channel in list(self.server._map.values()):
                channel.close()

        self.server.trigger.pull_trigger(close_all)
        self.thread.join(10)
        self.server.task_dispatcher.shutdown()


def add_bench_routes(app: Flask) -> None:
    """Add ``/bare``, ``/signed-in`` and ``/decorated``: one view, three ways.

    ``/bare`` reads no session (hello world). ``/signed-in`` is the baseline a real app has: a
    minimal "signed-in" check that reads the same session (the Flask-Login pattern: the user's
    id from the session, 401 without one). ``/decorated`` asks for the provider token twice
    (decorator, then the view), as real views do: the second call is the per-request memo.
    None calls the provider, so the differences are the session's cost and the extension's.
    """

    def bare() -> Any:
        return jsonify(ok=True)

    def signed_in() -> Any:
        record = session.get(SESSION_KEY)
        if not isinstance(record, dict) or not record.get("sub"):
            abort(401)
        return jsonify(ok=True)

    @provider_token_required(CONNECTION, scopes=[CAL_READ])
    def decorated() -> Any:
        get_provider_token(CONNECTION)
        return jsonify(ok=True)

    app.add_url_rule("/bare", "bench_bare", bare)
    app.add_url_rule("/signed-in", "bench_signed_in", signed_in)
    app.add_url_rule("/decorated", "bench_decorated", decorated)


def make_app(emu: Emulator, **config: Any) -> Flask:
    """Build a minimal app using the extension against the emulator, with the bench routes."""
    app = Flask(__name__)
    app.config.update(emulator_config(emu), TOKEN_VAULT_CONNECTIONS=[CONNECTION], **config)
    TokenVault(app)
    add_bench_routes(app)
    return app


def percentile(values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100) by the nearest-rank method."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def fmt_ms(seconds: float) -> str:
    """Format a duration in seconds as milliseconds with a sensible precision."""
    ms = seconds * 1000
    return f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


class RedisCounter:
    """Count the commands a Redis server ran between :meth:`reset` and :meth:`commands`."""

    def __init__(self, url: str) -> None:
        self.client = redis_lib.Redis.from_url(url)

    def reset(self) -> None:
        """Zero the server's per-command counters."""
        self.client.config_resetstat()

    def commands(self) -> dict[str, int]:
        """Return calls per command since :meth:`reset`, less this query and the reset."""
        stats = self.client.info("commandstats")
        counts = {
            name.removeprefix("cmdstat_"): int(value["calls"])
            for name, value in stats.items()
            if isinstance(value, dict)
        }
        for own in ("info", "config", "config|resetstat"):
            counts.pop(own, None)
        return counts

    def total(self) -> int:
        """Return the number of commands since :meth:`reset`, the counter's own excluded."""
        return sum(self.commands().values())

    def flush(self) -> None:
        """Empty the database: a cold cache."""
        self.client.flushdb()

    def close(self) -> None:
        """Close the counter's connection."""
        self.client.close()


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """Stop a child process (and its own children): SIGTERM, then SIGKILL after ``timeout``."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.wait(5)


def wait_until(check: Any, timeout: float, what: str, interval: float = 0.1) -> None:
    """Call ``check()`` until it returns true, or raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Return a plain-text table with right-aligned columns (the first left-aligned)."""
    cells = [list(map(str, headers)), *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        parts = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Return a Markdown table."""
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)
