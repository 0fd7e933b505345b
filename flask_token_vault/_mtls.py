"""mTLS client authentication (RFC 8705): where the client's calls go and what they carry.

(Layer: core, above the transport; Flask-free.) With ``AUTH0_CLIENT_CERTIFICATE``, the calls
that authenticate the client (``/oauth/token``, ``/oauth/revoke``, ``/bc-authorize``) go over TLS
with the certificate to the discovery document's ``mtls_endpoint_aliases`` (RFC 8705 section 5)
when it has them, and send ``client_id`` with no secret or assertion.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from ._config import Settings
from ._http import ErrorHook, Failure, Transport
from ._oidc import read_discovery
from .errors import Misconfigured, TokenVaultError

#: What to check when Auth0 refuses the certificate, or the TLS handshake fails.
REMEDY = (
    "Check AUTH0_CLIENT_CERTIFICATE and AUTH0_CLIENT_CERTIFICATE_KEY: the certificate must be "
    "registered on the application (client_authentication_methods.self_signed_tls_client_auth "
    "or tls_client_auth) and the key must be its own. If Auth0's mTLS endpoint itself is not "
    "trusted, set TOKEN_VAULT_MTLS_CA_BUNDLE to the CA bundle that signs it."
)


class MutualTLS:
    """Route the client's authenticated calls through its TLS client certificate."""

    def __init__(self, settings: Settings, transport: Transport) -> None:
        certificate = settings.client_certificate
        if certificate is None:
            raise ValueError("MutualTLS needs AUTH0_CLIENT_CERTIFICATE")
        self.settings = settings
        self.transport = transport
        #: What each call gives ``requests``: the certificate, and the CAs Auth0 is checked with.
        self.tls: dict[str, Any] = {
            "cert": certificate.paths,
            "verify": settings.mtls_ca_bundle or True,  # never off: a bundle or the system's
        }
        self._aliases: Mapping[str, Any] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MutualTLS({self.settings.base_url!r})"

    def aliases(self) -> Mapping[str, Any]:
        """Return the discovery document's ``mtls_endpoint_aliases`` (read once, then kept)."""
        with self._lock:
            if self._aliases is None:
                document = read_discovery(self.settings, self.transport)
                found = document.get("mtls_endpoint_aliases")
                self._aliases = found if isinstance(found, Mapping) else {}
            return self._aliases

    def route(
        self, endpoint: str, url: str, hook: ErrorHook
    ) -> tuple[str, ErrorHook, dict[str, Any]]:
        """Return where a call goes, its error hook and the keywords that send the certificate.

        The call goes to the alias of the discovery ``endpoint`` name when the tenant has one;
        the hook makes a refused client or a failed handshake name the settings to check.
        """

        def refined(failure: Failure) -> TokenVaultError:
            if failure.kind == "connection_error" and failure.reason == "SSLError":
                return Misconfigured(
                    "The TLS handshake with Auth0's mTLS endpoint failed: the client certificate "
                    "or the endpoint's certificate was refused.",
                    error="invalid_client",
                    remedy=REMEDY,
                )
            error = hook(failure)
            if isinstance(error, Misconfigured) and error.error == "invalid_client":
                error.remedy = REMEDY
            return error

        alias = self.aliases().get(endpoint)
        return (alias if isinstance(alias, str) else url), refined, dict(self.tls)
