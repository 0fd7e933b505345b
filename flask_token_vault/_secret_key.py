"""Recognise a ``SECRET_KEY`` anyone can read: a placeholder from the docs, or a short one."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import ConfigurationError

_MIN_SECRET_BYTES = 32
# What an encryption key needs (``_parsers.encryption_keys``), DEBUG or not.
_MIN_DEBUG_BYTES = 16

#: ``SECRET_KEY`` values copied from documentation and tutorials (this project's included),
#: compared in lower case without spaces, dashes and underscores. Anyone can read them, so a
#: session signed with one can be forged.
PLACEHOLDER_SECRET_KEYS = frozenset(
    {
        "dev",
        "development",
        "test",
        "testing",
        "secret",
        "secretkey",
        "mysecret",
        "mysecretkey",
        "yoursecretkey",
        "supersecret",
        "supersecretkey",
        "changeme",
        "changeit",
        "changethis",
        "replaceme",
        "password",
        "s3cr3t",
        "devsecret",
        "devsecretkey",
        "notasecret",
        "changemetoalongrandomstring",
        "atestsecretofatleast16characters",
    }
)


def _as_text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def is_placeholder_secret(value: str | bytes) -> bool:
    """Return whether ``value`` is a well-known placeholder secret or one repeated character."""
    text = re.sub(r"[\s_-]", "", _as_text(value).lower())
    return text in PLACEHOLDER_SECRET_KEYS or bool(re.fullmatch(r"(.)\1*", text))


def check_secret_key(config: Mapping[str, Any]) -> None:
    """Refuse a ``SECRET_KEY`` anyone could guess: one rule, stated whole in every refusal.

    The key signs the session cookie and keys derive from it: with a guessable one anybody can
    make a session of their own choosing. A production key is random and at least
    ``_MIN_SECRET_BYTES`` long; with DEBUG or TESTING on, placeholders and shorter keys pass, down
    to ``_MIN_DEBUG_BYTES`` (below that no encryption key can derive from it).
    """
    secret = config.get("SECRET_KEY")
    if not secret:
        return  # a missing key is refused where encryption keys derive from it
    rule = (
        f"SECRET_KEY must be a random value of at least {_MIN_SECRET_BYTES} bytes (with DEBUG "
        f"or TESTING on, any value of at least {_MIN_DEBUG_BYTES}). Set it from the environment "
        "to the output of `python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
    )
    size = len(_as_text(secret).encode())
    lenient = bool(config.get("DEBUG") or config.get("TESTING"))
    if size < (_MIN_DEBUG_BYTES if lenient else _MIN_SECRET_BYTES):
        raise ConfigurationError("SECRET_KEY", f"is only {size} bytes long. {rule}")
    if not lenient and is_placeholder_secret(secret):
        raise ConfigurationError("SECRET_KEY", f"is a well-known placeholder. {rule}")
