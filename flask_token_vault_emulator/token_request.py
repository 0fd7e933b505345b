"""Read token endpoint requests: client authentication, parameters, scopes and DPoP keys.

Client authentication is a secret (body or HTTP Basic) or a ``private_key_jwt`` assertion checked
against the client's registered public keys (see :mod:`.proofs`): bad signature, wrong ``aud``,
expired, ``exp`` more than 5 minutes ahead or a ``jti`` seen before answer 401
``invalid_client``. At the TLS listener (the mTLS endpoint aliases, :mod:`.tls`) the client
authenticates by its certificate alone (``self_signed_tls_client_auth``, matched by its SHA-256
thumbprint). A client that authenticates with keys (``token_endpoint_auth_method`` null)
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote_plus

from flask import g, request

from .proofs import client_by_assertion
from .state import Client, EmulatorState
from .state.common import split_scopes
from .tls import certificate_thumbprint
from .web import OAuthError


def missing(name: str) -> OAuthError:
    """Return Auth0's refusal of a request that lacks the parameter ``name``."""
    return OAuthError(400, "invalid_request", f"Missing required parameter: {name}")


def asked_scopes(
    params: dict[str, str], allowed: Sequence[str], refusal: Callable[[str], OAuthError]
) -> list[str]:
    """Return the ``scope`` the request asks for; raise ``refusal(names)`` for any not allowed."""
    requested = split_scopes(params.get("scope"))
    beyond = [scope for scope in requested if scope not in allowed]
    if beyond:
        raise refusal(" ".join(beyond))
    return requested


def required(params: dict[str, str], name: str) -> str:
    """Return a parameter the request must carry, or refuse it as Auth0 does."""
    value = params.get(name)
    if not value:
        raise missing(name)
    return value


def authenticate_client(state: EmulatorState, params: dict[str, str]) -> Client:
    """Return the client authenticated by a secret (Basic or body) or a private_key_jwt assertion.

    The method used is kept in ``g.emulator_client_auth``.
    """
    if request.environ.get("wsgi.url_scheme") == "https":
        return client_by_certificate(state, params)
    headers: dict[str, str] = {}
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if "client_assertion" in params or "client_assertion_type" in params:
        client = client_by_assertion(state, params)
        g.emulator_client_auth = "private_key_jwt"
        return client
    if scheme.lower() == "basic":
        headers = {"WWW-Authenticate": 'Basic realm="Auth0 emulator"'}
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            raise OAuthError(
                401, "invalid_client", "Malformed Basic credentials.", headers
            ) from None
        raw_id, _, raw_secret = decoded.partition(":")
        client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
    else:
        client_id, secret = params.get("client_id", ""), params.get("client_secret", "")
    found = state.get_client(client_id)
    if found is not None and found.is_public and not secret:
        g.emulator_client_auth = "none"
        return found  # a SPA: PKCE stands in for the secret
    if found is None or not secret or not hmac.compare_digest(secret, found.client_secret):
        raise OAuthError(401, "invalid_client", "Client authentication failed.", headers)
    if found.token_endpoint_auth_method is None:
        raise OAuthError(
            401,
            "invalid_client",
            "This client authenticates with private_key_jwt: send a client assertion.",
            headers,
        )
    g.emulator_client_auth = "client_secret"
    return found


def client_by_certificate(state: EmulatorState, params: dict[str, str]) -> Client:
    """Return the client whose registered certificate the TLS client presented (RFC 8705).

    Missing, or not one of ``client_id``'s ``self_signed_tls_client_auth`` credentials: 401
    ``invalid_client``. A secret or an assertion beside it is refused too (one method a call).
    """
    pem = request.environ.get("SSL_CLIENT_CERT")
    if not pem:
        raise OAuthError(
            401, "invalid_client", "The mTLS endpoint needs a client certificate; none was sent."
        )
    if any(name in params for name in ("client_secret", "client_assertion")):
        raise OAuthError(
            401,
            "invalid_client",
            "A client authenticates one way: a certificate and a secret or assertion were sent.",
        )
    client = state.get_client(params.get("client_id", ""))
    registered = {c.kid for c in client.tls_client_auth_credentials()} if client else set()
    if client is None or certificate_thumbprint(pem) not in registered:
        raise OAuthError(
            401, "invalid_client", "The client certificate is not registered for this client."
        )
    g.emulator_client_auth = "self_signed_tls_client_auth"
    return client


def bound(answer: dict[str, Any], jkt: str | None) -> dict[str, Any]:
    """Mark a token answer as DPoP-bound (the access token already carries ``cnf.jkt``)."""
    if jkt is not None:
        answer["token_type"] = "DPoP"  # noqa: S105  # nosec B105
    return answer


def proof_key() -> str | None:
    """Return the thumbprint of the DPoP key this token request proved, if any."""
    value = g.get("emulator_dpop_jkt")
    return value if isinstance(value, str) else None


def require_bound_key(jkt: str | None) -> None:
    """Refuse a request for a bound token that does not prove its key."""
    if jkt is None:
        return
    proved = proof_key()
    if proved is None:
        raise OAuthError(
            400,
            "invalid_dpop_proof",
            "The refresh token is bound to a DPoP key: send a DPoP proof signed with it.",
        )
    if proved != jkt:
        raise OAuthError(
            400,
            "invalid_dpop_proof",
            "The DPoP proof's key is not the key the refresh token is bound to.",
        )
