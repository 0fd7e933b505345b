"""An optional TLS listener: the emulated tenant's mTLS endpoint aliases (RFC 8705).

It serves the same app as the plain listener, on a second port, over TLS with a server
certificate signed by a CA made at start (:attr:`MtlsListener.ca_bundle` is what a client
verifies it with). It asks for a client certificate (``CERT_OPTIONAL``); the token, revoke and
``/bc-authorize`` endpoints there authenticate the client by it alone (see
:func:`..token_request.client_by_certificate`). Python's ``ssl`` has no "accept any
certificate" mode, so a certificate is only accepted at the handshake once the listener trusts
it (:meth:`MtlsListener.register` does); one trusted but not registered for the client asking
is refused by the endpoint with 401 ``invalid_client``, as Auth0's is.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import ssl
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from werkzeug.serving import make_server

from .serving import Listener, ServingThread
from .state.common import random_id
from .state.tenant import Credential

if TYPE_CHECKING:
    from .server import Emulator


def certificate_thumbprint(pem: str) -> str:
    """Return a PEM certificate's SHA-256 thumbprint (``x5t#S256``: base64url of its DER)."""
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    digest = hashlib.sha256(der).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def make_certificate(
    common_name: str,
    *,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    ca: bool = False,
    server_host: str | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Return a new certificate and its P-256 key: self-signed unless ``issuer`` signs it.

    ``ca`` makes a CA certificate; ``server_host`` a server certificate for that host (an IP
    address or a name); neither, a client certificate.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    signer_cert, signer_key = issuer if issuer is not None else (None, key)
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(signer_cert.subject if signer_cert is not None else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if signer_cert is not None:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key())
        builder = builder.add_extension(aki, critical=False)
    if server_host is not None:
        try:
            alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(server_host))
        except ValueError:
            alt = x509.DNSName(server_host)
        builder = builder.add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        usage = ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    elif not ca:
        usage = ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(signer_key, hashes.SHA256()), key


def pem_files(
    directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> tuple[Path, Path]:
    """Write a certificate and its unencrypted key as PEM files; return their paths."""
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class MtlsListener(Listener):
    """Serve an emulator's app over TLS on a second port, asking for a client certificate."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._dir = tempfile.TemporaryDirectory(prefix="token-vault-emulator-tls-")
        self.directory = Path(self._dir.name)
        host = emulator.host if emulator.host not in ("", "0.0.0.0") else "127.0.0.1"  # noqa: S104  # nosec B104
        self.host = host
        ca = make_certificate("Token Vault emulator CA", ca=True)
        server = make_certificate(host, issuer=ca, server_host=host)
        #: The CA certificate (PEM file) that signs the listener's server certificate.
        self.ca_bundle = str(pem_files(self.directory, "ca", *ca)[0])
        server_cert, server_key = pem_files(self.directory, "server", *server)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(server_cert, server_key)
        context.verify_mode = ssl.CERT_OPTIONAL
        # TLS 1.2 at most: a refused client certificate then fails the handshake itself, which
        # the client sees as such, rather than as a connection reset after its request.
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        self.context = context
        self._serving: ServingThread | None = None

    def __repr__(self) -> str:
        return f"MtlsListener({self.url if self._serving else 'stopped'})"

    def start(self) -> MtlsListener:
        """Start serving in a daemon thread and advertise the aliases in discovery."""
        server = make_server(
            self.host, 0, self.emulator.app, threaded=True, ssl_context=self.context
        )
        self._serving = ServingThread(server, "token-vault-emulator-tls")
        self.emulator.state.mtls_base_url = self.url
        return self

    def stop(self) -> None:
        """Stop serving, stop advertising the aliases and remove the certificate files."""
        self.emulator.state.mtls_base_url = None
        serving, self._serving = self._serving, None
        if serving is not None:
            serving.stop()
        self._dir.cleanup()

    @property
    def url(self) -> str:
        """Return the listener's base URL (``https://host:port``)."""
        if self._serving is None:
            raise RuntimeError("the TLS listener is not started")
        return f"https://{self.host}:{self._serving.server.server_port}"

    def trust(self, cert_pem: str) -> None:
        """Accept a certificate at the handshake (the endpoint still checks who registered it)."""
        self.context.load_verify_locations(cadata=cert_pem)

    def register(self, cert_pem: str, client_id: str | None = None) -> str:
        """Register a self-signed client certificate for ``self_signed_tls_client_auth``.

        As Auth0's Management API has it: an ``x509_cert`` credential on the client (default:
        the emulator's), named in ``client_authentication_methods``; the client's secret stops
        working. Return the credential's id.
        """
        self.trust(cert_pem)
        state = self.emulator.state
        credential = Credential(
            id="cred_" + random_id(22),
            name="mTLS client certificate",
            alg="",
            pem=cert_pem,
            kid=certificate_thumbprint(cert_pem),
            created_at=state.now(),
            credential_type="x509_cert",
        )
        with state.lock:
            client = state.clients[client_id or self.emulator.client_id]
            client.credentials.append(credential)
            methods = dict(client.client_authentication_methods or {})
            method = methods.setdefault("self_signed_tls_client_auth", {"credentials": []})
            method["credentials"] = [*method.get("credentials", []), {"id": credential.id}]
            client.client_authentication_methods = methods
            client.token_endpoint_auth_method = None
        return credential.id

    def issue_client_certificate(
        self, client_id: str | None = None, name: str = "client"
    ) -> tuple[str, str]:
        """Make a self-signed client certificate and register it; return its and its key's paths.

        The files live in the listener's directory, removed at :meth:`stop`.
        """
        cert, key = make_certificate(f"Token Vault emulator {name}")
        cert_path, key_path = pem_files(self.directory, name, cert, key)
        self.register(cert_path.read_text(), client_id)
        return str(cert_path), str(key_path)

    def exports(self, cert_path: str, key_path: str) -> list[str]:
        """Return the shell lines that make an app authenticate by this certificate."""
        return [
            "unset AUTH0_CLIENT_SECRET",
            f"export AUTH0_CLIENT_CERTIFICATE={cert_path}",
            f"export AUTH0_CLIENT_CERTIFICATE_KEY={key_path}",
            f"export TOKEN_VAULT_MTLS_CA_BUNDLE={self.ca_bundle}",
        ]
