"""Slack's ``AsyncWebClient`` with a token from the vault on every API call.

Install with ``pip install "Flask-Token-Vault[slack]" aiohttp`` (Slack's asynchronous client
runs on ``aiohttp``)::

    from flask_token_vault.providers.slack_async import AsyncVaultWebClient

    client = AsyncVaultWebClient("sign-in-with-slack", scopes=["channels:read"])
    channels = (await client.conversations_list())["channels"]
"""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from .slack_client import VaultTokenMixin, names_own_token


class AsyncVaultWebClient(VaultTokenMixin, AsyncWebClient):
    """Slack's ``AsyncWebClient``, taking a token from the vault for each API call.

    The same as :class:`~flask_token_vault.providers.slack_client.VaultWebClient`, awaited. A
    warm token is read without waiting; a cold one blocks the event loop for the one exchange
    (Flask runs each async view in its own loop).
    """

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        """Send one Slack API call with the vault's token; after a refusal, once more."""
        if names_own_token(kwargs):
            return await super().api_call(api_method, **kwargs)
        with self._sending() as access_token:
            try:
                return await super().api_call(api_method, **kwargs)
            except SlackApiError as error:
                self._resend_after(error, access_token, kwargs)
            return await super().api_call(api_method, **kwargs)
