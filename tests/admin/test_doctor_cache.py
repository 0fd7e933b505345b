"""``doctor`` talks to the configured cache: a write, a read, a lock and the scripts."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from flask_token_vault.admin.app_checks import FAIL, PASS
from flask_token_vault.admin.doctor import run_doctor
from flask_token_vault_emulator import Emulator
from services.redis_servers import RedisCluster, RedisServer
from tests.helpers.apps import make_app

PASSWORD = "acl-pass-Sup3rS3cret-42"


@pytest.fixture(scope="module")
def acl_server() -> Iterator[RedisServer]:
    server = RedisServer(user="app", password=PASSWORD)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisCluster]:
    running = RedisCluster(3)
    yield running
    running.stop()


def _cache_check(emu: Emulator, url: str) -> dict[str, str]:
    app = make_app(emu, TOKEN_VAULT_CACHE=url)
    with app.app_context():
        checks = {check.name: check for check in run_doctor(app)}
    found = checks["cache answers"]
    return {"status": found.status, "detail": found.detail, "fix": found.fix}


def test_doctor_passes_a_cache_that_answers(emu: Emulator, acl_server: RedisServer) -> None:
    check = _cache_check(emu, acl_server.url)
    assert check["status"] == PASS, check
    assert PASSWORD not in str(check)


def test_doctor_names_a_wrong_password_without_showing_it(
    emu: Emulator, acl_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = acl_server.url.replace(PASSWORD, "wrong-" + PASSWORD)
    check = _cache_check(emu, url)
    app = make_app(emu, TOKEN_VAULT_CACHE=url)
    client = app.test_client()
    assert client.get("/calendar").status_code in (302, 401)  # requests go on without the cache
    assert check["status"] == FAIL
    assert "password is refused" in check["fix"]
    assert PASSWORD not in str(check)
    assert "password is refused" in caplog.text  # logged once, with the fix
    assert PASSWORD not in caplog.text


def test_doctor_names_a_user_the_acl_forbids_a_command(emu: Emulator, tmp_path: Path) -> None:
    # The ACL user may touch only keys that are not the extension's.
    server = RedisServer(user="app", password=PASSWORD, rules=("~other:*", "+@all"))
    try:
        check = _cache_check(emu, server.url)
    finally:
        server.stop()
    assert check["status"] == FAIL
    assert "~tv:*" in check["fix"]


def test_doctor_names_one_cluster_node_given_as_a_plain_url(
    emu: Emulator, cluster: RedisCluster
) -> None:
    check = _cache_check(emu, f"redis://127.0.0.1:{cluster.nodes[0].port}/0")
    assert check["status"] == FAIL
    assert "redis+cluster://" in check["fix"]


def test_doctor_passes_the_cluster_named_as_a_cluster(emu: Emulator, cluster: RedisCluster) -> None:
    assert _cache_check(emu, cluster.url)["status"] == PASS


def test_doctor_names_a_tls_port_spoken_to_in_plain_text(emu: Emulator) -> None:
    server = RedisServer(tls=True)
    try:
        check = _cache_check(emu, f"redis://127.0.0.1:{server.port}/0")
    finally:
        server.stop()
    assert check["status"] == FAIL
    assert "rediss://" in check["fix"]
