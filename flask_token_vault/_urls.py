"""Validation of redirect targets and of names taken from query strings."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

__all__ = ["safe_next"]

_MAX_NEXT = 2048


def safe_next(value: str | None) -> str | None:
    r"""Return ``value`` if it is a path on this site, else ``None``.

    Only a path that starts with a single ``/`` is accepted: no scheme, no host, no
    protocol-relative ``//`` or ``/\\``, no control characters (CRLF), in the raw value and once
    percent-decoded (browsers and proxies decode in different places).
    """
    if not value or len(value) > _MAX_NEXT:
        return None
    for candidate in (value, unquote(value)):
        if not candidate.startswith("/") or candidate.startswith(("//", "/\\")):
            return None
        if "\\" in candidate or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in candidate):
            return None
        parts = urlsplit(candidate)
        if parts.scheme or parts.netloc:
            return None
    return value
