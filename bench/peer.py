"""The same work with Auth0's own server SDK (auth0-server-python) as the peer figure.

Both libraries get a provider access token for one signed-in user from the same emulator:

* ours: ``get_provider_token("google-oauth2")`` in a fresh request context per call (a new
  request of the same session each time), in-process cache;
* peer: ``ServerClient.get_access_token_for_connection({"connection": "google-oauth2"})`` with a
  state store holding the same user's session (the SDK keeps connection tokens in the session).

For each: exchanges per 100 sequential calls, time per call, TCP connections opened to Auth0
(the emulator, served here by waitress with keep-alive as Auth0 does, sees each request's client
port), and exchanges when 8 calls arrive at once on a cold cache. The emulator answers at
loopback speed: against a real tenant each exchange adds a network round trip of tens to
hundreds of milliseconds, which widens every gap shown here.
Run alone: ``.venv/bin/python -m bench.peer``.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from importlib.metadata import version
from typing import Any

from flask import Flask

from bench.common import CAL_READ, CONNECTION, KeepAliveEmulator, make_app, table
from flask_token_vault import get_provider_token
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as

CALLS = 100
CONCURRENT = 8


class PortCounter:
    """WSGI middleware on the emulator: remember the client port of each ``/oauth/token`` call."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.ports: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/oauth/token":
            with self.lock:
                self.ports.add(f"{environ.get('REMOTE_ADDR')}:{environ.get('REMOTE_PORT')}")
        return self.app(environ, start_response)

    def take(self) -> int:
        """Return how many distinct connections were seen since the last call, and forget them."""
        with self.lock:
            count = len(self.ports)
            self.ports.clear()
        return count


# -- ours -------------------------------------------------------------------------------------


def _ours_calls(app: Flask, cookie: str, calls: int, force: bool) -> list[float]:
    times: list[float] = []
    env = {"HTTP_COOKIE": f"session={cookie}"}
    for _ in range(calls):
        with app.test_request_context("/", environ_base=env):
            started = time.perf_counter()
            get_provider_token(CONNECTION, force_refresh=force)
            times.append(time.perf_counter() - started)
    return times


def _ours_concurrent(app: Flask, cookie: str, n: int) -> None:
    barrier = threading.Barrier(n)
    env = {"HTTP_COOKIE": f"session={cookie}"}

    def one() -> None:
        with app.test_request_context("/", environ_base=env):
            barrier.wait(30)
            get_provider_token(CONNECTION)

    threads = [threading.Thread(target=one, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)


def run_ours(emu: Emulator, ports: PortCounter) -> dict[str, Any]:
    """Measure our extension: cached calls, forced exchanges, a cold burst."""
    out: dict[str, Any] = {}
    for label, force in (("cached", False), ("force_refresh", True)):
        app = make_app(emu)  # a fresh app: cold cache, new HTTP pool
        client = app.test_client()
        sub = login_as(client, emu, f"peer-ours-{label}@example.com", {CONNECTION: [CAL_READ]})
        cookie = client.get_cookie("session")
        assert cookie is not None
        ports.take()
        times = _ours_calls(app, cookie.value, CALLS, force)
        out[label] = _figures(times, emu.exchange_count(sub), ports.take())
    app = make_app(emu)
    client = app.test_client()
    sub = login_as(client, emu, "peer-ours-burst@example.com", {CONNECTION: [CAL_READ]})
    cookie = client.get_cookie("session")
    assert cookie is not None
    _ours_concurrent(app, cookie.value, CONCURRENT)
    out["burst_exchanges"] = emu.exchange_count(sub)
    return out


# -- peer -------------------------------------------------------------------------------------


def _peer_classes() -> tuple[type, type]:
    """Build the peer's client and a session store; imported late: an optional dependency."""
    with warnings.catch_warnings():
        # authlib warns, on the SDK's import of its httpx integration, about its own rename.
        warnings.filterwarnings("ignore", message="The httpx module is deprecated")
        from auth0_server_python.auth_server.server_client import ServerClient
        from auth0_server_python.store import StateStore

    class LoopbackServerClient(ServerClient):  # type: ignore[misc]
        """The SDK with one patch: keep ``http://`` for the loopback emulator.

        ``ServerClient._normalize_url`` turns every domain into ``https://...`` before fetching
        the discovery document; the emulator serves plain http on 127.0.0.1. Nothing else is
        changed: discovery, client authentication, the exchange request and the session update
        are the SDK's own code.
        """

        def _normalize_url(self, value: str) -> str:
            bare = (value or "").lower().removeprefix("http://").removeprefix("https://")
            if bare.startswith(("127.0.0.1", "localhost")):
                return "http://" + bare.rstrip("/")
            return str(super()._normalize_url(value))

    class MemoryStateStore(StateStore):  # type: ignore[misc]
        """One user's session kept in memory (no encryption: the cheapest store possible)."""

        def __init__(self, data: dict[str, Any]) -> None:
            super().__init__({"secret": "bench-peer-store-secret-0123456789abcdef"})
            self.data: dict[str, Any] = {}
            self.initial = data

        async def set(
            self,
            identifier: str,
            state: Any,
            remove_if_expires: bool = False,
            options: dict[str, Any] | None = None,
        ) -> None:
            self.data[identifier] = state

        async def get(self, identifier: str, options: dict[str, Any] | None = None) -> Any:
            return self.data.get(identifier, self.initial)

        async def delete(self, identifier: str, options: dict[str, Any] | None = None) -> None:
            self.data.pop(identifier, None)

    return LoopbackServerClient, MemoryStateStore


def _peer_client(emu: Emulator, refresh_token: str) -> Any:
    client_cls, store_cls = _peer_classes()
    session = {"refresh_token": refresh_token, "connection_token_sets": [], "user": {}}
    return client_cls(
        domain=emu.domain,
        client_id=emu.client_id,
        client_secret=emu.client_secret,
        secret="bench-peer-secret-0123456789abcdef0123",
        state_store=store_cls(session),
        transaction_store=None,
    )


async def _peer_calls(client: Any, calls: int) -> list[float]:
    times: list[float] = []
    for _ in range(calls):
        started = time.perf_counter()
        await client.get_access_token_for_connection({"connection": CONNECTION})
        times.append(time.perf_counter() - started)
    return times


async def _peer_burst(client: Any, n: int) -> None:
    await asyncio.gather(
        *(client.get_access_token_for_connection({"connection": CONNECTION}) for _ in range(n))
    )


def run_peer(emu: Emulator, ports: PortCounter) -> dict[str, Any]:
    """Measure auth0-server-python: sequential calls and a cold burst."""
    email = "peer-sdk@example.com"
    emu.connect_account(email, CONNECTION, [CAL_READ])
    sub = emu.user_id_for(email)
    client = _peer_client(emu, emu.issue_refresh_token(email))
    ports.take()
    times = asyncio.run(_peer_calls(client, CALLS))
    out: dict[str, Any] = {"cached": _figures(times, emu.exchange_count(sub), ports.take())}
    email = "peer-sdk-burst@example.com"
    emu.connect_account(email, CONNECTION, [CAL_READ])
    client = _peer_client(emu, emu.issue_refresh_token(email))
    asyncio.run(_peer_burst(client, CONCURRENT))
    out["burst_exchanges"] = emu.exchange_count(emu.user_id_for(email))
    out["version"] = version("auth0-server-python")
    return out


# -- both -------------------------------------------------------------------------------------


def _figures(times: list[float], exchanges: int, connections: int) -> dict[str, Any]:
    return {
        "calls": len(times),
        "exchanges": exchanges,
        "connections": connections,
        "median_us": statistics.median(times) * 1e6,
        "mean_us": statistics.fmean(times) * 1e6,
        "first_us": times[0] * 1e6,
    }


def run() -> dict[str, Any]:
    """Run both against one emulator; return the figures."""
    with KeepAliveEmulator() as emu:
        ports = PortCounter(emu.app.wsgi_app)
        emu.app.wsgi_app = ports  # type: ignore[method-assign]
        ours = run_ours(emu, ports)
        peer = run_peer(emu, ports)
    return {"ours": ours, "peer": peer}


def rows(results: dict[str, Any]) -> list[list[Any]]:
    """Return one table row per library: for the printed report and the docs page alike."""
    ours, peer = results["ours"], results["peer"]
    return [
        [label, r["exchanges"], r["connections"], f"{r['median_us']:.0f}", f"{r['mean_us']:.0f}"]
        for label, r in (
            ("Flask-Token-Vault", ours["cached"]),
            (f"auth0-server-python {peer['version']}", peer["cached"]),
            ("Flask-Token-Vault, force_refresh", ours["force_refresh"]),
        )
    ]


def report(results: dict[str, Any]) -> str:
    """Return the printed summary."""
    ours, peer = results["ours"], results["peer"]
    rows_ = rows(results)
    ratio = peer["cached"]["mean_us"] / ours["cached"]["mean_us"]
    per_exchange = peer["cached"]["mean_us"] / ours["force_refresh"]["mean_us"]
    head = f"(e) peer: {CALLS} calls for the same user's {CONNECTION} token, one process"
    body = table(
        [
            "library",
            f"exchanges/{CALLS}",
            "TCP conns to Auth0",
            "median µs/call",
            "mean µs/call",
        ],
        rows_,
    )
    tail = (
        f"  mean time per call, peer / ours: {ratio:.1f}x; per exchange (both exchanging "
        f"every call): {per_exchange:.2f}x\n"
        f"  {CONCURRENT} calls at once on a cold cache: ours {ours['burst_exchanges']} "
        f"exchange(s), peer {peer['burst_exchanges']}"
    )
    return head + "\n" + body + "\n" + tail


if __name__ == "__main__":
    print(report(run()))
