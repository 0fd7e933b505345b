"""Flask-Token-Vault: call providers' APIs for a signed-in user through Auth0 Token Vault."""

from __future__ import annotations

from . import errors
from ._responses import Challenge
from ._urls import connect_url, login_url
from .accounts import (
    disconnect,
    management_client,
    my_connectable_connections,
    my_connected_accounts,
)
from .admin.management import (
    Auth0User,
    ConnectedAccount,
    CustomApiClient,
    ManagementClient,
    Tokenset,
)
from .admin.tenant_setup import SetupItem, SetupPlan, SetupResult, plan_setup, setup_tenant
from .bearer import AccessToken
from .decorators import login_required, provider_token_required
from .errors import *  # noqa: F403  (every error class is public; errors.__all__ lists them)
from .exchange import ProviderToken
from .extension import TokenVault
from .my_account import ConnectableConnection
from .provider_session import ProviderSession, provider_api_url, provider_session
from .session import User
from .tokens import (
    current_access_token,
    current_user,
    forget_provider_tokens,
    get_provider_token,
    get_provider_token_set,
    reject_provider_token,
)

__all__ = [
    "AccessToken",
    "Auth0User",
    "Challenge",
    "ConnectableConnection",
    "ConnectedAccount",
    "CustomApiClient",
    "ManagementClient",
    "ProviderSession",
    "ProviderToken",
    "SetupItem",
    "SetupPlan",
    "SetupResult",
    "TokenVault",
    "Tokenset",
    "User",
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
__all__ += errors.__all__
