"""Keys, encryption and keyed hashes.

Flask's session cookie is signed, not encrypted, so the refresh token is encrypted before it goes
in. Keys are derived with HKDF-SHA256 from each configured secret, one purpose per label, so the
session key, the cache key and the cache-key hash never coincide. Encryption is Fernet
(AES-128-CBC + HMAC-SHA256); a list of secrets gives rotation: the first encrypts, all decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["Crypto", "InvalidToken"]


def _derive(secret: bytes, label: str, length: int = 32) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=length, salt=b"flask-token-vault", info=label.encode()
    ).derive(secret)


class Crypto:
    """Encrypt, decrypt and hash with keys derived from the app's secrets."""

    def __init__(self, secrets: Sequence[bytes]) -> None:
        if not secrets:
            raise ValueError("at least one secret is required")
        self._session = MultiFernet(
            [Fernet(base64.urlsafe_b64encode(_derive(s, "session/v1"))) for s in secrets]
        )
        self._cache = MultiFernet(
            [Fernet(base64.urlsafe_b64encode(_derive(s, "cache/v1"))) for s in secrets]
        )
        self._hash_key = _derive(secrets[0], "cache-key/v1")

    def __repr__(self) -> str:
        return "Crypto(<keys hidden>)"

    def seal_session(self, plaintext: str) -> str:
        """Encrypt a value for the session cookie."""
        return self._session.encrypt(plaintext.encode()).decode("ascii")

    def open_session(self, token: str) -> str:
        """Decrypt a session value; raise :class:`InvalidToken` when it is not ours."""
        return self._session.decrypt(token.encode("ascii")).decode()

    def seal_cache(self, plaintext: bytes) -> bytes:
        """Encrypt a value before it reaches the cache."""
        return self._cache.encrypt(plaintext)

    def open_cache(self, token: bytes) -> bytes:
        """Decrypt a cached value; raise :class:`InvalidToken` when it is not ours."""
        return self._cache.decrypt(token)

    def keyed_hash(self, *parts: str) -> str:
        """Return an HMAC-SHA256 of the parts, unambiguously joined, as hex."""
        mac = hmac.new(self._hash_key, digestmod=hashlib.sha256)
        for part in parts:
            data = part.encode()
            mac.update(len(data).to_bytes(4, "big"))
            mac.update(data)
        return mac.hexdigest()
