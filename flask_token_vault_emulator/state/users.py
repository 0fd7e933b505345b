"""Keep the tenant's users, their connected accounts, sign-in sessions, logins and codes."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from typing import Any, ClassVar

from .common import (
    BROWSER_SESSION_LIFETIME,
    CODE_LIFETIME,
    CONNECT_SESSION_LIFETIME,
    LOGIN_TRANSACTION_LIFETIME,
    MFA_POLICY,
    display_name_for,
    normalize_email,
    random_id,
    split_scopes,
    user_id_for,
)
from .records import (
    AuthorizationCode,
    BrowserSession,
    ConnectSession,
    LoginTransaction,
    Tokenset,
    User,
)
from .tenant_store import FreshValues, TenantStore


class UserStore(TenantStore):
    """Add users, connected accounts, sign-in sessions and pending logins to the tenant."""

    users: dict[str, User]
    tokensets: dict[tuple[str, str, str], Tokenset]
    transactions: dict[str, LoginTransaction]
    codes: dict[str, AuthorizationCode]
    connect_sessions: dict[str, ConnectSession]
    #: Who is signed in at the emulator, by its session cookie (Auth0's own session; its
    #: ``sid`` is the ID tokens' ``sid``).
    browser_sessions: dict[str, BrowserSession]
    #: Counts connections, so the most recently connected account can be told apart.
    _seq: int

    #: :meth:`reset` also forgets users, connected accounts, sessions, logins and codes.
    FRESH: ClassVar[FreshValues] = {
        **TenantStore.FRESH,
        "users": dict,
        "tokensets": dict,
        "transactions": dict,
        "codes": dict,
        "connect_sessions": dict,
        "browser_sessions": dict,
        "_seq": int,
    }

    # -- users and connected accounts -----------------------------------------------------

    def ensure_user(self, email: str, name: str | None = None) -> User:
        """Return the user with this email, creating it; a given name replaces the old one."""
        key = normalize_email(email)
        if not key or "@" not in key:
            raise ValueError(f"not an email address: {email!r}")
        with self.lock:
            user = self.users.get(key)
            if user is None:
                user = User(user_id_for(key), key, name or display_name_for(key), self.now())
                self.users[key] = user
            elif name:
                user.name = name
            return user

    def user_by_id(self, user_id: str) -> User | None:
        """Return the user with this Auth0 user id, or None."""
        with self.lock:
            return next((user for user in self.users.values() if user.user_id == user_id), None)

    def connect(
        self,
        user: User,
        connection_name: str,
        scopes: Iterable[str] = (),
        account: str | None = None,
    ) -> Tokenset:
        """Record a connected account, merging scopes with earlier ones and the defaults."""
        account_key = normalize_email(account) if account and account.strip() else user.email
        with self.lock:
            connection = self._require_connection(connection_name)
            if not connection.stores_tokens:
                raise ValueError(f"Token Vault is not active on connection {connection_name!r}")
            now = self.now()
            self._seq += 1
            key = (user.user_id, connection_name, account_key)
            tokenset = self.tokensets.get(key)
            if tokenset is None:
                tokenset = Tokenset(
                    id="fcts_" + random_id(20),
                    user_id=user.user_id,
                    connection=connection_name,
                    account=account_key,
                    scopes=[],
                    issued_at=now,
                    expires_at=now,
                    created_at=now,
                )
                self.tokensets[key] = tokenset
            tokenset.scopes = split_scopes([*tokenset.scopes, *connection.default_scopes, *scopes])
            tokenset.issued_at = now
            tokenset.expires_at = now + self.provider_ttl(connection_name)
            tokenset.broken = False
            tokenset.connected_seq = self._seq
            return tokenset

    def find_tokenset(
        self, user_id: str, connection: str, account: str | None = None
    ) -> Tokenset | None:
        """Return the connected account for ``account``, or else the most recently connected one."""
        with self.lock:
            if account:
                return self.tokensets.get((user_id, connection, normalize_email(account)))
            candidates = [
                tokenset
                for (owner, name, _), tokenset in self.tokensets.items()
                if owner == user_id and name == connection
            ]
            return max(candidates, key=lambda t: t.connected_seq, default=None)

    def tokensets_for(self, user_id: str) -> list[Tokenset]:
        """Return every connected account of a user, oldest connection first."""
        with self.lock:
            found = [t for t in self.tokensets.values() if t.user_id == user_id]
            return sorted(found, key=lambda t: t.connected_seq)

    def delete_tokenset(self, user_id: str, tokenset_id: str) -> bool:
        """Remove a connected account by its tokenset id or its ``cac_`` id; tell if it existed.

        The provider's tokens are not revoked (Auth0 does not either), but the exchange no longer
        finds the account.
        """
        with self.lock:
            for key, tokenset in list(self.tokensets.items()):
                if tokenset.user_id == user_id and tokenset_id in (
                    tokenset.id,
                    tokenset.account_id,
                ):
                    del self.tokensets[key]
                    return True
            return False

    def start_connect_session(self, **fields: Any) -> ConnectSession:
        """Record a My Account ``connect`` request; return it with a fresh session and ticket."""
        session = ConnectSession(
            auth_session=secrets.token_urlsafe(24),
            ticket=secrets.token_urlsafe(24),
            expires_at=self.now() + CONNECT_SESSION_LIFETIME,
            **fields,
        )
        with self.lock:
            now = self.now()
            for key in [k for k, s in self.connect_sessions.items() if s.expires_at <= now]:
                del self.connect_sessions[key]
            self.connect_sessions[session.auth_session] = session
        return session

    def connect_session_by_ticket(self, ticket: str) -> ConnectSession | None:
        """Return the pending connect session of a ticket, if it is unused and not expired."""
        with self.lock:
            for session in self.connect_sessions.values():
                if (
                    ticket
                    and hmac.compare_digest(session.ticket, ticket)
                    and session.connect_code is None
                    and session.expires_at > self.now()
                ):
                    return session
            return None

    def get_connect_session(self, auth_session: str) -> ConnectSession | None:
        """Return the connect session with this ``auth_session``, if it has not expired."""
        with self.lock:
            session = self.connect_sessions.get(auth_session)
            if session is None or session.expires_at <= self.now():
                return None
            return session

    def set_broken(
        self, user_id: str, connection: str, broken: bool = True, account: str | None = None
    ) -> int:
        """Mark a user's accounts on ``connection`` as refusing refresh; return how many."""
        with self.lock:
            matches = [
                tokenset
                for tokenset in self.tokensets.values()
                if tokenset.user_id == user_id
                and tokenset.connection == connection
                and (account is None or tokenset.account == normalize_email(account))
            ]
            for tokenset in matches:
                tokenset.broken = broken
            return len(matches)

    # -- the emulator's own sign-in session (a cookie, as Auth0 keeps one) -----------------

    def start_browser_session(self, user: User) -> BrowserSession:
        """Record that ``user`` signed in on the emulator's page; return the new session."""
        with self.lock:
            now = self.now()
            for sid in [k for k, v in self.browser_sessions.items() if v.expires_at <= now]:
                del self.browser_sessions[sid]
            session = BrowserSession(
                secrets.token_urlsafe(24),
                user.user_id,
                now + BROWSER_SESSION_LIFETIME,
                created_at=now,
            )
            self.browser_sessions[session.sid] = session
            return session

    def browser_session_user(self, sid: str | None) -> User | None:
        """Return the user signed in by this session cookie, if it is known and current."""
        if not sid:
            return None
        with self.lock:
            session = self.browser_sessions.get(sid)
            if session is None or session.expires_at <= self.now():
                return None
            return self.user_by_id(session.user_id)

    def end_browser_session(self, sid: str | None) -> BrowserSession | None:
        """Forget a sign-in session (logout); return it, if it existed."""
        with self.lock:
            return self.browser_sessions.pop(sid or "", None)

    def users_by_email(self, email: str) -> list[User]:
        """Return the users with this email address (Auth0 may have several; here, one)."""
        with self.lock:
            user = self.users.get(normalize_email(email))
            return [user] if user is not None else []

    # -- login transactions and codes -----------------------------------------------------

    def start_transaction(self, *, store: bool = True, **fields: Any) -> LoginTransaction:
        """Make a pending /authorize request (with a fresh ``txn`` id); store it unless told not."""
        transaction = LoginTransaction(
            txn=secrets.token_urlsafe(24),
            expires_at=self.now() + LOGIN_TRANSACTION_LIFETIME,
            **fields,
        )
        if store:
            self.save_transaction(transaction)
        return transaction

    def save_transaction(self, transaction: LoginTransaction) -> None:
        """Store a pending login so the login form can finish it; drop expired ones."""
        with self.lock:
            now = self.now()
            expired = [k for k, t in self.transactions.items() if t.expires_at <= now]
            for key in expired:
                del self.transactions[key]
            self.transactions[transaction.txn] = transaction

    def take_transaction(self, txn: str) -> LoginTransaction | None:
        """Remove and return a pending login if it exists and has not expired."""
        with self.lock:
            transaction = self.transactions.pop(txn, None)
            if transaction is None or transaction.expires_at <= self.now():
                return None
            return transaction

    def join_browser_session(self, session: BrowserSession, client_id: str) -> None:
        """Record that ``client_id`` signed in through ``session`` (it is told of its end)."""
        with self.lock:
            if client_id not in session.clients:
                session.clients.append(client_id)

    def browser_session(self, sid: str | None) -> BrowserSession | None:
        """Return the current session of this cookie, if it is known and not expired."""
        with self.lock:
            session = self.browser_sessions.get(sid or "")
            return session if session is not None and session.expires_at > self.now() else None

    def sessions_of(self, user_id: str) -> list[BrowserSession]:
        """Return the user's current Auth0 sessions, oldest first."""
        with self.lock:
            now = self.now()
            found = [
                s
                for s in self.browser_sessions.values()
                if s.user_id == user_id and s.expires_at > now
            ]
            return sorted(found, key=lambda s: s.created_at)

    def issue_code(
        self, transaction: LoginTransaction, user: User, sid: str | None = None
    ) -> AuthorizationCode:
        """Issue a single-use authorization code bound to the login's parameters."""
        code = AuthorizationCode(
            code=secrets.token_urlsafe(24),
            client_id=transaction.client_id,
            redirect_uri=transaction.redirect_uri,
            user_id=user.user_id,
            scope=transaction.scope,
            audience=transaction.audience,
            nonce=transaction.nonce,
            code_challenge=transaction.code_challenge,
            code_challenge_method=transaction.code_challenge_method,
            org_id=transaction.organization,
            acr=MFA_POLICY if MFA_POLICY in (transaction.acr_values or "").split() else None,
            sid=sid or secrets.token_urlsafe(16),
            expires_at=self.now() + CODE_LIFETIME,
        )
        with self.lock:
            self.codes[code.code] = code
        return code

    def redeem_code(self, code: str, client_id: str) -> AuthorizationCode | None:
        """Use up a code issued to ``client_id``; return None if unknown, expired or used."""
        with self.lock:
            record = self.codes.get(code)
            if record is None or record.client_id != client_id:
                return None
            if record.used or record.expires_at <= self.now():
                record.used = True
                return None
            record.used = True
            return record
