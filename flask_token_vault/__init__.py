"""Flask-Token-Vault: call providers' APIs for a signed-in user through Auth0 Token Vault."""

from __future__ import annotations

from ._urls import connect_url, login_url
from .accounts import disconnect, management_client, my_connected_accounts
from .decorators import provider_token_required
from .errors import (
    AccountNotConnected,
    Auth0Unavailable,
    CallbackError,
    ClientNotEligible,
    ConfigurationError,
    ExchangeRejected,
    InsufficientScope,
    InvalidRequest,
    LoginRequired,
    ManagementError,
    ManagementForbidden,
    ManagementNotFound,
    ManagementRateLimited,
    Misconfigured,
    MyAccountError,
    ProviderUnavailable,
    RateLimited,
    ReconsentRequired,
    TokenVaultError,
)
from .exchange import ProviderToken
from .extension import TokenVault
from .management import ConnectedAccount, ManagementClient, Tokenset
from .provider_session import ProviderSession, provider_session
from .session import User
from .tokens import current_user, forget_provider_tokens, get_provider_token, get_provider_token_set

__all__ = [
    "AccountNotConnected",
    "Auth0Unavailable",
    "CallbackError",
    "ClientNotEligible",
    "ConfigurationError",
    "ConnectedAccount",
    "ExchangeRejected",
    "InsufficientScope",
    "InvalidRequest",
    "LoginRequired",
    "ManagementClient",
    "ManagementError",
    "ManagementForbidden",
    "ManagementNotFound",
    "ManagementRateLimited",
    "Misconfigured",
    "MyAccountError",
    "ProviderSession",
    "ProviderToken",
    "ProviderUnavailable",
    "RateLimited",
    "ReconsentRequired",
    "TokenVault",
    "TokenVaultError",
    "Tokenset",
    "User",
    "connect_url",
    "current_user",
    "disconnect",
    "forget_provider_tokens",
    "get_provider_token",
    "get_provider_token_set",
    "login_url",
    "management_client",
    "my_connected_accounts",
    "provider_session",
    "provider_token_required",
]
