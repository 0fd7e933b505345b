"""Run the emulator: serve its Flask app from a daemon thread on 127.0.0.1, driven from Python."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any, Final

from werkzeug.serving import WSGIRequestHandler, make_server

from . import backchannel, ciba
from .app import create_app
from .constants import GITHUB_API_PATH, GOOGLE_API_PATH, GRAPH_API_PATH, SLACK_API_PATH
from .faults import Fault
from .serving import Listener, ServingThread
from .state import AutoLogin, BackchannelDelivery, EmulatorState, PrivilegedAccess
from .state.common import (
    ACCESS_TOKEN_LIFETIME,
    DEFAULT_API_CLIENT_ID,
    DEFAULT_API_CLIENT_SECRET,
    DEFAULT_API_IDENTIFIER,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_LOGIN_SCOPE,
    DEFAULT_SPA_CLIENT_ID,
    MISSING,
    Clock,
)
from .state.common import user_id_for as _user_id_for


class QuietRequestHandler(WSGIRequestHandler):
    """Handle requests without writing an access log line for each."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Skip the access log."""


class LoggingRequestHandler(WSGIRequestHandler):
    """Handle requests and write werkzeug's access log."""


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):  # noqa: S104  # nosec B104
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class Emulator(Listener):
    """Run a local stand-in for an Auth0 tenant with Token Vault and fake provider APIs.

    For local testing only: it has no security worth the name and must never face the internet.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        auto_login: str | None = None,
        clock: Clock = time.time,
        log_requests: bool = False,
    ) -> None:
        """Prepare an emulator; ``port=0`` picks a free port at :meth:`start`.

        ``auto_login`` (an email) turns on the non-interactive login; ``clock`` (returning epoch
        seconds) drives every expiry the emulator checks; ``log_requests`` writes an access log.
        """
        self.host = host
        self._port = port
        self.state = EmulatorState(clock=clock)
        if auto_login is not None:
            self.set_auto_login(auto_login)
            self.state.default_auto_login = self.state.auto_login
        self.app = create_app(self.state)
        self._log_requests = log_requests
        self._serving: ServingThread | None = None
        self._lifecycle = threading.Lock()
        if port:
            self.state.base_url = self._base_url(port)

    # -- life cycle -----------------------------------------------------------------------

    def _base_url(self, port: int) -> str:
        return f"http://{_url_host(self.host)}:{port}"

    def start(self) -> Emulator:
        """Start serving in a daemon thread (a no-op when already running); return self."""
        with self._lifecycle:
            if self._serving is not None:
                return self
            handler = LoggingRequestHandler if self._log_requests else QuietRequestHandler
            server = make_server(
                self.host, self._port, self.app, threaded=True, request_handler=handler
            )
            self._port = server.server_port
            self.state.base_url = self._base_url(self._port)
            self._serving = ServingThread(server, f"token-vault-emulator-{self._port}")
        return self

    def stop(self) -> None:
        """Stop serving and wait for the server thread to end (a no-op when not running)."""
        with self._lifecycle:
            serving, self._serving = self._serving, None
        if serving is not None:
            serving.stop()

    @property
    def running(self) -> bool:
        """Tell whether the server thread is serving."""
        return self._serving is not None and self._serving.thread.is_alive()

    # -- addresses and credentials --------------------------------------------------------

    @property
    def port(self) -> int:
        """Return the port; raise RuntimeError before :meth:`start` when it was 0."""
        if not self._port:
            raise RuntimeError("the emulator picks its port at start(); call start() first")
        return self._port

    @property
    def url(self) -> str:
        """Return the base URL, e.g. ``http://127.0.0.1:8100`` (no trailing slash)."""
        return self._base_url(self.port)

    @property
    def domain(self) -> str:
        """Return host:port, the "domain" Auth0 SDKs take (use them with the http protocol)."""
        return self.url.split("://", 1)[1]

    @property
    def issuer(self) -> str:
        """Return the issuer: the base URL with a trailing slash, as Auth0 writes it."""
        return self.url + "/"

    #: The default client's id.
    client_id: Final = DEFAULT_CLIENT_ID
    #: The default client's secret.
    client_secret: Final = DEFAULT_CLIENT_SECRET
    #: The identifier (audience) of the tenant's default API.
    api_identifier: Final = DEFAULT_API_IDENTIFIER
    #: The id of the default API's Custom API Client.
    api_client_id: Final = DEFAULT_API_CLIENT_ID
    #: The secret of the default API's Custom API Client.
    api_client_secret: Final = DEFAULT_API_CLIENT_SECRET
    #: The id of the public single-page application client (PKCE, no secret).
    spa_client_id: Final = DEFAULT_SPA_CLIENT_ID

    @property
    def google_api_base(self) -> str:
        """Return the fake ``https://www.googleapis.com`` base URL."""
        return self.url + GOOGLE_API_PATH

    @property
    def graph_api_base(self) -> str:
        """Return the fake ``https://graph.microsoft.com`` base URL."""
        return self.url + GRAPH_API_PATH

    @property
    def slack_api_base(self) -> str:
        """Return the fake ``https://slack.com/api/`` base URL (``slack_sdk``'s ``base_url``)."""
        return self.url + SLACK_API_PATH + "/api/"

    @property
    def github_api_base(self) -> str:
        """Return the fake ``https://api.github.com`` base URL (PyGithub's ``base_url``)."""
        return self.url + GITHUB_API_PATH

    def app_config(self) -> dict[str, str]:
        """Return the settings that point an app at this emulator (config keys or environment).

        The ``AUTH0_*`` keys (``AUTH0_DOMAIN`` keeps its ``http://``: a bare host:port would mean
        https), and ``GOOGLE_API_BASE`` and ``MICROSOFT_GRAPH_API_BASE``, the fake APIs, for the
        app to put in its connections' ``api_base``.
        """
        return {
            "AUTH0_DOMAIN": self.url,
            "AUTH0_CLIENT_ID": self.client_id,
            "AUTH0_CLIENT_SECRET": self.client_secret,
            "GOOGLE_API_BASE": self.google_api_base,
            "MICROSOFT_GRAPH_API_BASE": self.graph_api_base,
        }

    # -- controls -------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget users, codes, tokens, connected accounts, counters and faults.

        Clients and connections stay; provider token lifetimes go back to the default and
        auto-login goes back to what the constructor was given.
        """
        self.state.reset()

    def exchange_count(self, user_id: str | None = None, connection: str | None = None) -> int:
        """Return how many Token Vault exchanges succeeded, optionally for one user/connection."""
        return self.state.exchange_count(user_id, connection)

    def stats(self) -> dict[str, Any]:
        """Return the counters, as ``GET /__emulator/stats`` answers them."""
        return self.state.stats()

    def add_fault(
        self,
        endpoint: str,
        status: int = 500,
        body: Any = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        times: int = 1,
        error: str | None = None,
        error_description: str | None = None,
        drop: bool = False,
    ) -> Fault:
        """Make the next ``times`` requests to ``endpoint`` fail (``times=-1``: until cleared).

        ``status=0`` with a ``delay`` answers normally but late; ``drop=True`` closes the
        connection without an answer. ``body`` may be a dict (sent as JSON) or a string (raw);
        with no body, ``error``/``error_description`` make an OAuth error document.
        """
        fault = Fault(
            endpoint=endpoint,
            status=status,
            body=body,
            content_type=content_type,
            headers=dict(headers or {}),
            delay=delay,
            times=times,
            error=error,
            error_description=error_description,
            drop=drop,
        )
        self.state.add_fault(fault)
        return fault

    def clear_faults(self) -> None:
        """Remove every fault."""
        self.state.clear_faults()

    def set_auto_login(
        self,
        email: str | None,
        name: str | None = None,
        account: str | None = None,
        consent: bool = True,
    ) -> None:
        """Sign ``email`` in at /authorize without the page (None: show it; consent=False: deny)."""
        self.state.set_auto_login(email, name, account, consent)

    @property
    def auto_login(self) -> AutoLogin | None:
        """Return the current non-interactive login setting, if any."""
        return self.state.auto_login

    def connect_account(
        self,
        email: str,
        connection: str,
        scopes: str | Iterable[str] = (),
        account: str | None = None,
    ) -> str:
        """Connect (or re-connect, merging scopes) an account without a browser; return its id."""
        return self.state.connect_account(email, connection, scopes, account).id

    def issue_refresh_token(
        self,
        email: str,
        scope: str = DEFAULT_LOGIN_SCOPE,
        client_id: str = DEFAULT_CLIENT_ID,
    ) -> str:
        """Create the user if needed and return an Auth0 refresh token for them."""
        return self.state.issue_refresh_token_for(email, scope, client_id).token

    def issue_access_token(
        self,
        email: str,
        audience: str = DEFAULT_API_IDENTIFIER,
        scope: str = "",
        *,
        client_id: str = DEFAULT_SPA_CLIENT_ID,
        expires_in: int = ACCESS_TOKEN_LIFETIME,
        claims: dict[str, Any] | None = None,
    ) -> str:
        """Create the user if needed and return an access token for an API, as a SPA gets one.

        ``claims`` replace claims (``None`` removes one): the token stays signed by the tenant,
        so a test can check each claim on its own.
        """
        return self.state.issue_access_token_for(
            email, audience, scope, client_id=client_id, expires_in=expires_in, claims=claims
        )

    def rotate_signing_key(self) -> str:
        """Sign tokens with a new key from now on (the old one stays published); return its kid."""
        with self.state.lock:
            return self.state.signing_key.rotate()

    def user_id_for(self, email: str) -> str:
        """Return the Auth0 user id the emulator gives (or will give) the user with this email."""
        return _user_id_for(email)

    def session_id_of(self, refresh_token: str) -> str | None:
        """Return the ``sid`` of the Auth0 session a refresh token was issued in, if known."""
        record = self.state.get_refresh_token(refresh_token)
        return record.sid if record is not None else None

    def sessions_for(self, email: str) -> list[str]:
        """Return the ``sid`` of each signed-in Auth0 session of a user, oldest first."""
        return [session.sid for session in self.state.sessions_of(_user_id_for(email))]

    def refresh_token_active(self, refresh_token: str) -> bool:
        """Tell whether a refresh token is still valid (not revoked)."""
        return self.state.get_refresh_token(refresh_token) is not None

    def set_backchannel_logout_urls(
        self, urls: Iterable[str], client_id: str = DEFAULT_CLIENT_ID
    ) -> None:
        """Set a client's ``oidc_logout.backchannel_logout_urls`` (as the Management API does)."""
        client = self.state.get_client(client_id)
        if client is None:
            raise ValueError(f"unknown client {client_id!r}")
        with self.state.lock:
            client.oidc_logout = {**client.oidc_logout, "backchannel_logout_urls": list(urls)}

    def backchannel_logout(
        self, email: str, *, sid: str | None = None, client_id: str | None = None
    ) -> list[BackchannelDelivery]:
        """End a user's Auth0 session ``sid`` (default: all of theirs) and send logout tokens.

        Each client of the session with back-channel logout URLs gets a token; a user with no
        session gets one naming only ``sub``. Returns what each URL answered.
        """
        return backchannel.end_sessions(
            self.state, _user_id_for(email), sid=sid, client_id=client_id
        )

    def logout_token(
        self, email: str | None = None, *, client_id: str = DEFAULT_CLIENT_ID, **claims: Any
    ) -> str:
        """Return a signed back-channel logout token for ``client_id``, for a test to send itself.

        It names the user ``email`` (``sub``) and/or the session ``sid`` (a claim like the
        others); ``claims`` add or replace claims (``None`` removes one), to make tokens a client
        must refuse.
        """
        sub = _user_id_for(email) if email is not None else None
        return self.state.logout_token(client_id, sub=sub, **claims)

    @property
    def backchannel_deliveries(self) -> list[BackchannelDelivery]:
        """Return every logout token sent to a back-channel URL so far, oldest first."""
        with self.state.lock:
            return list(self.state.backchannel_deliveries)

    def privileged_access_log(self) -> list[PrivilegedAccess]:
        """Return every Privileged Worker exchange accepted so far, with its ``audit_context``.

        Oldest first: what Auth0 writes to the tenant's logs for each background token.
        """
        with self.state.lock:
            return list(self.state.privileged_accesses)

    def ciba_requests(self) -> list[dict[str, Any]]:
        """Return every backchannel (CIBA) request so far: id, user, message, details, status."""
        return ciba.listing(self.state)

    def approve_ciba(self, auth_req_id: str | None = None) -> None:
        """Approve a backchannel request (default: the latest), as the user's phone would."""
        ciba.decide(self.state, auth_req_id or self._latest_ciba(), "approve")

    def deny_ciba(self, auth_req_id: str | None = None) -> None:
        """Deny a backchannel request (default: the latest)."""
        ciba.decide(self.state, auth_req_id or self._latest_ciba(), "deny")

    def expire_ciba(self, auth_req_id: str | None = None) -> None:
        """Make a backchannel request (default: the latest) expire now."""
        ciba.decide(self.state, auth_req_id or self._latest_ciba(), "expire")

    def set_ciba_interval(self, seconds: int) -> None:
        """Set the polling interval ``/bc-authorize`` asks for (Auth0's is 5 seconds)."""
        with self.state.lock:
            self.state.ciba_interval = seconds

    def _latest_ciba(self) -> str:
        found = self.ciba_requests()
        if not found:
            raise KeyError("no backchannel request yet")
        return str(found[-1]["auth_req_id"])

    def set_provider_token_ttl(self, connection: str, seconds: int) -> None:
        """Set ``expires_in`` of the provider tokens the exchange issues for ``connection``."""
        self.state.set_provider_ttl(connection, seconds)

    def misreport_expires_in(self, connection: str, value: Any = MISSING) -> None:
        """Make the exchange for ``connection`` report ``expires_in`` = ``value`` (default: none).

        The tokens keep their real lifetime (:meth:`set_provider_token_ttl`): the answer lies
        about it, as a broken upstream would (``float("inf")`` is sent as ``Infinity``).
        ``reset()`` puts the truth back.
        """
        self.state.misreport_expires_in(connection, value)

    def revoke_provider_tokens(
        self, email: str | None = None, connection: str | None = None
    ) -> int:
        """Make the provider APIs answer 401 for tokens issued so far; return how many."""
        return self.state.revoke_provider_tokens_for(email, connection)

    def break_provider_refresh(
        self, email: str, connection: str, broken: bool = True, account: str | None = None
    ) -> int:
        """Make the exchange fail with ``federated_connection_refresh_token_flow_failed``."""
        return self.state.break_provider_refresh(email, connection, broken, account)

    # -- tenant configuration (what the Management API changes) ---------------------------

    def add_client(
        self,
        client_id: str,
        client_secret: str,
        *,
        name: str = "Emulator client",
        grant_types: Iterable[str] | None = None,
        management_scopes: Iterable[str] | None = None,
    ) -> None:
        """Register a client enabled on every connection.

        ``management_scopes`` limits the scopes of its Management API tokens (default: every
        scope), to test 403 answers.
        """
        self.state.add_client(
            client_id,
            client_secret,
            name,
            grant_types=grant_types,
            management_scopes=management_scopes,
        )

    def add_api(
        self,
        identifier: str,
        scopes: Iterable[str] = (),
        *,
        name: str | None = None,
        signing_alg: str = "RS256",
        rbac: bool = False,
    ) -> str:
        """Register an API (resource server) with the scopes it defines; return its id.

        ``rbac`` puts the granted API scopes in a ``permissions`` claim too (Auth0's "Add
        Permissions in the Access Token").
        """
        return self.state.add_resource_server(
            identifier, name, scopes, signing_alg=signing_alg, rbac=rbac
        ).id

    def add_connection(
        self,
        name: str,
        strategy: str = "oauth2",
        options: dict[str, Any] | None = None,
        default_scopes: Iterable[str] = (),
    ) -> str:
        """Register a connection enabled for every client; return its ``con_...`` id."""
        return self.state.add_connection(name, strategy, options, default_scopes).id

    def add_credential(
        self, public_pem: str, alg: str = "RS256", name: str = "", client_id: str | None = None
    ) -> str:
        """Register a public key on a client (default: the default client); return its id."""
        return self.state.add_credential(client_id or self.client_id, public_pem, alg, name).id

    def use_private_key_jwt(self, credential_id: str, client_id: str | None = None) -> None:
        """Make a client authenticate with ``private_key_jwt`` only (its secret stops working)."""
        with self.state.lock:
            client = self.state.clients[client_id or self.client_id]
            client.client_authentication_methods = {
                "private_key_jwt": {"credentials": [{"id": credential_id}]}
            }
            client.token_endpoint_auth_method = None

    def set_privileged_access(
        self,
        credential_id: str,
        grants: dict[str, list[str]],
        ip_allowlist: Iterable[str] = ("127.0.0.1/32", "::1/128"),
        client_id: str | None = None,
    ) -> None:
        """Allow a client's key to sign Privileged Worker requests for these connections.

        From this machine by default (``ip_allowlist``); an empty allowlist refuses every
        request, as Auth0 does.
        """
        with self.state.lock:
            self.state.clients[client_id or self.client_id].token_vault_privileged_access = {
                "credentials": [{"id": credential_id}],
                "ip_allowlist": list(ip_allowlist),
                "grants": [{"connection": c, "scopes": list(s)} for c, s in grants.items()],
            }

    def require_proof_of_possession(
        self, required: bool = True, client_id: str | None = None
    ) -> None:
        """Make a client's token requests need a DPoP proof ("Require Sender Constraining")."""
        with self.state.lock:
            self.state.clients[client_id or self.client_id].require_proof_of_possession = required

    def require_dpop_nonce(self, required: bool = True) -> str | None:
        """Make DPoP proofs carry a server nonce (a new one each call); return it."""
        return self.state.require_dpop_nonce(required)

    def restore_tenant(self) -> None:
        """Put back the default clients, APIs, connections and MFA policy; forget retired keys.

        :meth:`reset` keeps all of these.
        """
        self.state.restore_tenant()

    def bare_tenant(self) -> None:
        """Make the tenant a new one: the app and its connections exist, nothing is set up.

        The default client lacks the Token Vault grant, rotates refresh tokens, has no
        refresh-token policy for the My Account API and no callback or logout URL (loopback
        URLs are refused like any unlisted URL); no connection has either Token Vault switch.
        It may still call the Management API. :meth:`restore_tenant` undoes it.
        """
        self.state.make_bare()

    def set_tenant_features(self, **features: bool | None) -> None:
        """Switch tenant features (``None`` leaves one as it is; :meth:`restore_tenant` resets).

        ``tokenset_endpoints=False``: the Management API's tokenset endpoints answer 404, as on
        tenants after Auth0 dropped them (2026-07). ``connected_accounts_switch=False``: a tenant
        from before Connected Accounts, whose connections refuse ``connected_accounts``.
        ``assurance_policy=True``: the My Account API's Authentication Assurance, a ``/me/``
        token only for a session that passed a second factor (``acr_values`` multi-factor)
        within 15 minutes, else ``unmet_authentication_requirements``. Another name raises
        TypeError.
        """
        self.state.set_tenant_features(**features)

    def add_organization(self, name: str, members: list[str] | None = None) -> str:
        """Create an Organization and return its id; ``members`` (e-mails) limit who joins it."""
        ids = None if members is None else [self.user_id_for(email) for email in members]
        return self.state.add_organization(name, ids).id

    def set_tokenset_timestamps(self, style: str) -> None:
        """Make the Management API write tokenset times as ``"epoch"`` (default) or ``"iso"``."""
        self.state.set_tokenset_timestamps(style)

    def set_mfa_policy(self, always: bool) -> None:
        """Set the tenant's MFA policy to "Always" (True) or "Never" (False)."""
        self.state.set_mfa_policy(always)
