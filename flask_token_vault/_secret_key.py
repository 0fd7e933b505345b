"""Recognise a ``SECRET_KEY`` anyone can read: a placeholder from the docs, or a short one.

(Layer: settings, at the bottom.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import ConfigurationError

_MIN_SECRET_BYTES = 32

#: ``SECRET_KEY`` values copied from documentation and tutorials (this project's included).
#: Anyone can read them, so a session signed with one can be forged. ``doctor`` reports them;
#: compare with :func:`is_placeholder_secret`, which also catches one repeated character.
PLACEHOLDER_SECRET_KEYS = frozenset(
    {
        "dev",
        "development",
        "test",
        "testing",
        "secret",
        "secret-key",
        "secret_key",
        "secretkey",
        "mysecret",
        "my-secret-key",
        "your-secret-key",
        "your_secret_key",
        "supersecret",
        "super-secret",
        "super-secret-key",
        "changeme",
        "change-me",
        "change_me",
        "changeit",
        "change-this",
        "replace-me",
        "password",
        "s3cr3t",
        "dev-secret",
        "dev-secret-key",
        "not-a-secret",
        "change-me-to-a-long-random-string",
        "a-test-secret-of-at-least-16-characters",
    }
)


def is_placeholder_secret(value: str | bytes) -> bool:
    """Return whether ``value`` is a well-known placeholder secret or one repeated character."""
    raw = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    text = raw.strip().lower()
    return text in PLACEHOLDER_SECRET_KEYS or bool(re.fullmatch(r"(.)\1*", text))


def check_secret_key(config: Mapping[str, Any]) -> None:
    """Refuse a ``SECRET_KEY`` that is a known placeholder or short, unless DEBUG or TESTING.

    The key signs the session cookie: with a guessable one anybody can make a session of
    their own choosing, so a production app must not start with it.
    """
    if config.get("DEBUG") or config.get("TESTING"):
        return
    secret = config.get("SECRET_KEY")
    if not secret:
        return  # _keys names a missing key; Flask refuses sessions without one
    raw = secret.decode("utf-8", "replace") if isinstance(secret, bytes) else str(secret)
    fix = (
        "set it from the environment to a long random value, e.g. the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(48))'` (placeholders and short "
        "keys are accepted only with DEBUG or TESTING on)."
    )
    if is_placeholder_secret(raw):
        raise ConfigurationError("SECRET_KEY", "is a well-known placeholder: " + fix)
    size = len(raw.encode())
    if size < _MIN_SECRET_BYTES:
        raise ConfigurationError(
            "SECRET_KEY", f"is only {size} bytes long (at least {_MIN_SECRET_BYTES}): " + fix
        )
