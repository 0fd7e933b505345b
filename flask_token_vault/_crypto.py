"""Symmetric encryption and keyed hashes, with keys derived from the app's secrets.

Flask's session cookie is signed, not encrypted, so the refresh token is sealed before it goes
in, as are provider tokens before they reach the cache. HKDF-SHA256 derives one key per purpose
from each secret. Sealing is AES-256-GCM: ``version (1 byte) | key id (4 bytes) | nonce (12
bytes) | ciphertext and tag``, with the purpose and the caller's context (the cache key, the
session's user) as associated data, so a value opens only where it was sealed. Of a list of
secrets (rotation), the first seals and every one opens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"
_MIN_SEALED = 1 + 4 + 12 + 16  # version, key id, nonce, tag
# The shortest URL-safe base64 text (unpadded) of a sealed value.
_MIN_SESSION_CHARS = (_MIN_SEALED * 4 + 2) // 3


class InvalidToken(ValueError):
    """Raise when a sealed value was not made by one of our keys, or was altered."""


def _derive(secret: bytes, label: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"flask-token-vault", info=label.encode()
    ).derive(secret)


class _Sealer:
    """AES-GCM with several keys: the first seals, each opens what it sealed."""

    def __init__(self, secrets: Sequence[bytes], purpose: str) -> None:
        self._aad = purpose.encode()
        self._keys: dict[bytes, AESGCM] = {}
        self._primary = b""
        for secret in secrets:
            key = _derive(secret, purpose)
            key_id = hashlib.sha256(key).digest()[:4]
            self._keys.setdefault(key_id, AESGCM(key))
            self._primary = self._primary or key_id

    def seal(self, data: bytes, context: bytes = b"") -> bytes:
        nonce = os.urandom(12)
        body = self._keys[self._primary].encrypt(nonce, data, self._aad + b"\0" + context)
        return _VERSION + self._primary + nonce + body

    def knows(self, head: bytes) -> bool:
        """Return whether ``head`` (a sealed value's first bytes) names one of these keys."""
        return head[:1] == _VERSION and head[1:5] in self._keys

    def open(self, sealed: bytes, context: bytes = b"") -> bytes:
        if len(sealed) < _MIN_SEALED or sealed[:1] != _VERSION:
            raise InvalidToken("not a sealed value")
        aead = self._keys.get(sealed[1:5])
        if aead is None:
            raise InvalidToken("sealed with a key that is not configured")
        try:
            return aead.decrypt(sealed[5:17], sealed[17:], self._aad + b"\0" + context)
        except InvalidTag:
            raise InvalidToken("altered or foreign value") from None


class Crypto:
    """Encrypt, decrypt and hash with keys derived from the app's secrets."""

    def __init__(self, secrets: Sequence[bytes]) -> None:
        if not secrets:
            raise ValueError("at least one secret is required")
        self._session = _Sealer(secrets, "session/v1")
        self._cache = _Sealer(secrets, "cache/v1")
        # One hash key per secret: keys are made with the first, and logout reaches entries
        # made under the others (an app not yet rotated still uses one of them).
        self._hash_keys = tuple(dict.fromkeys(_derive(s, "cache-key/v1") for s in secrets))

    def __repr__(self) -> str:
        return "Crypto(<keys hidden>)"

    def seal_session(self, plaintext: str, context: str = "") -> str:
        """Encrypt a value for the session cookie (URL-safe base64), bound to ``context``."""
        sealed = self._session.seal(plaintext.encode(), context.encode())
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")

    def session_key_known(self, token: str) -> bool:
        """Return whether a session value was sealed by one of our keys, without opening it.

        Only its version and key id are read: cheap enough for every request.
        """
        if not isinstance(token, str) or len(token) < _MIN_SESSION_CHARS:
            return False
        try:
            head = base64.urlsafe_b64decode(token[:8])
        except ValueError:  # binascii.Error, or a character outside ASCII
            return False
        return self._session.knows(head)

    def open_session(self, token: str, context: str = "") -> str:
        """Decrypt a session value; raise :class:`InvalidToken` when it is not ours."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            return self._session.open(raw, context.encode()).decode()
        except InvalidToken:
            raise
        except ValueError:  # bad base64 or UTF-8 (UnicodeError is a ValueError)
            raise InvalidToken("malformed value") from None

    def seal_cache(self, plaintext: bytes, key: str = "") -> bytes:
        """Encrypt a value for the cache, bound to the cache ``key`` it is stored at."""
        return self._cache.seal(plaintext, key.encode())

    def open_cache(self, token: bytes, key: str = "") -> bytes:
        """Decrypt a cached value stored at ``key``; raise :class:`InvalidToken` if it is not."""
        return self._cache.open(token, key.encode())

    def keyed_hash(self, *parts: str) -> str:
        """Return an HMAC-SHA256 of the parts, unambiguously joined, as hex."""
        return self.keyed_hashes(*parts)[0]

    def keyed_hashes(self, *parts: str) -> tuple[str, ...]:
        """Return :meth:`keyed_hash` of the parts under each configured secret, the first first.

        An app with ``SECRET_KEY_FALLBACKS`` (or several ``TOKEN_VAULT_ENCRYPTION_KEYS``) finds
        here the keys that apps still on an older secret use.
        """
        # Each part's length goes first, so that ("ab", "c") and ("a", "bc") differ.
        message = b"".join(len(data).to_bytes(4, "big") + data for data in map(str.encode, parts))
        return tuple(hmac.digest(key, message, "sha256").hex() for key in self._hash_keys)
