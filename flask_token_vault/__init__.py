"""Flask-Token-Vault: call providers' APIs for a signed-in user through Auth0 Token Vault."""

from __future__ import annotations

from .decorators import provider_token_required
from .errors import (
    AccountNotConnected,
    Auth0Unavailable,
    CallbackError,
    ConfigurationError,
    ExchangeRejected,
    InsufficientScope,
    InvalidRequest,
    LoginRequired,
    Misconfigured,
    ProviderUnavailable,
    RateLimited,
    ReconsentRequired,
    TokenVaultError,
)
from .exchange import ProviderToken
from .extension import (
    TokenVault,
    connect_url,
    current_user,
    forget_provider_tokens,
    get_provider_token,
    get_provider_token_set,
    login_url,
)
from .provider_session import ProviderSession, provider_session
from .session import User

__all__ = [
    "AccountNotConnected",
    "Auth0Unavailable",
    "CallbackError",
    "ConfigurationError",
    "ExchangeRejected",
    "InsufficientScope",
    "InvalidRequest",
    "LoginRequired",
    "Misconfigured",
    "ProviderSession",
    "ProviderToken",
    "ProviderUnavailable",
    "RateLimited",
    "ReconsentRequired",
    "TokenVault",
    "TokenVaultError",
    "User",
    "connect_url",
    "current_user",
    "forget_provider_tokens",
    "get_provider_token",
    "get_provider_token_set",
    "login_url",
    "provider_session",
    "provider_token_required",
]
