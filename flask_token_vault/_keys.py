"""The app's own private keys, which sign what it sends to Auth0.

(Layer: settings; knows nothing of HTTP or Flask.) Each is read once, at start-up, from PEM text
or the path of a PEM file, and never appears in a repr, a log line or an error message (errors
name the configuration key only).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import unicodedata
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from .errors import ConfigurationError

#: ``client_assertion_type`` of a ``private_key_jwt`` assertion.
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: The algorithms Auth0 accepts for client credentials.
CLIENT_KEY_ALGORITHMS = ("RS256", "RS384", "PS256")
#: Seconds a client assertion or a Privileged Worker subject token stays valid (Auth0 allows
#: five minutes for the first and refuses the second past 60 s).
ASSERTION_LIFETIME = 60
#: The longest ``audit_context`` Auth0 accepts in a Privileged Worker subject token.
MAX_AUDIT_CONTEXT = 256
_MIN_RSA_BITS = 2048


def audit_context_problem(value: object) -> str | None:
    """Return what is wrong with a Privileged Worker ``audit_context``, or ``None`` if fit.

    Auth0 requires a human-readable reason of 1 to 256 characters and writes it to the tenant's
    logs. The answer never quotes the value (it may hold what it should not).
    """
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    if not value.strip():
        return "must say why the job needs the token (1 to 256 characters), not be empty"
    if len(value) > MAX_AUDIT_CONTEXT:
        return f"is {len(value)} characters long; Auth0 accepts at most {MAX_AUDIT_CONTEXT}"
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        # It lands in tenant logs and log streams: one readable line, no control characters.
        return "must be one line of readable text, without control characters"
    return None


def access_token_hash(token: str) -> str:
    """Return the DPoP ``ath`` of an access token: base64url(SHA-256(token))."""
    digest = hashlib.sha256(token.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _read_pem(value: Any, key: str) -> bytes:
    """Return PEM bytes from PEM text or the path of a PEM file; name ``key`` when it is neither.

    The message never quotes the value: it may be the key itself.
    """
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(key, "must be PEM text or the path of a PEM file.")
    text = value.strip()
    if text.startswith("-----BEGIN"):
        return text.encode()
    path = Path(text).expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            key,
            f"is neither PEM text nor a readable file ({type(exc).__name__}); give the PEM "
            "text itself or the path of the PEM file.",
        ) from None
    if b"-----BEGIN" not in data:
        raise ConfigurationError(key, "names a file that holds no PEM key.")
    return data


def _import(value: Any, kind: type[RSAKey] | type[ECKey], key: str, what: str) -> Any:
    pem = _read_pem(value, key)
    try:
        imported = kind.import_key(pem)
    except Exception:  # joserfc raises several types for unreadable or other keys
        raise ConfigurationError(
            key, f"is not a readable unencrypted {what} private key in PEM form."
        ) from None
    if not imported.is_private:
        raise ConfigurationError(key, f"is a public key; give the {what} *private* key.")
    return imported


class ClientKey:
    """The app's client key: signs client assertions and Privileged Worker subject tokens."""

    def __init__(self, pem: Any, algorithm: Any = "RS256") -> None:
        name = "AUTH0_CLIENT_PRIVATE_KEY"
        if algorithm not in CLIENT_KEY_ALGORITHMS:
            raise ConfigurationError(
                name + "_ALG",
                f"must be one of {', '.join(CLIENT_KEY_ALGORITHMS)}, not {algorithm!r}.",
            )
        self._key: RSAKey = _import(pem, RSAKey, name, "RSA")
        raw = self._key.private_key
        if not isinstance(raw, rsa.RSAPrivateKey) or raw.key_size < _MIN_RSA_BITS:
            raise ConfigurationError(name, f"must be an RSA key of at least {_MIN_RSA_BITS} bits.")
        self.algorithm = algorithm
        #: The key's RFC 7638 thumbprint (SHA-256, base64url): how this package names it.
        self.kid: str = self._key.thumbprint()

    def __repr__(self) -> str:
        return f"ClientKey(alg={self.algorithm}, kid={self.kid[:8]}...)"

    def public_pem(self) -> str:
        """Return the public key as PEM text (what is registered as the client's credential)."""
        return self._key.as_pem(private=False).decode("ascii")

    def sign(self, claims: dict[str, Any], typ: str = "JWT") -> str:
        """Return a compact JWS of ``claims`` with this key."""
        header = {"alg": self.algorithm, "typ": typ, "kid": self.kid}
        return str(jwt.encode(header, claims, self._key, algorithms=[self.algorithm]))

    def _claims(self, issuer: str, subject: str, audience: str, now: float) -> dict[str, Any]:
        issued = int(now)
        return {
            "iss": issuer,
            "sub": subject,
            "aud": audience,
            "iat": issued,
            "exp": issued + ASSERTION_LIFETIME,
            "jti": secrets.token_urlsafe(24),
        }

    def client_assertion(self, client_id: str, audience: str, now: float) -> str:
        """Return a ``private_key_jwt`` assertion: ``iss`` = ``sub`` = client id, fresh ``jti``."""
        return self.sign(self._claims(client_id, client_id, audience, now))

    def subject_token(
        self,
        client_id: str,
        audience: str,
        user_id: str,
        now: float,
        *,
        audit_context: str,
        org_id: str | None = None,
    ) -> str:
        """Return a Privileged Worker subject token (``typ: token-vault-req+jwt``) for a user.

        ``audit_context`` is the business reason Auth0 requires and records in the tenant logs
        (see :func:`audit_context_problem`); ``org_id``, when given, the Auth0 Organization the
        job acts in (Auth0 checks the user belongs to it).
        """
        problem = audit_context_problem(audit_context)
        if problem is not None:
            raise ValueError(f"audit_context {problem}.")
        claims = self._claims(client_id, user_id, audience, now)
        claims["audit_context"] = audit_context
        if org_id is not None:
            claims["org_id"] = org_id
        return self.sign(claims, typ="token-vault-req+jwt")


class DPoPKey:
    """The app's DPoP key (EC P-256): signs the proofs that bind Auth0's tokens to the app."""

    algorithm = "ES256"

    def __init__(self, pem: Any) -> None:
        key = "TOKEN_VAULT_DPOP_KEY"
        self._key: ECKey = _import(pem, ECKey, key, "EC P-256")
        raw = self._key.private_key
        if not isinstance(raw, ec.EllipticCurvePrivateKey) or raw.curve.name != "secp256r1":
            raise ConfigurationError(
                key,
                "must be an EC P-256 key (ES256, the curve Auth0 supports for DPoP): "
                "openssl ecparam -name prime256v1 -genkey -noout -out dpop-key.pem",
            )
        self._jwk = dict(self._key.as_dict(private=False))
        #: The RFC 7638 thumbprint of the public key: the ``cnf.jkt`` of bound tokens.
        self.thumbprint: str = self._key.thumbprint()

    def __repr__(self) -> str:
        return f"DPoPKey(jkt={self.thumbprint[:8]}...)"

    def proof(
        self,
        method: str,
        url: str,
        now: float,
        *,
        nonce: str | None = None,
        access_token: str | None = None,
    ) -> str:
        """Return a DPoP proof for one HTTP request (``htu`` without query or fragment)."""
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(24),
            "htm": method.upper(),
            "htu": url.split("?", 1)[0].split("#", 1)[0],
            "iat": int(now),
        }
        if nonce:
            claims["nonce"] = nonce
        if access_token:
            claims["ath"] = access_token_hash(access_token)
        header = {"typ": "dpop+jwt", "alg": self.algorithm, "jwk": self._jwk}
        return str(jwt.encode(header, claims, self._key, algorithms=[self.algorithm]))


class ClientCertificate:
    """The app's TLS client certificate, for mTLS client authentication (RFC 8705).

    Kept as the two file paths ``requests`` needs; both files are read once at start-up to
    check that they hold a certificate and the private key that goes with it.
    """

    def __init__(self, certificate: Any, key: Any) -> None:
        cert_name, key_name = "AUTH0_CLIENT_CERTIFICATE", "AUTH0_CLIENT_CERTIFICATE_KEY"
        cert_path = _pem_path(certificate, cert_name)
        key_path = _pem_path(key, key_name)
        try:
            cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
        except ValueError:
            raise ConfigurationError(
                cert_name, "names a file that holds no PEM certificate."
            ) from None
        try:
            private = serialization.load_pem_private_key(Path(key_path).read_bytes(), None)
        except (ValueError, TypeError):
            raise ConfigurationError(
                key_name, "names a file that holds no readable unencrypted PEM private key."
            ) from None
        raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if private.public_key().public_bytes(*raw) != cert.public_key().public_bytes(*raw):
            raise ConfigurationError(
                key_name, "is not the private key of the certificate in AUTH0_CLIENT_CERTIFICATE."
            )
        #: ``(certificate path, key path)``, as ``requests`` takes its ``cert``.
        self.paths: tuple[str, str] = (cert_path, key_path)
        digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()
        #: The certificate's SHA-256 thumbprint (``x5t#S256``, base64url): how it is named.
        self.thumbprint = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def __repr__(self) -> str:
        return f"ClientCertificate(x5t#S256={self.thumbprint[:8]}...)"


def _pem_path(value: Any, key: str) -> str:
    """Return the path of a readable PEM file; name ``key`` (never the value) when it is not."""
    if not isinstance(value, str) or not value.strip() or value.lstrip().startswith("-----"):
        raise ConfigurationError(key, "must be the path of a PEM file.")
    path = Path(value.strip()).expanduser()
    if not path.is_file():
        raise ConfigurationError(key, "names no readable file; give the path of the PEM file.")
    return str(path)
