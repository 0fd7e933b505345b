"""Hold the emulated tenant: clients, APIs, connections, users, accounts, tokens and counters.

The state is built in layers, each a module: the tenant's configuration (:mod:`.tenant_store`),
then users and sessions (:mod:`.users`), then tokens (:mod:`.tokens`), then the whole
:class:`EmulatorState` with faults and counters (:mod:`.emulator`). Defaults, lifetimes and small
helpers are in :mod:`.common`, the records the layers keep in :mod:`.tenant` and :mod:`.records`.
"""

from .emulator import EmulatorState
from .records import (
    AuthorizationCode,
    AutoLogin,
    BackchannelDelivery,
    BrowserSession,
    ConnectSession,
    Counters,
    Grant,
    LoginTransaction,
    PrivilegedAccess,
    ProviderToken,
    RefreshToken,
    Tokenset,
    User,
)
from .tenant import Client, Connection, Credential, ResourceServer

__all__ = [
    "AuthorizationCode",
    "AutoLogin",
    "BackchannelDelivery",
    "BrowserSession",
    "Client",
    "ConnectSession",
    "Connection",
    "Counters",
    "Credential",
    "EmulatorState",
    "Grant",
    "LoginTransaction",
    "PrivilegedAccess",
    "ProviderToken",
    "RefreshToken",
    "ResourceServer",
    "Tokenset",
    "User",
]
