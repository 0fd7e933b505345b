"""TLS client certificates for mTLS tests, and app config that authenticates with one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask_token_vault_emulator.tls import MtlsListener, make_certificate, pem_files


def client_certificate(directory: Path, name: str = "client") -> tuple[str, str, str]:
    """Make a self-signed client certificate; return its PEM and the paths of both files."""
    cert, key = make_certificate(f"Token Vault test {name}")
    cert_path, key_path = pem_files(directory, name, cert, key)
    return cert_path.read_text(), str(cert_path), str(key_path)


def certificate_config(
    listener: MtlsListener, cert_path: str, key_path: str, **config: Any
) -> dict[str, Any]:
    """Return app config that authenticates by mTLS (no secret), trusting ``listener``."""
    return {
        "AUTH0_CLIENT_SECRET": None,
        "AUTH0_CLIENT_CERTIFICATE": cert_path,
        "AUTH0_CLIENT_CERTIFICATE_KEY": key_path,
        "TOKEN_VAULT_MTLS_CA_BUNDLE": listener.ca_bundle,
        **config,
    }
