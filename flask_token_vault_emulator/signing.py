"""Sign and verify the emulator's RS256 JSON Web Tokens and publish the keys as a JWKS.

:meth:`SigningKey.rotate` makes a new key the signing one and keeps the old one published and
trusted, as Auth0 does while a rotation settles: tokens signed before still verify, and an
API that cached the key set meets a key id it has not seen.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64url_encode(data: bytes) -> str:
    """Encode bytes as unpadded base64url text."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url text; raise ValueError when it is not base64url."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("not base64url") from exc


@dataclass(frozen=True)
class Signed:
    """A compact JWT read without trusting it yet."""

    header: dict[str, Any]
    claims: dict[str, Any]
    #: What the signature covers: the header and claims as sent (``header.claims``).
    signing_input: str
    #: The signature as sent (base64url).
    encoded_signature: str


def read_unverified(token: str) -> Signed | None:
    """Return a compact JWT's header and claims, or None when it is not one."""
    parts = token.split(".")
    if not token.isascii() or len(parts) != 3:
        return None
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
    except ValueError:
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return Signed(header, claims, f"{parts[0]}.{parts[1]}", parts[2])


def audiences(claims: dict[str, Any]) -> list[Any]:
    """Return a token's ``aud`` claim as a list (a JWT may name one audience or several)."""
    aud = claims.get("aud")
    return aud if isinstance(aud, list) else [aud]


def is_expired(claims: dict[str, Any], now: float) -> bool:
    """Tell whether a token's ``exp`` is missing, not a number, or not after ``now``."""
    exp = claims.get("exp")
    return not isinstance(exp, (int, float)) or exp <= now


def _int_to_b64url(value: int) -> str:
    return b64url_encode(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class SigningKey:
    """Hold a 2048-bit RSA key pair with a random key id, made when the emulator is built."""

    algorithm = "RS256"

    def __init__(self) -> None:
        """Generate the key pair and its key id."""
        self._private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_urlsafe(16)
        self._previous: dict[str, rsa.RSAPublicKey] = {}

    def rotate(self) -> str:
        """Sign with a new key from now on, still publishing and trusting the old one."""
        self._previous[self.kid] = self._private_key.public_key()
        self._private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_urlsafe(16)
        return self.kid

    def forget_previous(self) -> None:
        """Stop publishing and trusting the keys that :meth:`rotate` retired."""
        self._previous.clear()

    def _jwk(self, kid: str, key: rsa.RSAPublicKey) -> dict[str, str]:
        numbers = key.public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": self.algorithm,
            "kid": kid,
            "n": _int_to_b64url(numbers.n),
            "e": _int_to_b64url(numbers.e),
        }

    def public_jwk(self) -> dict[str, str]:
        """Return the signing public key as a JWK."""
        return self._jwk(self.kid, self._private_key.public_key())

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """Return the JWKS document that lists the public keys (the signing one first)."""
        older = [self._jwk(kid, key) for kid, key in self._previous.items()]
        return {"keys": [self.public_jwk(), *older]}

    def sign(self, claims: dict[str, Any]) -> str:
        """Return a compact RS256 JWT carrying ``claims``, with ``kid`` in its header."""
        header = {"alg": self.algorithm, "typ": "JWT", "kid": self.kid}
        signing_input = ".".join(
            b64url_encode(json.dumps(part, separators=(",", ":")).encode())
            for part in (header, claims)
        )
        signature = self._private_key.sign(
            signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
        )
        return signing_input + "." + b64url_encode(signature)

    def verify(self, token: str) -> dict[str, Any] | None:
        """Return the claims of a JWT this key signed, or None if it is not one (no time checks)."""
        signed = read_unverified(token)
        if signed is None:
            return None
        try:
            signature = b64url_decode(signed.encoded_signature)
        except ValueError:
            return None
        header = signed.header
        kid = header.get("kid")
        public_key = self._private_key.public_key() if kid == self.kid else None
        if isinstance(kid, str) and public_key is None:
            public_key = self._previous.get(kid)
        if header.get("alg") != self.algorithm or public_key is None:
            return None
        try:
            public_key.verify(
                signature,
                signed.signing_input.encode("ascii"),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return None
        return signed.claims
