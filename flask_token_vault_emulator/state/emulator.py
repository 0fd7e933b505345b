"""Hold the whole emulated tenant: its stores plus faults, counters and the test controls.

Every public method of :class:`EmulatorState` takes the state's lock, so the request threads of
the server and the test code driving the emulator can use it at the same time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from ..faults import Fault
from .common import normalize_email, split_scopes, user_id_for
from .records import (
    AutoLogin,
    BackchannelDelivery,
    Counters,
    Grant,
    PrivilegedAccess,
    RefreshToken,
    Tokenset,
)
from .tokens import TokenStore


class EmulatorState(TokenStore):
    """Keep the whole emulated tenant in memory, guarded by one re-entrant lock."""

    faults: list[Fault]
    auto_login: AutoLogin | None
    #: What auto-login goes back to on :meth:`reset` (what the emulator was started with).
    default_auto_login: AutoLogin | None = None
    counters: Counters
    #: Every logout token sent to a back-channel logout URL, oldest first.
    backchannel_deliveries: list[BackchannelDelivery]
    #: Every Privileged Worker exchange accepted, oldest first (Auth0's tenant logs).
    privileged_accesses: list[PrivilegedAccess]
    #: Backchannel (CIBA) requests by ``auth_req_id`` (:mod:`..ciba`).
    ciba_requests: dict[str, Any]
    #: The polling interval ``/bc-authorize`` asks for, in seconds.
    ciba_interval: int

    def reset(self) -> None:
        """Forget users, tokens, accounts, counters and faults; keep clients and connections.

        Provider token lifetimes go back to the default and auto-login goes back to
        ``default_auto_login`` (what the emulator was started with).
        """
        with self.lock:
            super().reset()
            self.faults = []
            self.auto_login = self.default_auto_login
            self.counters = Counters()
            self.backchannel_deliveries = []
            self.privileged_accesses = []
            self.ciba_requests = {}
            self.ciba_interval = 5

    def record_delivery(self, delivery: BackchannelDelivery) -> None:
        """Remember a logout token sent to a back-channel logout URL."""
        with self.lock:
            self.backchannel_deliveries.append(delivery)

    def record_privileged_access(
        self,
        client_id: str,
        user_id: str,
        connection: str,
        audit_context: str,
        org_id: str | None = None,
    ) -> None:
        """Remember an accepted Privileged Worker exchange, the reason and organization it gave."""
        with self.lock:
            self.privileged_accesses.append(
                PrivilegedAccess(client_id, user_id, connection, audit_context, org_id)
            )

    def revoke_refresh_token(self, token: str, client_id: str) -> bool:
        """Revoke a refresh token issued to ``client_id``; tell whether it existed."""
        with self.lock:
            self.counters.revocations += 1
            record = self.refresh_tokens.get(token)
            if record is None or record.client_id != client_id:
                return False
            del self.refresh_tokens[token]
            return True

    # -- faults ---------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        """Queue a fault; faults are tried in the order they were added."""
        with self.lock:
            self.faults.append(fault)

    def clear_faults(self) -> None:
        """Remove every fault."""
        with self.lock:
            self.faults.clear()

    def take_fault(self, names: Iterable[str]) -> Fault | None:
        """Return the first fault matching one of ``names`` and use up one of its ``times``."""
        wanted = set(names)
        with self.lock:
            for fault in self.faults:
                if fault.endpoint in wanted:
                    if fault.times > 0:
                        fault.times -= 1
                        if fault.times == 0:
                            self.faults.remove(fault)
                    return fault
            return None

    # -- counters -------------------------------------------------------------------------

    def record_token_request(self, grant_type: str) -> None:
        """Count one request to the token endpoint."""
        with self.lock:
            self.counters.token_requests[grant_type or "(none)"] += 1

    def record_exchange(
        self,
        user_id: str | None,
        connection: str | None,
        ok: bool,
        subject_token_type: str | None = None,
    ) -> None:
        """Count one Token Vault exchange, successful or not (and its subject token type)."""
        with self.lock:
            if ok and user_id and connection:
                self.counters.exchanges_succeeded[(user_id, connection)] += 1
                if subject_token_type:
                    short = subject_token_type.rsplit(":", 1)[-1]
                    self.counters.exchanges_by_subject[short] += 1
            else:
                self.counters.exchanges_failed += 1

    def record_jwks_request(self) -> None:
        """Count one fetch of the JSON Web Key Set."""
        with self.lock:
            self.counters.jwks_requests += 1

    def record_provider_call(self, provider: str, status: str) -> None:
        """Count one call to a fake provider API by its answer's status."""
        with self.lock:
            self.counters.provider_calls.setdefault(provider, Counter())[status] += 1

    def exchange_count(self, user_id: str | None = None, connection: str | None = None) -> int:
        """Return how many Token Vault exchanges succeeded, optionally filtered."""
        with self.lock:
            return sum(
                count
                for (owner, name), count in self.counters.exchanges_succeeded.items()
                if (user_id is None or owner == user_id)
                and (connection is None or name == connection)
            )

    def stats(self) -> dict[str, Any]:
        """Return the counters and sizes as the control API's stats document."""
        with self.lock:
            counters = self.counters
            succeeded = sum(counters.exchanges_succeeded.values())
            return {
                "exchanges": {
                    "total": succeeded + counters.exchanges_failed,
                    "succeeded": succeeded,
                    "failed": counters.exchanges_failed,
                    "by_user_connection": [
                        {"user_id": owner, "connection": name, "count": count}
                        for (owner, name), count in sorted(counters.exchanges_succeeded.items())
                    ],
                    "by_subject_token_type": dict(counters.exchanges_by_subject),
                },
                "jwks_requests": counters.jwks_requests,
                "token_requests": dict(counters.token_requests),
                "revocations": counters.revocations,
                "backchannel_deliveries": [d.to_dict() for d in self.backchannel_deliveries],
                "provider_calls": {
                    provider: dict(by_status)
                    for provider, by_status in counters.provider_calls.items()
                },
                "users": len(self.users),
                "tokensets": len(self.tokensets),
            }

    # -- controls (used by the Python API and the control endpoints) ------------------------

    def set_auto_login(
        self, email: str | None, name: str | None, account: str | None, consent: bool
    ) -> None:
        """Sign ``email`` in at /authorize without showing the page; None shows the page again."""
        if email is None:
            auto_login = None
        else:
            if "@" not in email:
                raise ValueError(f"not an email address: {email!r}")
            auto_login = AutoLogin(normalize_email(email), name, account, consent)
        with self.lock:
            self.auto_login = auto_login

    def connect_account(
        self, email: str, connection: str, scopes: str | Iterable[str], account: str | None
    ) -> Tokenset:
        """Create the user if needed and connect (or re-connect) an account without a browser."""
        with self.lock:
            user = self.ensure_user(email)
            return self.connect(user, connection, split_scopes(scopes), account)

    def issue_refresh_token_for(self, email: str, scope: str, client_id: str) -> RefreshToken:
        """Create the user if needed and issue an Auth0 refresh token as a login would."""
        with self.lock:
            if client_id not in self.clients:
                raise ValueError(f"unknown client {client_id!r}")
            user = self.ensure_user(email)
            session = self.start_browser_session(user)
            self.join_browser_session(session, client_id)
            grant = Grant(
                user_id=user.user_id,
                client_id=client_id,
                scope=scope,
                audience=None,
                sid=session.sid,
            )
            return self.new_refresh_token(grant)

    def revoke_provider_tokens_for(
        self, email: str | None = None, connection: str | None = None
    ) -> int:
        """Revoke the provider tokens issued so far for a user (by email) and/or connection."""
        user_id = None if email is None else user_id_for(email)
        return self.revoke_provider_tokens(user_id, connection)

    def break_provider_refresh(
        self, email: str, connection: str, broken: bool = True, account: str | None = None
    ) -> int:
        """Make the provider refuse a user's stored refresh token (or accept it again)."""
        changed = self.set_broken(user_id_for(email), connection, broken, account)
        if changed == 0:
            raise ValueError(f"{email} has no connected account on {connection!r}")
        return changed
