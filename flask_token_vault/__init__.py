"""Flask-Token-Vault: call providers' APIs for a signed-in user through Auth0 Token Vault."""

from __future__ import annotations

from ._accounts import (
    disconnect,
    management_client,
    my_connectable_connections,
    my_connected_accounts,
)
from ._bearer import AccessToken
from ._decorators import login_required, provider_token_required
from ._exchange import ProviderToken
from ._extension import TokenVault
from ._my_account import ConnectableConnection
from ._provider_session import ProviderSession, provider_api_url, provider_session
from ._responses import Challenge
from ._session import User
from ._sources import JobTokenSource, RequestTokenSource, TokenSource
from ._tokens import (
    current_access_token,
    current_user,
    forget_provider_tokens,
    get_provider_token,
    get_provider_token_set,
    reject_provider_token,
)
from ._urls import connect_url, login_url
from .admin.management import ManagementClient
from .admin.records import Auth0User, ConnectedAccount, CustomApiClient, Tokenset
from .admin.setup_plan import SetupItem, SetupPlan, SetupResult
from .admin.tenant_setup import plan_setup, setup_tenant
from .errors import (
    AccountNotConnected,
    ApiClientMisconfigured,
    Auth0Unavailable,
    CacheUnavailable,
    CallbackError,
    CallerError,
    ClientNotEligible,
    ConfigurationError,
    ExchangeRejected,
    InsufficientApiScope,
    InsufficientScope,
    InvalidAccessToken,
    InvalidRequest,
    LoginRequired,
    ManagementError,
    ManagementForbidden,
    ManagementNotFound,
    ManagementRateLimited,
    Misconfigured,
    MyAccountError,
    OperatorError,
    PrivilegedAccessDenied,
    ProviderUnavailable,
    RateLimited,
    ReconsentRequired,
    TokensetsGone,
    TokenVaultError,
    UpstreamError,
    UserActionRequired,
)

__all__ = [
    "AccessToken",
    "AccountNotConnected",
    "ApiClientMisconfigured",
    "Auth0Unavailable",
    "Auth0User",
    "CacheUnavailable",
    "CallbackError",
    "CallerError",
    "Challenge",
    "ClientNotEligible",
    "ConfigurationError",
    "ConnectableConnection",
    "ConnectedAccount",
    "CustomApiClient",
    "ExchangeRejected",
    "InsufficientApiScope",
    "InsufficientScope",
    "InvalidAccessToken",
    "InvalidRequest",
    "JobTokenSource",
    "LoginRequired",
    "ManagementClient",
    "ManagementError",
    "ManagementForbidden",
    "ManagementNotFound",
    "ManagementRateLimited",
    "Misconfigured",
    "MyAccountError",
    "OperatorError",
    "PrivilegedAccessDenied",
    "ProviderSession",
    "ProviderToken",
    "ProviderUnavailable",
    "RateLimited",
    "ReconsentRequired",
    "RequestTokenSource",
    "SetupItem",
    "SetupPlan",
    "SetupResult",
    "TokenSource",
    "TokenVault",
    "TokenVaultError",
    "Tokenset",
    "TokensetsGone",
    "UpstreamError",
    "User",
    "UserActionRequired",
    "connect_url",
    "current_access_token",
    "current_user",
    "disconnect",
    "forget_provider_tokens",
    "get_provider_token",
    "get_provider_token_set",
    "login_required",
    "login_url",
    "management_client",
    "my_connectable_connections",
    "my_connected_accounts",
    "plan_setup",
    "provider_api_url",
    "provider_session",
    "provider_token_required",
    "reject_provider_token",
    "setup_tenant",
]
