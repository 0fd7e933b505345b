"""Connected Accounts names, kept importable from their first home.

The My Account API client is :mod:`flask_token_vault.my_account`; the functions that act for the
signed-in user are in :mod:`flask_token_vault.accounts`; the routes are in the blueprint.
"""

from __future__ import annotations

from .accounts import disconnect, my_account_client, my_account_token, my_connected_accounts
from .my_account import CONNECT_SCOPE, DELETE_SCOPE, READ_SCOPE, MyAccountClient

__all__ = [
    "CONNECT_SCOPE",
    "DELETE_SCOPE",
    "READ_SCOPE",
    "MyAccountClient",
    "disconnect",
    "my_account_client",
    "my_account_token",
    "my_connected_accounts",
]
