"""Helpers the tests import: the test app, browser-like sign-in, cookies, concurrency, workers.

Fixtures live in ``conftest.py``; everything here is plain functions and constants.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask, jsonify
from flask.testing import FlaskClient
from joserfc.jwk import KeySet
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from flask_token_vault import (
    AccountNotConnected,
    ProviderToken,
    TokenVault,
    current_access_token,
    current_user,
    get_provider_token,
    get_provider_token_set,
    login_required,
    provider_token_required,
)
from flask_token_vault._cache import Slot
from flask_token_vault_emulator.signing import b64url_encode
from flask_token_vault_pytest.testing import FakeClock, login_as

ROOT = Path(__file__).resolve().parent.parent
CAL_READ = "https://www.googleapis.com/auth/calendar.readonly"
CAL_WRITE = "https://www.googleapis.com/auth/calendar.events"
TIMEOUT = 10


def make_app(emu: Any, **config: Any) -> Flask:
    """Build a small app using the extension against the emulator, with a few provider routes."""
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SECRET_KEY="test-secret-key-0123456789abcdef",
        AUTH0_DOMAIN=emu.url,
        AUTH0_CLIENT_ID=emu.client_id,
        AUTH0_CLIENT_SECRET=emu.client_secret,
        TOKEN_VAULT_CONNECTIONS={
            "google-oauth2": {
                "scopes": ["openid", "email", "profile"],
                "api_base": emu.google_api_base,
            },
            "windowslive": {"scopes": ["User.Read"], "api_base": emu.graph_api_base},
        },
    )
    app.config.update(config)
    TokenVault(app)

    @app.get("/")
    def index() -> str:
        return "home"

    @app.get("/whoami")
    def whoami() -> Any:
        if not current_user:
            return jsonify(sub=None, sid=None)
        return jsonify(sub=current_user.sub, sid=getattr(current_user, "sid", None))

    @app.get("/calendar")
    @provider_token_required("google-oauth2", scopes=[CAL_READ])
    def calendar() -> Any:
        return _provider_json(emu.google_api_base + "/calendar/v3/users/me/calendarList", "google")

    @app.get("/calendar/write")
    @provider_token_required("google-oauth2", scopes=[CAL_READ, CAL_WRITE])
    def calendar_write() -> Any:
        return jsonify(ok=True)

    @app.get("/async-calendar")
    @provider_token_required("google-oauth2", scopes=[CAL_READ])
    async def async_calendar() -> Any:
        return jsonify(token_length=len(get_provider_token("google-oauth2")))

    @app.get("/me")
    @provider_token_required("windowslive", scopes=["User.Read"])
    def me() -> Any:
        return _provider_json(emu.graph_api_base + "/v1.0/me", "microsoft")

    return app


API_READ = "read:calendar"


def make_api_app(emu: Any, **config: Any) -> Flask:
    """Build :func:`make_app` as an API too: the emulator's API and its Custom API Client.

    ``/api/calendar`` needs the API scope ``read:calendar`` and a Google token with the calendar
    scope, and answers Google's calendar list with the caller's ``sub``; ``/api/open`` needs no
    API scope (a session or an access token will do) and answers who called; ``/api/whoami`` is
    only ``login_required``.
    """
    settings: dict[str, Any] = {
        "AUTH0_AUDIENCE": emu.api_identifier,
        "TOKEN_VAULT_API_CLIENT_ID": emu.api_client_id,
        "TOKEN_VAULT_API_CLIENT_SECRET": emu.api_client_secret,
    }
    settings.update(config)
    app = make_app(emu, **{k: v for k, v in settings.items() if v is not None})

    @app.get("/api/calendar")
    @provider_token_required("google-oauth2", scopes=[CAL_READ], api_scopes=[API_READ])
    def api_calendar() -> Any:
        token = get_provider_token("google-oauth2", [CAL_READ])
        url = emu.google_api_base + "/calendar/v3/users/me/calendarList"
        answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
        caller = current_access_token
        return jsonify(sub=caller.sub if caller else None, calendars=answer.json())

    @app.get("/api/whoami")
    @login_required
    def api_whoami() -> Any:
        caller, user = current_access_token, current_user
        return jsonify(bearer=caller.sub if caller else None, session=user.sub if user else None)

    @app.get("/api/open")
    @provider_token_required("google-oauth2", scopes=[CAL_READ])
    def api_open() -> Any:
        caller = current_access_token
        user = current_user
        return jsonify(
            bearer=caller.sub if caller else None,
            session=user.sub if user else None,
            token_length=len(get_provider_token("google-oauth2", [CAL_READ])),
        )

    return app


def bearer(token: str) -> dict[str, str]:
    """Return the headers of an API call carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}


def _provider_json(url: str, provider: str) -> Any:
    connection = "google-oauth2" if provider == "google" else "windowslive"
    token = get_provider_token(connection)
    answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
    return jsonify(answer.json()), answer.status_code


# The wire values, spelled out here rather than imported, so the tests check them independently.
TOKEN_VAULT_GRANT = (
    "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token"
)
REFRESH_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:refresh_token"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
FEDERATED_TOKEN_TYPE = "http://auth0.com/oauth/token-type/federated-connection-access-token"
#: Where the tests that speak to the emulator directly ask to be sent back after /authorize.
REDIRECT_URI = "http://127.0.0.1:5999/callback"


#: What Auth0's Management API answers when it rate-limits a request.
MANAGEMENT_RATE_LIMITED = {
    "statusCode": 429,
    "error": "Too Many Requests",
    "message": "Global limit has been reached",
    "errorCode": "too_many_requests",
}


def pkce_pair() -> tuple[str, str]:
    """Return a PKCE code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_request(
    emu: Any, browser: requests.Session | None = None, /, **params: str | None
) -> requests.Response:
    """GET the emulator's /authorize as the test app's client, without following the redirect.

    ``params`` add to or replace the usual ones; a ``None`` leaves one out. ``browser`` keeps
    the emulator's cookie between calls.
    """
    query: dict[str, str | None] = {
        "client_id": emu.client_id,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid profile email offline_access",
        "state": "state-123",
        "nonce": "nonce-123",
        **params,
    }
    sent = {name: value for name, value in query.items() if value is not None}
    return (browser or requests).get(
        emu.url + "/authorize", params=sent, allow_redirects=False, timeout=TIMEOUT
    )


def redirect_query(response: requests.Response) -> dict[str, str]:
    """Return the query of the redirect to :data:`REDIRECT_URI` that ``response`` is."""
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


def token_request(
    emu: Any,
    body: Mapping[str, str | None],
    *,
    as_json: bool = False,
    basic: bool = False,
    headers: Mapping[str, str] | None = None,
) -> requests.Response:
    """POST ``body`` to the emulator's token endpoint; a ``None`` value is left out.

    The test app's client authenticates in the body unless ``body`` names another (or, with
    ``basic``, with HTTP Basic); ``as_json`` sends JSON instead of a form.
    """
    client = {} if basic else {"client_id": emu.client_id, "client_secret": emu.client_secret}
    sent = {name: value for name, value in {**client, **body}.items() if value is not None}
    return requests.post(
        emu.url + "/oauth/token",
        data=None if as_json else sent,
        json=sent if as_json else None,
        auth=(emu.client_id, emu.client_secret) if basic else None,
        headers=headers,
        timeout=TIMEOUT,
    )


def code_grant(
    emu: Any, code: str, verifier: str | None = None, **client: str | None
) -> requests.Response:
    """Redeem an authorization code at the emulator (``client`` overrides the credentials)."""
    body = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        **client,
    }
    return token_request(emu, body)


def vault_exchange(
    emu: Any,
    refresh_token: str,
    connection: str | None = "google-oauth2",
    *,
    as_json: bool = False,
    basic: bool = False,
    headers: Mapping[str, str] | None = None,
    **extra: str | None,
) -> requests.Response:
    """Exchange a refresh token at the emulator's Token Vault grant, as the test app's client."""
    body: dict[str, str | None] = {
        "grant_type": TOKEN_VAULT_GRANT,
        "subject_token_type": REFRESH_TOKEN_TYPE,
        "subject_token": refresh_token,
        "requested_token_type": FEDERATED_TOKEN_TYPE,
        "connection": connection,
        **extra,
    }
    return token_request(emu, body, as_json=as_json, basic=basic, headers=headers)


def assert_error(response: requests.Response, status: int, error: str) -> dict[str, Any]:
    """Check ``response`` is an OAuth error document with ``status`` and ``error``; return it."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["error"] == error, body
    assert isinstance(body["error_description"], str)
    return body


def sdk_error(error: Any) -> tuple[Any, Any, Any]:
    """Return what an Auth0 SDK error says (status, error code, message), to compare at once."""
    return error.status_code, error.error_code, error.message


def hs256_with_public_key(emu: Any, claims: dict[str, Any]) -> str:
    """Forge a JWT signed HS256 with the emulator's public key as the secret (alg confusion)."""
    header = {"alg": "HS256", "typ": "JWT", "kid": emu.state.signing_key.kid}
    signing_input = ".".join(b64url_encode(json.dumps(p).encode()) for p in (header, claims))
    key = json.dumps(emu.state.signing_key.public_jwk()).encode()
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url_encode(signature)


def keyset(emu: Any) -> KeySet:
    """Return the emulator's signing keys, as its JWKS document publishes them."""
    jwks = requests.get(emu.url + "/.well-known/jwks.json", timeout=TIMEOUT).json()
    keys: KeySet = KeySet.import_key_set(jwks)
    return keys


def access_token(emu: Any, body: Mapping[str, str]) -> str:
    """Return the access token the emulator's token endpoint issues for ``body``."""
    answer = token_request(emu, body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def management_token(emu: Any) -> str:
    """Return a Management API access token for the test app's client (client credentials)."""
    return access_token(emu, {"grant_type": "client_credentials", "audience": emu.url + "/api/v2/"})


def my_account_access_token(emu: Any, email: str, scope: str) -> str:
    """Return a My Account API access token for ``email`` with ``scope`` (refresh-token grant)."""
    body = {
        "grant_type": "refresh_token",
        "refresh_token": emu.issue_refresh_token(email),
        "audience": emu.url + "/me/",
        "scope": scope,
    }
    return access_token(emu, body)


def cached_token(
    app: Flask, user_id: str, connection: str = "google-oauth2", scopes: tuple[str, ...] = ()
) -> ProviderToken | None:
    """Return the token the app's cache holds for this slot (near cache, then store)."""
    return TokenVault.state(app).cache.get(Slot(user_id, connection, None, tuple(sorted(scopes))))


_INPUT = re.compile(r"<input\b[^>]*>", re.I)
_ATTR = re.compile(r'(\w+)="([^"]*)"')


def form_fields(html: str) -> dict[str, str]:
    """Return the name -> value of every input in an HTML page."""
    fields: dict[str, str] = {}
    for tag in _INPUT.findall(html):
        attrs = dict(_ATTR.findall(tag))
        if "name" in attrs:
            fields[attrs["name"]] = attrs.get("value", "")
    return fields


def csrf(client: FlaskClient) -> str:
    """Return the session's form token, as the sign-out page shows it."""
    return form_fields(client.get("/auth/logout").get_data(as_text=True))["csrf_token"]


def follow_to_emulator(client: FlaskClient, path: str) -> str:
    """GET ``path`` on the app and follow its redirects until one leaves for the emulator."""
    response = client.get(path)
    for _ in range(5):
        assert response.status_code == 302, response.get_data(as_text=True)
        location = response.headers["Location"]
        if location.startswith("http"):
            return location
        response = client.get(location)
    raise AssertionError("no redirect to the emulator")


def back_to_app(client: FlaskClient, emulator_answer: requests.Response) -> Any:
    """Follow the emulator's redirect back into the app (the test client's ``localhost``)."""
    assert emulator_answer.status_code == 302, emulator_answer.text
    back = urlsplit(emulator_answer.headers["Location"])
    assert back.netloc == "localhost", emulator_answer.headers["Location"]
    return client.get(back.path + "?" + back.query)


def emulator_redirect(url: str) -> str:
    """Let the emulator answer ``url`` (auto-login on) and return where it sends the browser."""
    answer = requests.get(url, allow_redirects=False, timeout=TIMEOUT)
    assert answer.status_code == 302, answer.text
    return str(answer.headers["Location"])


def through_emulator(client: FlaskClient, url: str) -> Any:
    """Let the emulator answer ``url`` (auto-login on) and follow its redirect into the app."""
    return back_to_app(client, requests.get(url, allow_redirects=False, timeout=TIMEOUT))


def sign_in_via_page(
    client: FlaskClient,
    authorize_url: str,
    email: str = "alice@example.com",
    action: str = "allow",
    account: str = "",
) -> Any:
    """Fill the emulator's login page like a person would and bring the answer back to the app."""
    page = requests.get(authorize_url, timeout=TIMEOUT)
    assert page.status_code == 200, page.text
    fields = form_fields(page.text)
    fields.update(email=email, name=email.split("@")[0].title(), action=action)
    if "account" in fields or account:
        fields["account"] = account
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(authorize_url))
    answer = requests.post(origin + "/u/login", data=fields, allow_redirects=False, timeout=TIMEOUT)
    return back_to_app(client, answer)


def browser_login(
    client: FlaskClient, path: str, email: str = "alice@example.com", account: str = ""
) -> Any:
    """Visit ``path``, go through login/connect on the emulator's page, return the final answer."""
    callback = sign_in_via_page(client, follow_to_emulator(client, path), email, account=account)
    assert callback.status_code == 302, callback.get_data(as_text=True)
    return client.get(callback.headers["Location"])


def alice_client(app: Flask, emu: Any) -> FlaskClient:
    """Return a test client of ``app`` signed in as alice, who connected Google (calendar read)."""
    client = app.test_client()
    login_as(client, emu, "alice@example.com", {"google-oauth2": [CAL_READ]})
    return client


def holding_a_token(
    app: Flask, emu: Any, email: str = "alice@example.com", path: str = "/calendar"
) -> tuple[FlaskClient, str]:
    """Sign ``email`` in (Google connected, calendar read) and fetch ``path`` once.

    The app then holds the user's Google token. Returns the client and the user id.
    """
    client = app.test_client()
    user_id = login_as(client, emu, email, {"google-oauth2": [CAL_READ]})
    assert client.get(path).status_code == 200
    return client, user_id


def session_cookie(client: FlaskClient) -> str | None:
    """Return the value of the client's session cookie, if it has one."""
    cookie = client.get_cookie("session")
    return cookie.value if cookie is not None else None


def cookie_payload(client: FlaskClient) -> str:
    """Return the decoded (signed, not encrypted) payload of the session cookie."""
    value = session_cookie(client)
    assert value is not None
    payload = value.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return (zlib.decompress(raw) if value.startswith(".") else raw).decode()


def hammer(app: Flask, cookie: str, n: int, path: str = "/calendar") -> list[int]:
    """Send ``n`` requests at once from ``n`` threads with one session cookie; return statuses."""
    barrier = threading.Barrier(n)
    statuses: list[int] = [0] * n

    def run(i: int) -> None:
        client = app.test_client()
        client.set_cookie("session", cookie)
        barrier.wait()
        statuses[i] = client.get(path).status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


#: The emulator's attributes :func:`make_app` reads.
_APP_READS = ("url", "client_id", "client_secret", "google_api_base", "graph_api_base")


def emulator_args(emu: Any) -> dict[str, str]:
    """Return what a worker process needs to build :func:`make_app` for this emulator.

    The worker stands them up as the emulator (a namespace with these attributes).
    """
    return {name: getattr(emu, name) for name in _APP_READS}


def spawn_worker(
    mode: str, args: dict[str, Any], *, first_on_path: str | None = None, stdin: bool = False
) -> subprocess.Popen[str]:
    """Start ``python -m tests._worker MODE ARGS`` in a process of its own.

    ``first_on_path`` goes before everything on ``sys.path`` (another version of a package);
    with ``stdin`` the test can write to the worker (see :func:`start_together`).
    """
    path = [first_on_path] if first_on_path else []
    return subprocess.Popen(
        [sys.executable, "-m", "tests._worker", mode, json.dumps(args)],
        cwd=ROOT,
        stdin=subprocess.PIPE if stdin else None,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([*path, str(ROOT)])},
    )


def start_together(workers: list[subprocess.Popen[str]], delay: float = 0.3) -> float:
    """Wait until every worker says it is ready, then tell all of them when to start.

    However long each took to import and build its app on a busy machine, they start at the
    same wall-clock time, which is returned.
    """
    for worker in workers:
        assert worker.stdout is not None
        assert json.loads(worker.stdout.readline()) == {"ready": True}
    start_at = time.time() + delay
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(f"{start_at}\n")
        worker.stdin.flush()
    return start_at


def worker_output(worker: subprocess.Popen[str], timeout: float = 120) -> Any:
    """Wait for a worker and return the JSON of its last line of output (kill it if late)."""
    try:
        out, _ = worker.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.communicate()
        raise
    return json.loads(out.strip().splitlines()[-1])


_KEYS: dict[str, str] = {}


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def rsa_key_pem(name: str = "client") -> str:
    """Return a private RSA key in PEM form, made once per name for the test session."""
    if name not in _KEYS:
        _KEYS[name] = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _KEYS[name]


def ec_key_pem(name: str = "dpop") -> str:
    """Return a private EC P-256 key in PEM form, made once per name for the test session."""
    if name not in _KEYS:
        _KEYS[name] = _pem(ec.generate_private_key(ec.SECP256R1()))
    return _KEYS[name]


def public_pem(private_pem: str) -> str:
    """Return the public half of a private key, in PEM form."""
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def register_client_key(emu: Any, private_pem: str | None = None) -> str:
    """Register a key on the emulator's client and make it the only way in; return its id."""
    credential = emu.add_credential(public_pem(private_pem or rsa_key_pem()), name="test")
    emu.use_private_key_jwt(credential)
    return str(credential)


def keyed_config(private_pem: str | None = None, **config: Any) -> dict[str, Any]:
    """Return app config that authenticates with a key instead of the client secret."""
    return {
        "AUTH0_CLIENT_SECRET": None,
        "AUTH0_CLIENT_PRIVATE_KEY": private_pem or rsa_key_pem(),
        **config,
    }


def app_clock(app: Flask) -> FakeClock:
    """Give ``app`` a running fake clock (real time plus what the test advances) and return it."""
    clock = FakeClock(running=True)
    TokenVault.state(app).set_clock(clock)
    return clock


def add_overview(app: Flask) -> Flask:
    """Add a page that shows each connection, as the example app's home page does."""

    @app.get("/overview")
    def overview() -> Any:
        found = {}
        for name in ("google-oauth2", "windowslive"):
            try:
                found[name] = bool(get_provider_token_set(name).access_token)
            except AccountNotConnected:
                found[name] = False
        return jsonify(found)

    return app


def exchange_requests(emu: Any) -> int:
    """Return how many Token Vault exchanges (of any subject) the emulator was asked for."""
    token_requests = emu.stats()["token_requests"]
    return sum(n for grant, n in token_requests.items() if "token-exchange" in grant)


def overview_under_rate_limit(app: Flask, emu: Any) -> tuple[Any, FakeClock]:
    """Load :func:`add_overview`'s page for alice, two accounts connected, while Auth0 answers 429.

    Returns the JSON answer and the app's clock (whose ``sleeps`` say how long it waited).
    """
    clock = app_clock(app)
    client = app.test_client()
    grants = {"google-oauth2": [CAL_READ], "windowslive": ["User.Read"]}
    login_as(client, emu, "alice@example.com", grants)
    emu.add_fault(
        "token:exchange",
        status=429,
        error="too_many_requests",
        headers={"Retry-After": "2"},
        times=-1,
    )
    return client.get("/overview", headers={"Accept": "application/json"}), clock


def whoami(client: FlaskClient) -> str | None:
    """Return the ``sub`` the app sees signed in for ``client``, or ``None``."""
    answer = client.get("/whoami")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    sub = answer.get_json()["sub"]
    return sub if isinstance(sub, str) else None


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Keep the test output free of access-log lines."""


_Served = TypeVar("_Served", bound="LiveServer")


class LiveServer:
    """Serve an app over real HTTP on a free 127.0.0.1 port (for the emulator to call it)."""

    def __init__(self, app: Flask) -> None:
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler
        )
        #: The server's base URL, e.g. ``http://127.0.0.1:PORT``.
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self: _Served) -> _Served:
        """Serve from a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (if it was started) and wait for the thread."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()

    def __enter__(self: _Served) -> _Served:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
