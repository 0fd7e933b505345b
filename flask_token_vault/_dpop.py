"""DPoP proofs for the app's calls to Auth0 (layer: core, above the transport; Flask-free).

:class:`DPoP` is the app's :class:`~flask_token_vault._http.TryHook` for DPoP (RFC 9449): every
try of a call gets its own proof (a fresh ``jti``, ``htm``, ``htu``, ``iat``, the server's
latest ``nonce``, and ``ath`` when the call carries a ``DPoP`` access token). It remembers the
``DPoP-Nonce`` each server sends, and when an answer is ``use_dpop_nonce`` it asks the transport
for one more try, which then carries the new nonce. The key is the app's
(``TOKEN_VAULT_DPOP_KEY``); nothing of it is kept anywhere else.
"""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import requests

from ._clock import Clock
from ._http import Attempt, parse_json
from ._keys import DPoPKey

_NONCE_HEADER = "DPoP-Nonce"
_MAX_NONCE = 512


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class DPoP:
    """Sign a DPoP proof for each try of a call and keep the nonces servers hand out."""

    def __init__(self, key: DPoPKey, clock: Clock) -> None:
        self.key = key
        self.clock = clock
        self._nonces: dict[str, str] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DPoP({self.key!r})"

    def prepare(self, attempt: Attempt) -> None:
        """Add this try's ``DPoP`` header, with the server's latest nonce if it gave one.

        A ``DPoP`` access token on the call puts its hash (``ath``) in the proof.
        """
        token = None
        if attempt.credential is not None and attempt.credential.startswith("DPoP "):
            token = attempt.credential[5:]
        with self._lock:
            nonce = self._nonces.get(_origin(attempt.url))
        attempt.headers["DPoP"] = self.key.proof(
            attempt.method, attempt.url, self.clock.time(), nonce=nonce, access_token=token
        )

    def retry(self, response: requests.Response) -> bool:
        """Remember the answer's nonce; return whether it asks for a try with that nonce.

        It asks with ``use_dpop_nonce`` in a token endpoint's 400 or an API's 401.
        """
        nonce = response.headers.get(_NONCE_HEADER)
        if not nonce or len(nonce) > _MAX_NONCE or not nonce.isascii() or not nonce.isprintable():
            return False
        with self._lock:
            self._nonces[_origin(response.url or "")] = nonce
        if response.status_code not in (400, 401):
            return False
        if "use_dpop_nonce" in response.headers.get("WWW-Authenticate", ""):
            return True
        body = parse_json(response)
        return isinstance(body, dict) and body.get("error") == "use_dpop_nonce"
