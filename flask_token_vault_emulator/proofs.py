"""Check what clients sign: private_key_jwt assertions, DPoP proofs, Privileged Worker subjects.

Each check answers like Auth0 does when it refuses (see :mod:`.auth0` for the statuses) and
remembers every ``jti`` it accepted until the token could no longer be used, so a replay is
refused.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from flask import request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from .signing import Signed, audiences, read_unverified
from .state import Client, Credential, EmulatorState
from .web import OAuthError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_KEY_ALGORITHMS = ("RS256", "RS384", "PS256")
DPOP_ALGORITHMS = ("ES256", "RS256", "PS256")
#: A client assertion may live at most this long (Auth0: five minutes).
MAX_ASSERTION_LIFETIME = 300
#: A Privileged Worker subject token older than this is refused.
MAX_SUBJECT_AGE = 60
#: The longest ``audit_context`` a subject token may carry (Auth0: 1 to 256 characters).
MAX_AUDIT_CONTEXT = 256
#: How far a DPoP proof's ``iat`` may be from the server's clock.
DPOP_WINDOW = 60
#: How far in the future an ``iat`` may be (clock skew).
SKEW = 5


def _verified(token: str, key: Any, alg: str) -> bool:
    try:
        jwt.decode(token, key, algorithms=[alg])
    except (JoseError, ValueError, TypeError):
        return False
    return True


def _signed_by(token: str, signed: Signed, credentials: list[Credential]) -> Credential | None:
    alg = signed.header.get("alg")
    kid = signed.header.get("kid")
    ordered = sorted(credentials, key=lambda c: c.kid != kid)  # the named key first
    for credential in ordered:
        if alg == credential.alg and _verified(token, credential.public_key(), credential.alg):
            return credential
    return None


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """Return the RFC 7638 thumbprint of a public JWK (what ``cnf.jkt`` holds)."""
    key = ECKey.import_key(jwk) if jwk.get("kty") == "EC" else RSAKey.import_key(jwk)
    return str(key.thumbprint())


def access_token_hash(token: str) -> str:
    """Return the DPoP ``ath`` of an access token."""
    digest = hashlib.sha256(token.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# -- private_key_jwt -------------------------------------------------------------------------


def client_by_assertion(state: EmulatorState, params: dict[str, str]) -> Client:
    """Return the client a ``private_key_jwt`` assertion authenticates, or refuse (401)."""

    def refuse(description: str) -> OAuthError:
        return OAuthError(401, "invalid_client", description)

    if params.get("client_assertion_type") != ASSERTION_TYPE:
        raise refuse(f"client_assertion_type must be {ASSERTION_TYPE}.")
    assertion = params.get("client_assertion", "")
    signed = read_unverified(assertion)
    if signed is None:
        raise refuse("The client assertion is not a JWT.")
    client_id = signed.claims.get("iss")
    if not isinstance(client_id, str) or signed.claims.get("sub") != client_id:
        raise refuse("The client assertion's iss and sub must both be the client id.")
    if params.get("client_id") not in (None, "", client_id):
        raise refuse("client_id does not match the client assertion.")
    client = state.get_client(client_id)
    if client is None:
        raise refuse("Client authentication failed.")
    enabled = client.private_key_jwt_credentials()
    if not enabled:
        raise refuse("private_key_jwt is not enabled for this client: register a credential.")
    if signed.header.get("alg") not in CLIENT_KEY_ALGORITHMS:
        raise refuse("The client assertion must be signed with RS256, RS384 or PS256.")
    if _signed_by(assertion, signed, enabled) is None:
        raise refuse("The client assertion's signature matches none of the client's credentials.")
    if not {state.issuer, state.base_url + "/oauth/token"} & set(audiences(signed.claims)):
        raise refuse(f"The client assertion's aud must be {state.issuer}.")
    now = state.now()
    exp = _number(signed.claims, "exp")
    if exp is None or exp <= now:
        raise refuse("The client assertion has expired.")
    if exp > now + MAX_ASSERTION_LIFETIME + SKEW:
        raise refuse("The client assertion's exp is more than 5 minutes ahead.")
    iat = _number(signed.claims, "iat")
    if iat is not None and iat > now + SKEW:
        raise refuse("The client assertion was issued in the future.")
    jti = signed.claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise refuse("The client assertion has no jti.")
    if not state.use_jti("assertion", client_id, jti, exp):
        raise refuse("The client assertion's jti was already used.")
    return client


# -- DPoP ------------------------------------------------------------------------------------


class DPoPRefused(Exception):
    """A DPoP proof was refused: ``error`` is ``invalid_dpop_proof`` or ``use_dpop_nonce``."""

    def __init__(self, error: str, description: str, nonce: str | None = None) -> None:
        """Describe the refusal (and the nonce to use, for ``use_dpop_nonce``)."""
        super().__init__(description)
        self.error = error
        self.description = description
        self.nonce = nonce


def dpop_thumbprint(state: EmulatorState, *, access_token: str | None = None) -> str | None:
    """Return the thumbprint of the request's DPoP key, None without a proof; refuse a bad one."""
    values = request.headers.getlist("DPoP")
    if not values:
        return None
    if len(values) > 1:
        raise DPoPRefused("invalid_dpop_proof", "More than one DPoP header.")
    proof = values[0]
    signed = read_unverified(proof)
    if signed is None:
        raise DPoPRefused("invalid_dpop_proof", "The DPoP proof is not a JWT.")
    header, claims = signed.header, signed.claims
    if header.get("typ") != "dpop+jwt":
        raise DPoPRefused("invalid_dpop_proof", "The DPoP proof's typ must be dpop+jwt.")
    alg = header.get("alg")
    jwk = header.get("jwk")
    if alg not in DPOP_ALGORITHMS or not isinstance(jwk, dict):
        raise DPoPRefused("invalid_dpop_proof", "The DPoP proof needs an asymmetric alg and jwk.")
    if "d" in jwk:
        raise DPoPRefused("invalid_dpop_proof", "The DPoP proof's jwk holds a private key.")
    try:
        key = ECKey.import_key(jwk) if jwk.get("kty") == "EC" else RSAKey.import_key(jwk)
    except (JoseError, ValueError, TypeError, KeyError):
        raise DPoPRefused("invalid_dpop_proof", "The DPoP proof's jwk is unreadable.") from None
    if not _verified(proof, key, str(alg)):
        raise DPoPRefused("invalid_dpop_proof", "The DPoP proof's signature is invalid.")
    if claims.get("htm") != request.method:
        raise DPoPRefused("invalid_dpop_proof", "The DPoP proof's htm does not match.")
    if claims.get("htu") != state.base_url + request.path:
        raise DPoPRefused("invalid_dpop_proof", "The DPoP proof's htu does not match.")
    now = state.now()
    iat = _number(claims, "iat")
    if iat is None or abs(now - iat) > DPOP_WINDOW:
        raise DPoPRefused("invalid_dpop_proof", "The DPoP proof's iat is too far from now.")
    if access_token is not None and claims.get("ath") != access_token_hash(access_token):
        raise DPoPRefused("invalid_dpop_proof", "The DPoP proof's ath does not match the token.")
    nonce = state.current_dpop_nonce()
    if nonce is not None and claims.get("nonce") != nonce:
        raise DPoPRefused(
            "use_dpop_nonce", "Authorization server requires nonce in DPoP proof", nonce
        )
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise DPoPRefused("invalid_dpop_proof", "The DPoP proof has no jti.")
    if not state.use_jti("dpop", str(jwk_thumbprint(jwk)), jti, now + 2 * DPOP_WINDOW):
        raise DPoPRefused("invalid_dpop_proof", "The DPoP proof's jti was already used.")
    return jwk_thumbprint(jwk)


# -- Privileged Worker -----------------------------------------------------------------------


def worker_subject(state: EmulatorState, client: Client, token: str) -> tuple[str, str, str | None]:
    """Return the user id, ``audit_context`` and ``org_id`` of a ``token-vault-req+jwt``.

    Refuses (401) a token that fails a check; an ``org_id`` must name an organization the user
    belongs to.
    """

    def refuse(description: str) -> OAuthError:
        return OAuthError(401, "invalid_grant", f"Invalid subject token: {description}")

    signed = read_unverified(token)
    if signed is None:
        raise refuse("not a JWT.")
    if signed.header.get("typ") != "token-vault-req+jwt":
        raise refuse("its typ must be token-vault-req+jwt.")
    allowed = client.privileged_credentials()
    if _signed_by(token, signed, allowed) is None:
        raise refuse("its signature matches no credential allowed privileged access.")
    claims = signed.claims
    if claims.get("iss") != client.client_id:
        raise refuse("its iss must be the client id.")
    if state.issuer not in audiences(claims):
        raise refuse(f"its aud must be {state.issuer}.")
    reason = claims.get("audit_context")
    if not isinstance(reason, str) or not 0 < len(reason) <= MAX_AUDIT_CONTEXT:
        raise refuse(
            f"its audit_context is required: a reason of 1 to {MAX_AUDIT_CONTEXT} characters."
        )
    now = state.now()
    iat = _number(claims, "iat")
    if iat is None:
        raise refuse("it has no iat.")
    if iat > now + SKEW:
        raise refuse("it was issued in the future.")
    if now - iat > MAX_SUBJECT_AGE:
        raise refuse(f"it is older than {MAX_SUBJECT_AGE} seconds.")
    exp = _number(claims, "exp")
    if exp is not None and exp <= now:
        raise refuse("it has expired.")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise refuse("it has no jti.")
    if not state.use_jti("subject", client.client_id, jti, iat + MAX_SUBJECT_AGE + SKEW):
        raise refuse("its jti was already used.")
    sub = claims.get("sub")
    if not isinstance(sub, str) or state.user_by_id(sub) is None:
        raise refuse("its sub is not a user of this tenant.")
    org_id = claims.get("org_id")
    if org_id is not None:
        organization = state.organizations.get(org_id) if isinstance(org_id, str) else None
        if organization is None or sub not in organization.members:
            raise refuse("its org_id is not an organization the user belongs to.")
    return sub, reason, org_id
