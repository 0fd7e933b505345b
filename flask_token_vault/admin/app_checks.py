"""The checks of the app's own configuration, and the :class:`Check` every doctor check is.

(Layer: beside :mod:`.doctor`, which adds the tenant's checks; none of these has a fix in
``setup``: each names the setting to change.)
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from flask import Flask

from .._decorators import unconfigured_views
from .._redis import misconfiguration_fix
from .._secret_key import check_secret_key
from .._store import Store, in_slot
from ..errors import ConfigurationError

PASS = "pass"  # noqa: S105  # nosec B105 - a check status, not a password
FAIL = "fail"
SKIP = "skip"


@dataclass(frozen=True)
class Check:
    """The result of one doctor check."""

    #: What was checked, e.g. ``client is first-party``.
    name: str
    #: ``pass``, ``fail`` or ``skip`` (could not be checked).
    status: str
    #: What was found.
    detail: str = ""
    #: What to do, when it failed (or was skipped).
    fix: str = ""

    @property
    def ok(self) -> bool:
        """Return whether the check did not fail."""
        return self.status != FAIL

    def to_dict(self) -> dict[str, str]:
        """Return the check as a JSON-ready dict."""
        return asdict(self)


def passed(name: str, detail: str = "") -> Check:
    """Return a passed check."""
    return Check(name, PASS, detail)


def failed(name: str, detail: str, fix: str) -> Check:
    """Return a failed check, with its fix."""
    return Check(name, FAIL, detail, fix)


def skipped(name: str, detail: str, fix: str = "") -> Check:
    """Return a check that could not be made or is not needed."""
    return Check(name, SKIP, detail, fix)


def _views_check(app: Flask, connections: Mapping[str, Any]) -> Check:
    name = "views name configured connections"
    bad = unconfigured_views(app, connections)
    if bad:
        return failed(
            name,
            "; ".join(f"{endpoint} needs {conn!r}" for endpoint, conn in bad)
            + f" (configured: {', '.join(sorted(connections)) or 'none'})",
            "Add the connection to TOKEN_VAULT_CONNECTIONS or fix its name in the decorator: "
            "the app refuses to serve requests until then.",
        )
    return passed(name, f"{len(app.view_functions)} views checked")


def _secret_key_check(config: Mapping[str, Any]) -> Check:
    name = "SECRET_KEY fit for production"
    fix = (
        "Set SECRET_KEY from the environment to a long random value, e.g. the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
    )
    key = config.get("SECRET_KEY")
    raw = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
    if not isinstance(raw, str) or not raw:
        return failed(name, "SECRET_KEY is not set", fix)
    try:
        check_secret_key({"SECRET_KEY": raw})  # the app's own rule, as in production
    except ConfigurationError as exc:
        return failed(name, f"SECRET_KEY {exc.problem.split('. ', 1)[0]}", fix)
    # Beyond the rule the app enforces: a key this uniform was typed, not randomly drawn.
    if len(set(raw)) < 12:
        return failed(name, "SECRET_KEY has too little variety to be random", fix)
    return passed(name, f"{len(raw)} characters")


def _cookie_checks(config: Mapping[str, Any]) -> list[Check]:
    checks: list[Check] = []
    if config.get("SESSION_COOKIE_SECURE") is True:
        checks.append(passed("session cookie Secure"))
    else:
        checks.append(
            failed(
                "session cookie Secure",
                "SESSION_COOKIE_SECURE is not True: the session cookie may travel over plain HTTP",
                "Set SESSION_COOKIE_SECURE = True (and serve the app over HTTPS).",
            )
        )
    if config.get("SESSION_COOKIE_HTTPONLY", True) is True:
        checks.append(passed("session cookie HttpOnly"))
    else:
        checks.append(
            failed(
                "session cookie HttpOnly",
                "SESSION_COOKIE_HTTPONLY is not True: scripts can read the session cookie",
                "Set SESSION_COOKIE_HTTPONLY = True.",
            )
        )
    samesite = config.get("SESSION_COOKIE_SAMESITE")
    if isinstance(samesite, str) and samesite.lower() in ("lax", "strict"):
        checks.append(passed("session cookie SameSite", samesite))
    else:
        checks.append(
            failed(
                "session cookie SameSite",
                f"SESSION_COOKIE_SAMESITE is {samesite!r}",
                "Set SESSION_COOKIE_SAMESITE = 'Lax' (the login callback is a top-level "
                "navigation, which 'Lax' allows).",
            )
        )
    return checks


def _process_count(processes: int | None, environ: Callable[[str], str | None]) -> int:
    if processes is not None:
        return processes
    raw = environ("WEB_CONCURRENCY") or ""
    return int(raw) if raw.strip().isascii() and raw.strip().isdigit() else 1


def _cache_check(shared: bool, backend: str, processes: int | None) -> Check:
    name = "cache shared between processes"
    count = _process_count(processes, os.environ.get)
    if shared:
        return passed(name, f"{backend} is shared")
    if count > 1:
        return failed(
            name,
            f"{backend} lives in one process but the app runs {count} processes: each keeps its "
            "own tokens and exchanges again",
            "Set TOKEN_VAULT_CACHE to a shared cache, e.g. 'redis://HOST:6379/0'.",
        )
    return passed(name, f"{backend} in one process (set --processes when there are more)")


def _cache_round_trip(store: Store) -> Check:
    """Write, read and lock a ``tv:`` key through the app's own store, its scripts included."""
    name = "cache answers"
    if not store.shared:
        return passed(name, f"{store.name} lives in this process")
    key = in_slot(secrets.token_hex(16), "doctor")
    try:
        store.set(key, b"1", 10)
        # The script the cache reads tokens with: two declared keys in one hash slot.
        generation, _ = store.get_in_generation(key, key + ":")
        locked = store.add(key + ":lock", b"doctor", 5)
        store.release(key + ":lock", b"doctor")
        store.delete(key)
        problem = store.layout_problem()
    except Exception as exc:
        kind = store.classify(exc)
        fix = (
            misconfiguration_fix(exc)
            if kind == "misconfigured"
            else "Check TOKEN_VAULT_CACHE's host, port and scheme (rediss:// for TLS) and that "
            "this machine reaches it within TOKEN_VAULT_CACHE_TIMEOUT"
        )
        return failed(name, f"{store.name} refused or did not answer ({type(exc).__name__})", fix)
    if problem is not None:
        return failed(name, f"{store.name} is a cluster reached through one node", problem)
    if generation != "1" or not locked:
        return failed(name, f"{store.name} did not give back what was written", "Check the cache.")
    return passed(name, f"{store.name}: a write, a read, a lock and the scripts work")


def app_checks(
    app: Flask, connections: Mapping[str, Any], store: Store, processes: int | None
) -> list[Check]:
    """Check the views' connections, ``SECRET_KEY``, the session cookie and the cache."""
    return [
        _views_check(app, connections),
        _secret_key_check(app.config),
        *_cookie_checks(app.config),
        _cache_check(store.shared, store.name, processes),
        _cache_round_trip(store),
    ]
