"""Flask-Token-Vault: call providers' APIs for a signed-in user through Auth0 Token Vault."""

from __future__ import annotations

from ._accounts import (
    disconnect,
    disconnect_account,
    management_client,
    my_connectable_connections,
    my_connected_accounts,
)
from ._approval import check_approval, request_approval, start_approval, wait_for_approval
from ._bearer import AccessToken
from ._ciba import Approval, PendingApproval
from ._decorators import fresh_login_required, login_required, provider_token_required
from ._exchange import ProviderToken
from ._extension import TokenVault
from ._my_account import ConnectableConnection
from ._on_behalf import OnBehalf, OnBehalfSource, on_behalf
from ._provider_grants import ProviderRevocation, revoke_provider_grant
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
from ._tools import acting_for, token_vault_tool, tool_token
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
    TokenVaultInterrupt,
    UpstreamError,
    UserActionRequired,
)

__all__ = [
    "AccessToken",
    "AccountNotConnected",
    "ApiClientMisconfigured",
    "Approval",
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
    "OnBehalf",
    "OnBehalfSource",
    "OperatorError",
    "PendingApproval",
    "PrivilegedAccessDenied",
    "ProviderRevocation",
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
    "TokenVaultInterrupt",
    "Tokenset",
    "TokensetsGone",
    "UpstreamError",
    "User",
    "UserActionRequired",
    "acting_for",
    "check_approval",
    "connect_url",
    "current_access_token",
    "current_user",
    "disconnect",
    "disconnect_account",
    "forget_provider_tokens",
    "fresh_login_required",
    "get_provider_token",
    "get_provider_token_set",
    "login_required",
    "login_url",
    "management_client",
    "my_connectable_connections",
    "my_connected_accounts",
    "on_behalf",
    "plan_setup",
    "provider_api_url",
    "provider_session",
    "provider_token_required",
    "reject_provider_token",
    "request_approval",
    "revoke_provider_grant",
    "setup_tenant",
    "start_approval",
    "token_vault_tool",
    "tool_token",
    "wait_for_approval",
]
