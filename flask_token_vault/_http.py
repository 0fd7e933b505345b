"""The one HTTP transport of the package: every call goes through :meth:`Transport.send`.

(Layer: transport, above settings, clock and errors.) Anything that fails becomes a
:class:`Failure` that the caller's hook turns into its own typed error; nothing is retried
outside the transport's loop.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, Protocol, cast

import requests
from requests.adapters import HTTPAdapter

from ._clock import Clock
from .errors import TokenVaultError

log = logging.getLogger("flask_token_vault")

#: Statuses of Auth0's APIs that are worth another try.
RETRIED_BY_AUTH0_CALLS = frozenset({429, 500, 502, 503, 504})
#: Statuses of a provider's API that are worth another try (a 500 there is usually a bug).
RETRIED_BY_PROVIDER_CALLS = frozenset({429, 502, 503, 504})
_MAX_JSON_DEPTH = 64


@dataclass(frozen=True)
class Failure:
    """Why a call failed, for the caller's hook to turn into its typed error."""

    #: ``timeout``, ``connection_error``, ``status`` (an error answer) or ``malformed_answer``.
    kind: str
    #: The HTTP status, when there was an answer.
    status: int | None = None
    #: The answer's JSON body, when it had one.
    body: Any = None
    #: Seconds the server asked to wait (429), when it said.
    retry_after: float | None = None
    #: The exception's class name, for connection errors.
    reason: str = ""

    @property
    def code(self) -> str:
        """Return a machine-readable code for the failure when the body names none."""
        if self.kind == "status":
            return f"http_{self.status}"
        return self.kind


#: Turns a :class:`Failure` into the caller's typed error.
ErrorHook = Callable[[Failure], TokenVaultError]


@dataclass(frozen=True)
class Reply:
    """A successful (2xx) JSON answer; ``body`` is ``None`` for an empty one."""

    status: int
    body: Any
    headers: Mapping[str, str]


@dataclass
class Attempt:
    """One try of a call, as a :class:`TryHook` sees it: it may add headers and form fields.

    ``headers`` already carry ``Authorization`` (its value is also ``credential``); ``data`` is
    the form, when the call sends one.
    """

    method: str
    url: str
    headers: dict[str, str]
    data: dict[str, Any] | None = None
    credential: str | None = field(default=None, repr=False)


class TryHook(Protocol):
    """What a call adds to each of its tries, and whether an answer asks for one more."""

    def prepare(self, attempt: Attempt) -> None:
        """Add this try's headers or form fields (each try gets its own, e.g. a fresh jti)."""

    def retry(self, response: requests.Response) -> bool:
        """Read an answer; return whether it asks for one more try at once (honoured once)."""


def isolate(session: requests.Session) -> None:
    """Set ``session`` up for calls on many users' behalf: no cookie jar, nothing from the env."""
    no_domain = DefaultCookiePolicy(allowed_domains=[])  # a jar with it never keeps a cookie
    session.cookies = CookieJar(policy=no_domain)  # type: ignore[assignment]
    session.trust_env = False
    session.headers["User-Agent"] = "Flask-Token-Vault"


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Return the wait a 429 asks for, from ``Retry-After`` or ``X-RateLimit-Reset``."""
    value = headers.get("Retry-After")
    if value:
        try:
            return max(0.0, min(float(value), 86_400.0))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - now)
            except (TypeError, ValueError, OverflowError):
                pass
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        try:
            return max(0.0, min(float(reset) - now, 86_400.0))
        except ValueError:
            return None
    return None


def clean_text(text: Any, limit: int = 300) -> str:
    """Keep an upstream description printable and short (it is shown to people)."""
    if not isinstance(text, str):
        return ""
    return "".join(ch if ch.isprintable() else " " for ch in text)[:limit]


def cursor_pages(
    fetch: Callable[[dict[str, str]], Any], key: str, **params: str
) -> Iterator[Mapping[str, Any]]:
    """Yield the objects under ``key`` on every page of an Auth0 listing with a ``next`` cursor.

    ``fetch`` is given each page's query: ``params``, ``take=20`` and, after the first page,
    ``from`` (the previous page's ``next``).
    """
    query = {"take": "20", **params}
    for _ in range(500):  # a bound, should the API keep answering "next"
        data = fetch(dict(query))
        if not isinstance(data, Mapping):
            return
        for item in data.get(key) or []:
            if isinstance(item, Mapping):
                yield item
        after = data.get("next")
        if not isinstance(after, str) or not after or after == query.get("from"):
            return
        query["from"] = after


def _too_deep(value: Any) -> bool:
    """Return whether a parsed JSON value nests deeper than any real answer does."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > _MAX_JSON_DEPTH:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


def parse_json(response: requests.Response) -> Any:
    """Return the JSON body of an answer, or ``None`` when it is not readable JSON."""
    ctype = response.headers.get("Content-Type", "").lower().split(";")[0].strip()
    if not response.content or not (ctype == "application/json" or ctype.endswith("+json")):
        return None
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return None if _too_deep(body) else body


class Transport:
    """Send HTTP calls with pooled connections, per-try timeouts, one deadline and retries.

    One per app, shared by its threads (and by its Auth0 clients); a ``requests.Session`` per
    thread over one connection pool, with no cookie jar.
    """

    def __init__(
        self,
        *,
        http_timeout: float,
        deadline: float,
        max_retries: int,
        clock: Clock | None = None,
        rate_limit_wait: float | None,
        pool_maxsize: int = 64,
    ) -> None:
        self.http_timeout = http_timeout
        #: The most one call sleeps on 429s in all (``None``: whatever fits the deadline).
        self.rate_limit_wait = rate_limit_wait
        self.deadline = max(deadline, http_timeout)
        self.max_retries = max_retries
        self.clock = clock or Clock()
        self._adapter = HTTPAdapter(pool_connections=8, pool_maxsize=pool_maxsize, max_retries=0)
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"Transport(deadline={self.deadline}, max_retries={self.max_retries})"

    @property
    def http(self) -> requests.Session:
        """Return this thread's ``requests.Session`` (pooled connections, no cookies)."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            isolate(session)
            session.mount("https://", self._adapter)
            session.mount("http://", self._adapter)
            self._local.session = session
        return session

    def call_json(self, method: str, url: str, *, retry: bool = True, **kwargs: Any) -> Reply:
        """Send a call to an Auth0 API and return its 2xx JSON answer, or raise ``error(...)``.

        The keywords are :meth:`send`'s (``error``, ``what``, ``auth``, ``renew``, ``hook`` and
        what goes to ``requests``); ``retry=False`` sends the call once, whatever the answer.
        """
        if not retry:
            kwargs.update(retry_status=frozenset(), retry_errors=False)
        return cast(Reply, self.send(method, url, expect_json=True, **kwargs))

    def send(
        self,
        method: str,
        url: str,
        *,
        error: ErrorHook,
        what: str,
        auth: Callable[[], str] | None = None,
        renew: Callable[[str], None] | None = None,
        hook: TryHook | None = None,
        retry_status: frozenset[int] = RETRIED_BY_AUTH0_CALLS,
        retry_errors: bool = True,
        expect_json: bool = False,
        timeout: float | None = None,
        http: Callable[..., requests.Response] | None = None,
        **kwargs: Any,
    ) -> Reply | requests.Response:
        """Send one call inside one deadline, retrying what is worth retrying.

        With ``expect_json``, return a :class:`Reply` for a 2xx JSON (or empty) answer and raise
        ``error(Failure)`` for anything else. Without it, return the last
        ``requests.Response`` whatever its status (the caller reads it), and raise only when no
        answer came at all. ``http`` sends each try, as ``requests.Session.request`` does (by
        default this thread's session: pooled connections, no cookies).
        """
        clock = self.clock
        deadline = clock.monotonic() + self.deadline
        per_try = min(timeout or self.http_timeout, self.deadline)
        headers = dict(kwargs.pop("headers", None) or {})
        kwargs.setdefault("allow_redirects", False)
        form = kwargs.pop("data", None)
        if expect_json:
            headers.setdefault("Accept", "application/json")
        attempt = 0
        rate_waited = 0.0
        renewed = False  # a 401 renews the credential once
        hook_retried = False  # the hook's "one more try" is honoured once
        while True:
            remaining = deadline - clock.monotonic()
            credential = auth() if auth is not None else None
            if credential is not None:
                headers["Authorization"] = credential
            this_try = Attempt(
                method,
                url,
                dict(headers),
                dict(form) if isinstance(form, Mapping) else None,
                credential,
            )
            if hook is not None:
                hook.prepare(this_try)
            failure: Failure
            response: requests.Response | None = None
            try:
                response = (http or self.http.request)(
                    method,
                    url,
                    headers=this_try.headers,
                    data=this_try.data if this_try.data is not None else form,
                    timeout=max(min(per_try, remaining), 0.05),
                    **kwargs,
                )
            except requests.Timeout:
                failure = Failure("timeout")
            except requests.RequestException as exc:
                failure = Failure("connection_error", reason=type(exc).__name__)
            else:
                status = response.status_code
                if hook is not None and hook.retry(response) and not hook_retried:
                    hook_retried = True
                    response.close()
                    continue
                if status == 401 and renew is not None and credential is not None and not renewed:
                    renewed = True
                    response.close()
                    renew(credential)
                    continue
                body = parse_json(response) if expect_json else None
                if not expect_json and status not in retry_status:
                    return response
                if expect_json and 200 <= status < 300:
                    if body is not None or not response.content:
                        return Reply(status, body, response.headers)
                    failure = Failure("malformed_answer", status)
                elif status in retry_status or (body is None and status >= 500 and retry_status):
                    # Only a 429 of Auth0's APIs says how long to wait; a provider's answer may.
                    wait_asked = status == 429 or not expect_json
                    failure = Failure(
                        "status",
                        status,
                        body,
                        retry_after(response.headers, clock.time()) if wait_asked else None,
                    )
                elif body is None:
                    raise error(Failure("malformed_answer", status))
                else:
                    raise error(Failure("status", status, body))
            attempt += 1
            wait = failure.retry_after
            if wait is None:
                wait = random.uniform(0, min(2.0, 0.1 * 2**attempt))  # noqa: S311  # nosec B311
            # Without retries (a code exchange), an unreadable answer is not asked again either.
            unsure = ("timeout", "connection_error", "malformed_answer")
            retryable = retry_errors if failure.kind in unsure else True
            if failure.reason == "SSLError" and "cert" in kwargs:
                # A refused client certificate (or an untrusted mTLS endpoint) stays refused.
                retryable = False
            if failure.status == 429 and self.rate_limit_wait is not None:
                # A request that waits on Auth0's rate limit holds a worker: answer instead.
                retryable = retryable and rate_waited + wait <= self.rate_limit_wait
                rate_waited += wait
            if not retryable or attempt > self.max_retries or wait >= deadline - clock.monotonic():
                log.warning(
                    "%s failed: error=%s attempts=%d", what, failure.status or failure.kind, attempt
                )
                if response is not None and not expect_json:
                    return response
                raise error(failure)
            log.info(
                "%s failed, retrying in %.2fs: error=%s",
                what,
                wait,
                failure.status or failure.kind,
            )
            if response is not None:
                response.close()
            clock.sleep(wait)
