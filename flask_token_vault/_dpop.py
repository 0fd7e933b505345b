"""DPoP proofs (RFC 9449) for the app's calls to Auth0 (layer: core, above the transport).

The key is the app's (``TOKEN_VAULT_DPOP_KEY``); nothing of it is kept anywhere else.
"""

from __future__ import annotations

import threading

import requests

from ._clock import Clock
from ._http import Attempt, parse_json
from ._keys import DPoPKey
from ._oidc import origin

_NONCE_HEADER = "DPoP-Nonce"
_MAX_NONCE = 512


class DPoP:
    """Sign a DPoP proof for each try of a call and keep the nonces servers hand out.

    The app's :class:`~flask_token_vault._http.TryHook` for DPoP: when an answer is
    ``use_dpop_nonce``, it asks the transport for one more try, which carries the new nonce.
    """

    def __init__(self, key: DPoPKey, clock: Clock) -> None:
        self.key = key
        self.clock = clock
        self._nonces: dict[str, str] = {}
        self._lock = threading.Lock()

    def prepare(self, attempt: Attempt) -> None:
        """Add this try's ``DPoP`` proof, with the server's latest nonce and the token's hash."""
        token = None
        if attempt.credential is not None and attempt.credential.startswith("DPoP "):
            token = attempt.credential[5:]
        with self._lock:
            nonce = self._nonces.get(origin(attempt.url))
        attempt.headers["DPoP"] = self.key.proof(
            attempt.method, attempt.url, self.clock.time(), nonce=nonce, access_token=token
        )

    def retry(self, response: requests.Response) -> bool:
        """Remember the answer's nonce; return whether it is ``use_dpop_nonce`` (a 400 or 401)."""
        nonce = response.headers.get(_NONCE_HEADER)
        if not nonce or len(nonce) > _MAX_NONCE or not nonce.isascii() or not nonce.isprintable():
            return False
        with self._lock:
            self._nonces[origin(response.url or "")] = nonce
        if response.status_code not in (400, 401):
            return False
        if "use_dpop_nonce" in response.headers.get("WWW-Authenticate", ""):
            return True
        body = parse_json(response)
        return isinstance(body, dict) and body.get("error") == "use_dpop_nonce"
