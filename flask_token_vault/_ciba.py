"""Human approval out of band: Auth0's Client-Initiated Backchannel Authentication (CIBA).

(Layer: core, above the transport; Flask-free.) ``POST /bc-authorize`` asks Auth0 to reach the
user (Guardian push, e-mail) with a ``binding_message`` and, with Rich Authorization Requests,
``authorization_details`` describing the action; the client then polls ``/oauth/token`` with the
grant ``urn:openid:params:grant-type:ciba`` no more often than the ``interval`` Auth0 gave (five
seconds more after each ``slow_down``), until the user approves or denies, the request expires,
or the caller's deadline passes. Every call goes through the app's one transport.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ._exchange import Exchanger
from .errors import Auth0Unavailable, InvalidRequest, TokenVaultError

log = logging.getLogger("flask_token_vault")

#: The grant type of the CIBA token request (OpenID CIBA Core 1.0).
CIBA_GRANT = "urn:openid:params:grant-type:ciba"
#: Seconds between polls when Auth0 names none (CIBA Core's default), and the least honoured.
DEFAULT_INTERVAL = 5.0
_MIN_INTERVAL = 1.0
#: What a ``slow_down`` answer adds to the interval (CIBA Core, section 11).
SLOW_DOWN_STEP = 5.0
#: Auth0's limit on the binding message.
MAX_BINDING_MESSAGE = 64

Status = Literal["approved", "denied", "expired"]


@dataclass(frozen=True)
class PendingApproval:
    """A request Auth0 is putting to the user; :meth:`Backchannel.wait` for its outcome."""

    #: Auth0's id of the request (it redeems the answer: not shown in the repr).
    auth_req_id: str = field(repr=False)
    #: The user asked.
    user_id: str
    #: What the user is shown on both devices.
    binding_message: str
    #: Seconds Auth0 gave the user to answer, from :attr:`started` (monotonic).
    expires_in: float
    #: Seconds to wait between polls, as Auth0 asked.
    interval: float
    #: When the request was made, on the app's monotonic clock.
    started: float


@dataclass(frozen=True)
class Approval:
    """How a request for the user's approval ended: ``approved``, ``denied`` or ``expired``.

    ``expired`` also covers a deadline that passed before the user answered.
    """

    status: Status
    #: The ``authorization_details`` Auth0 returned with an approval.
    authorization_details: tuple[Mapping[str, Any], ...] = ()
    #: The access token Auth0 issued with an approval (for the API named by ``audience``).
    access_token: str | None = field(default=None, repr=False)

    @property
    def approved(self) -> bool:
        """Return whether the user approved."""
        return self.status == "approved"


class Backchannel:
    """Ask a user for their approval through Auth0's CIBA endpoint, and wait for the answer."""

    def __init__(self, exchanger: Exchanger) -> None:
        self.exchanger = exchanger
        self.transport = exchanger.transport
        self.settings = exchanger.settings

    def __repr__(self) -> str:
        return f"Backchannel({self.settings.base_url!r})"

    def start(
        self,
        user_id: str,
        binding_message: str,
        *,
        authorization_details: Sequence[Mapping[str, Any]] | None = None,
        scopes: Iterable[str] = ("openid",),
        audience: str | None = None,
        requested_expiry: int | None = None,
    ) -> PendingApproval:
        """Ask Auth0 to put ``binding_message`` to the user ``user_id``; return the request."""
        if not binding_message or len(binding_message) > MAX_BINDING_MESSAGE:
            raise InvalidRequest(
                f"A binding message is 1 to {MAX_BINDING_MESSAGE} characters.",
                error="invalid_binding_message",
            )
        wanted = list(dict.fromkeys(["openid", *scopes]))
        hint = {"format": "iss_sub", "iss": self.settings.issuer, "sub": user_id}
        data = {
            "login_hint": json.dumps(hint),
            "binding_message": binding_message,
            "scope": " ".join(wanted),
        }
        if authorization_details:
            data["authorization_details"] = json.dumps(list(authorization_details))
        if audience:
            data["audience"] = audience
        if requested_expiry is not None:
            data["requested_expiry"] = str(int(requested_expiry))
        started = self.transport.clock.monotonic()
        reply = self.exchanger.post(
            "backchannel_authentication_endpoint",
            self.settings.base_url + "/bc-authorize",
            data,
            what="backchannel authorization request",
            retry=False,  # each request reaches the user's phone: never sent twice
        )
        body = reply.body if isinstance(reply.body, dict) else {}
        auth_req_id = body.get("auth_req_id")
        if not isinstance(auth_req_id, str) or not auth_req_id:
            raise Auth0Unavailable(
                "Auth0 answered the backchannel request without an auth_req_id.",
                error="malformed_answer",
            )
        return PendingApproval(
            auth_req_id=auth_req_id,
            user_id=user_id,
            binding_message=binding_message,
            expires_in=_seconds(body.get("expires_in"), 300.0),
            interval=max(_seconds(body.get("interval"), DEFAULT_INTERVAL), _MIN_INTERVAL),
            started=started,
        )

    def poll(self, pending: PendingApproval) -> Approval | Literal["pending", "slow_down"]:
        """Ask Auth0 once how ``pending`` stands: the outcome, ``"pending"`` or ``"slow_down"``."""
        try:
            body = self.exchanger.post_token(
                {"grant_type": CIBA_GRANT, "auth_req_id": pending.auth_req_id}
            )
        except TokenVaultError as exc:
            if exc.error == "authorization_pending":
                return "pending"
            if exc.error == "slow_down":
                return "slow_down"
            if exc.error == "access_denied":
                return Approval("denied")
            if exc.error == "expired_token":
                return Approval("expired")
            raise
        details = body.get("authorization_details")
        token = body.get("access_token")
        return Approval(
            "approved",
            authorization_details=tuple(d for d in details if isinstance(d, dict))
            if isinstance(details, list)
            else (),
            access_token=token if isinstance(token, str) else None,
        )

    def wait(self, pending: PendingApproval, *, deadline: float | None = None) -> Approval:
        """Poll until the user answers or the request expires, within ``deadline`` seconds.

        Polls no more often than the interval Auth0 gave, five seconds more after each
        ``slow_down``; a deadline (or expiry) that leaves no room for another poll ends the
        wait as ``expired`` without one.
        """
        clock = self.transport.clock
        limit = pending.expires_in if deadline is None else min(deadline, pending.expires_in)
        end = pending.started + limit
        interval = pending.interval
        while True:
            now = clock.monotonic()
            if now + interval > end:
                clock.sleep(max(0.0, end - now))
                log.info("backchannel request ended without an answer: expired")
                return Approval("expired")
            clock.sleep(interval)
            outcome = self.poll(pending)
            if outcome == "slow_down":
                interval += SLOW_DOWN_STEP
            elif isinstance(outcome, Approval):
                log.info("backchannel request answered: %s", outcome.status)
                return outcome


def _seconds(value: Any, default: float) -> float:
    """Return a positive, finite number of seconds from Auth0's answer, else ``default``."""
    # The comparison refuses NaN and infinities too, and a huge int before float() overflows.
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if is_number and 0 < value <= 86_400 else default
