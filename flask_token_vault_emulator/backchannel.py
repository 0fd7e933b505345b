"""Send OIDC Back-Channel Logout tokens, as Auth0 does when a session ends.

For each client the session signed in to, every URL in the client's
``oidc_logout.backchannel_logout_urls`` gets ``POST`` ``application/x-www-form-urlencoded``
``logout_token=<JWT>``: signed with the tenant key, ``iss``, ``aud`` (the client), ``iat``,
``exp`` (two minutes), ``jti``, the back-channel logout event, ``sub`` and ``sid``. Like Auth0
it sends once, waits at most 5 seconds, and does not retry; each delivery is recorded.
"""

from __future__ import annotations

from collections.abc import Iterable

import requests

from .state import BackchannelDelivery, EmulatorState
from .state.common import BACKCHANNEL_TIMEOUT


def deliver(
    state: EmulatorState,
    *,
    sub: str | None,
    sid: str | None,
    client_ids: Iterable[str],
) -> list[BackchannelDelivery]:
    """Send a logout token for ``sid`` (and/or ``sub``) to each client's back-channel URLs."""
    deliveries: list[BackchannelDelivery] = []
    for client_id in dict.fromkeys(client_ids):
        client = state.get_client(client_id)
        if client is None:
            continue
        for url in client.backchannel_logout_urls:
            token = state.logout_token(client_id, sub=sub, sid=sid)
            status, error = 0, ""
            try:
                answer = requests.post(
                    url,
                    data={"logout_token": token},
                    timeout=BACKCHANNEL_TIMEOUT,
                    allow_redirects=False,
                )
                status = answer.status_code
            except requests.RequestException as exc:
                error = type(exc).__name__
            delivery = BackchannelDelivery(url, client_id, sid, sub, status, error)
            state.record_delivery(delivery)
            deliveries.append(delivery)
    return deliveries


def end_sessions(
    state: EmulatorState,
    user_id: str,
    *,
    sid: str | None = None,
    client_id: str | None = None,
) -> list[BackchannelDelivery]:
    """End a user's Auth0 session ``sid`` (default: every one of theirs) and tell the clients.

    A user with no session left gets one token naming only ``sub`` (every session of theirs).
    ``client_id`` limits the clients told to that one.
    """
    sessions = [s for s in state.sessions_of(user_id) if sid is None or s.sid == sid]
    deliveries: list[BackchannelDelivery] = []
    if not sessions:
        if sid is not None:
            raise ValueError(f"no Auth0 session {sid!r} of {user_id}")
        clients = [client_id] if client_id else list(state.clients)
        return deliver(state, sub=user_id, sid=None, client_ids=clients)
    for session in sessions:
        state.end_browser_session(session.sid)
        clients = [client_id] if client_id else session.clients
        deliveries += deliver(state, sub=user_id, sid=session.sid, client_ids=clients)
    return deliveries
