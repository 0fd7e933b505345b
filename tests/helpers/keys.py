"""Private keys in PEM form, and a client that authenticates with one instead of a secret."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

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
