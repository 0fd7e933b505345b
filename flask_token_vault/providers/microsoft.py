"""Azure ``TokenCredential`` objects backed by the vault, for Microsoft's ``msgraph-sdk``.

Install with ``pip install "Flask-Token-Vault[microsoft]"``. Microsoft's quick start makes a
``GraphServiceClient`` from an ``azure.identity`` credential; with the vault, only the
credential changes::

    from msgraph import GraphServiceClient
    from flask_token_vault.providers.microsoft import AsyncVaultTokenCredential

    graph = GraphServiceClient(
        credentials=AsyncVaultTokenCredential("windowslive"), scopes=["User.Read"]
    )
    me = await graph.me.get()

:func:`graph_client` builds the same client with a 401 retry (and a base URL to point it
elsewhere, such as a local stand-in).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any

import httpx
from azure.core.credentials import AccessToken
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as graph_options
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory

from .._sources import TokenSource
from ._bound import SourceBound
from .httpx_auth import VaultAuth

#: Graph's resource, the prefix of its scopes in Azure's scope strings.
GRAPH_RESOURCE = "https://graph.microsoft.com/"


def vault_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Return Azure scope strings as the vault names them: no resource prefix, no ``.default``.

    ``"https://graph.microsoft.com/User.Read"`` is ``"User.Read"``; ``".default"`` (whatever
    was granted) requires nothing more.
    """
    found: list[str] = []
    for scope in scopes:
        name = scope.removeprefix(GRAPH_RESOURCE)
        if name != ".default":
            found.append(name)
    return tuple(found)


class _Credential(SourceBound):
    """What the sync and async credentials share: the source and the scopes."""

    def _access_token(self, scopes: tuple[str, ...]) -> AccessToken:
        found = self.source.token(vault_scopes((*self.scopes, *scopes)))
        # Azure's clients that keep a token renew it ahead of ``expires_on`` themselves.
        return AccessToken(found.access_token, int(found.expires_at))


class VaultTokenCredential(_Credential):
    """An ``azure.core.credentials.TokenCredential`` that takes each token from the vault.

    ``source`` is a :class:`~flask_token_vault.TokenSource`, or a connection name (usually
    ``"windowslive"``) for the current request's user; ``scopes`` are required on top of
    those the SDK asks for (Graph's ``.default`` asks for none). A scope not granted raises
    :class:`~flask_token_vault.InsufficientScope`.
    """

    def get_token(self, *scopes: str, **options: Any) -> AccessToken:
        """Return the token for ``scopes``; Auth0 decides what Azure's ``options`` would.

        (``claims``, ``tenant_id`` and ``enable_cae`` are for Microsoft's own token service.)
        """
        return self._access_token(scopes)

    def close(self) -> None:
        """Release nothing: the vault's cache belongs to the app."""

    def __enter__(self) -> VaultTokenCredential:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncVaultTokenCredential(_Credential):
    """An ``azure.core.credentials_async.AsyncTokenCredential`` taking tokens from the vault.

    The same as :class:`VaultTokenCredential`, awaited. A warm token is read without waiting;
    a cold one blocks the event loop for the one exchange (Flask runs each async view in its
    own loop).
    """

    async def get_token(self, *scopes: str, **options: Any) -> AccessToken:
        """Return the token for ``scopes`` (``options`` as for the sync credential)."""
        return self._access_token(scopes)

    async def close(self) -> None:
        """Release nothing: the vault's cache belongs to the app."""

    async def __aenter__(self) -> AsyncVaultTokenCredential:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        await self.close()


def graph_client(
    source: TokenSource | str,
    scopes: Iterable[str] = (),
    *,
    base_url: str | None = None,
    login_hint: str | None = None,
) -> GraphServiceClient:
    """Return a ``GraphServiceClient`` whose calls carry the vault's token and retry a 401 once.

    The client is Microsoft's own, with its default middleware; a 401 from Graph drops the
    token for every process (:meth:`TokenSource.reject
    <flask_token_vault.TokenSource.reject>`) and the call is sent once more with a new one.
    ``base_url`` replaces ``https://graph.microsoft.com/v1.0`` (e.g. a local stand-in).
    """
    credential = AsyncVaultTokenCredential(source, scopes, login_hint=login_hint)
    required = vault_scopes(credential.scopes)
    # The SDK's own middleware and options (its "/me" rewrite among them), on a client whose
    # auth renews a refused token.
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(auth=VaultAuth(credential.source, required)),
        options=graph_options,
    )
    provider = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_RESOURCE + ".default"])
    adapter = GraphRequestAdapter(provider, client=http)
    if base_url is not None:
        adapter.base_url = base_url.rstrip("/")
    return GraphServiceClient(request_adapter=adapter)
