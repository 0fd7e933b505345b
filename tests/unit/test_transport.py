"""The one HTTP transport, driven directly against the emulator over real HTTP."""

from __future__ import annotations

import json
import time

import pytest
import requests

from flask_token_vault._clock import Clock
from flask_token_vault._http import Failure, Transport
from flask_token_vault.errors import TokenVaultError
from flask_token_vault_emulator import Emulator
from flask_token_vault_pytest.testing import FakeClock
from tests.helpers.oauth import management_token


class Refused(TokenVaultError):
    """What the test's error hook raises, carrying the failure."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(f"failed: {failure.kind}")
        self.failure = failure


def transport(clock: FakeClock | None = None, deadline: float = 5.0) -> Transport:
    wrapped = Clock(clock) if clock is not None else None
    return Transport(
        http_timeout=1.0, deadline=deadline, max_retries=3, clock=wrapped, rate_limit_wait=None
    )


def discovery(emu: Emulator, http: Transport) -> object:
    return http.call_json(
        "GET", emu.url + "/.well-known/openid-configuration", error=Refused, what="discovery"
    ).body


def test_a_json_answer_comes_back_parsed(emu: Emulator) -> None:
    body = discovery(emu, transport())
    assert isinstance(body, dict) and body["issuer"] == emu.url + "/"


def test_a_transient_failure_is_retried_after_a_jittered_backoff(emu: Emulator) -> None:
    clock = FakeClock(running=True)
    emu.add_fault("discovery", status=503, times=2)
    assert isinstance(discovery(emu, transport(clock)), dict)
    assert len(clock.sleeps) == 2 and all(0 <= s <= 2.0 for s in clock.sleeps)


def test_a_429_waits_for_retry_after_when_it_fits_the_deadline(emu: Emulator) -> None:
    clock = FakeClock(running=True)
    emu.add_fault("discovery", status=429, headers={"Retry-After": "2"}, error="too_many")
    assert isinstance(discovery(emu, transport(clock)), dict)
    assert clock.sleeps == [2.0]


def test_a_429_whose_wait_does_not_fit_gives_up_with_the_wait(emu: Emulator) -> None:
    clock = FakeClock(running=True)
    emu.add_fault("discovery", status=429, headers={"Retry-After": "60"}, error="too_many")
    with pytest.raises(Refused) as raised:
        discovery(emu, transport(clock))
    failure = raised.value.failure
    assert (failure.kind, failure.status, failure.retry_after) == ("status", 429, 60.0)
    assert failure.body == {
        "error": "too_many",
        "error_description": failure.body["error_description"],
    }
    assert clock.sleeps == []


def test_a_4xx_is_handed_to_the_hook_at_once(emu: Emulator) -> None:
    clock = FakeClock(running=True)
    fault = emu.add_fault("discovery", status=404, error="not_here", times=2)
    with pytest.raises(Refused) as raised:
        discovery(emu, transport(clock))
    assert raised.value.failure.status == 404 and raised.value.failure.body["error"] == "not_here"
    assert clock.sleeps == [] and fault.times == 1  # asked once, not again


@pytest.mark.parametrize(
    "body",
    ["<html>no</html>", '{"cut": ', "[" * 5000 + "]" * 5000],
    ids=["html", "truncated", "nested-5000-deep"],
)
def test_an_unreadable_answer_is_malformed_never_a_crash(emu: Emulator, body: str) -> None:
    emu.add_fault("discovery", status=400, body=body, content_type="application/json", times=-1)
    with pytest.raises(Refused) as raised:
        discovery(emu, transport())
    assert raised.value.failure.kind == "malformed_answer"


def test_every_try_has_a_timeout_and_the_call_a_deadline(emu: Emulator) -> None:
    emu.add_fault("discovery", status=0, delay=1.5, times=-1)
    started = time.monotonic()
    with pytest.raises(Refused) as raised:
        discovery(emu, transport(deadline=1.2))
    assert raised.value.failure.kind == "timeout"
    assert time.monotonic() - started < 1.2 + 0.6


def test_an_answer_cannot_plant_a_cookie_for_later_calls(emu: Emulator) -> None:
    http = transport()
    emu.add_fault(
        "discovery",
        status=200,
        body={"issuer": "x"},
        headers={"Set-Cookie": "planted=1; Path=/"},
    )
    assert discovery(emu, http) == {"issuer": "x"}
    assert list(http.http.cookies) == []
    answer = http.http.get(emu.url + "/.well-known/openid-configuration", timeout=5)
    assert "Cookie" not in answer.request.headers


def test_a_401_renews_the_credential_once(emu: Emulator) -> None:
    http = transport()
    issued: list[str] = []

    def credential() -> str:
        issued.append("bad" if not issued else management_token(emu))
        return f"Bearer {issued[-1]}"

    renewed: list[str] = []
    reply = http.call_json(
        "GET",
        emu.url + "/api/v2/clients/" + emu.client_id,
        error=Refused,
        what="read client",
        auth=credential,
        renew=renewed.append,
    )
    assert reply.body["client_id"] == emu.client_id
    assert renewed == ["Bearer bad"] and len(issued) == 2


def test_without_json_the_last_answer_is_returned_as_it_is(emu: Emulator) -> None:
    clock = FakeClock(running=True)
    emu.add_fault("google", status=503, times=-1)
    answer = transport(clock).send(
        "GET",
        emu.google_api_base + "/calendar/v3/users/me/calendarList",
        error=Refused,
        what="calendar",
        retry_status=frozenset({503}),
    )
    assert isinstance(answer, requests.Response) and answer.status_code == 503
    assert len(clock.sleeps) == 3  # max_retries


def test_unreachable_is_a_connection_error(emu: Emulator) -> None:
    with pytest.raises(Refused) as raised:
        transport(FakeClock(running=True)).call_json(
            "GET", "http://127.0.0.1:9/", error=Refused, what="nothing"
        )
    assert raised.value.failure.kind == "connection_error"
    assert json.dumps(raised.value.failure.reason)
