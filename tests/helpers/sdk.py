"""What the provider SDK tests share: calls from many threads at once, and a job's token source."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Flask

from flask_token_vault import JobTokenSource
from flask_token_vault_emulator import Emulator
from tests.helpers.apps import alice_client, make_app
from tests.helpers.keys import keyed_config, register_client_key

EMAIL = "alice@example.com"
#: A connection's options with Token Vault turned on, for ``Emulator.add_connection``.
VAULT_ON = {"federated_connections_access_tokens": {"active": True}}


def at_once(call: Callable[[], None], count: int = 6) -> None:
    """Run ``call`` in ``count`` threads started one after the other; wait for them all."""
    threads = [threading.Thread(target=call) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def statuses_after_expiry(
    emu: Emulator, app: Flask, grants: dict[str, list[str]], path: str
) -> list[int]:
    """Sign alice in with ``grants``, GET ``path``, let its token near its end, GET it in 6 threads.

    The token of ``grants``' one connection lives 4 s: the vault renews a token a quarter early,
    so after 3.2 s every thread finds it due. Each thread has a client of its own with the
    session cookie. Returns the six threads' statuses.
    """
    ((connection, _),) = grants.items()
    emu.set_provider_token_ttl(connection, 4)
    client = alice_client(app, emu, grants)
    assert client.get(path).status_code == 200
    time.sleep(3.2)
    cookie = client.get_cookie("session")
    assert cookie is not None
    statuses: list[int] = []

    def call() -> None:
        other = app.test_client()
        other.set_cookie("session", cookie.value)
        statuses.append(other.get(path).status_code)

    at_once(call)
    return statuses


def consent_query(answer: Any, connection: str) -> dict[str, list[str]]:
    """Check ``answer`` sends the user to connect ``connection``; return that link's query."""
    assert answer.status_code == 302, answer.get_data(as_text=True)
    link = urlsplit(answer.headers["Location"])
    assert link.path == f"/auth/connect/{connection}", answer.headers["Location"]
    return parse_qs(link.query)


def job_app(
    emu: Emulator, connection: str, grantable: Sequence[str], connected: Sequence[str]
) -> tuple[Flask, str]:
    """Set the emulator up for a background job reading alice's ``connection``; build its app.

    The app authenticates with a key, which may exchange for ``grantable`` scopes; alice has
    connected the account with ``connected``. Returns the app and alice's user id.
    """
    credential = register_client_key(emu)
    emu.set_privileged_access(credential, {connection: list(grantable)})
    emu.connect_account(EMAIL, connection, list(connected))
    return make_app(emu, **keyed_config()), emu.user_id_for(EMAIL)


def job_source(
    emu: Emulator,
    connection: str,
    grantable: Sequence[str],
    connected: Sequence[str],
    audit_context: str,
) -> JobTokenSource:
    """Return a :class:`JobTokenSource` of alice's ``connection``, set up by :func:`job_app`."""
    app, user_id = job_app(emu, connection, grantable, connected)
    return JobTokenSource(user_id, connection, audit_context=audit_context, app=app)
