"""Background tokens' access at Auth0 (the Privileged Worker): its rules, once, as a setup step.

(Layer: beside :mod:`.tenant_setup`, whose step and helpers it uses.) ``flask token-vault
worker setup`` plans :class:`PrivilegedWorker` with the access it was asked for and applies it;
``doctor`` plans it with the access the client has and reads the plan as checks.

Auth0's rules (the Privileged Worker page): ``ip_allowlist`` and ``grants`` must both be
populated or every request is refused; the allowlist holds at most 10 addresses or CIDR ranges;
the grants at most 5 connections and 20 scopes in all; and each granted connection must be
enabled for the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._config import Settings
from .._connection_options import split_scopes
from ..errors import ConfigurationError
from . import places
from .setup_plan import SetupAction, SetupContext
from .tenant_setup import ClientStep, plan_connection_enabled

#: Auth0's limits on ``token_vault_privileged_access``.
MAX_IP_ALLOWLIST = 10
MAX_GRANTED_CONNECTIONS = 5
MAX_GRANTED_SCOPES = 20
#: The command that sets the access, as the fixes name it.
WORKER_SETUP_FIX = (
    f"Run `{places.WORKER_SETUP_ARGS}` (repeat --grant and --ip as needed): it sets the "
    "allowlist and grants and enables each granted connection."
)


def ip_problem(entry: str) -> str | None:
    """Return what is wrong with one ``ip_allowlist`` entry (an address or CIDR range), if any."""
    try:
        ipaddress.ip_network(entry, strict=True)
    except ValueError:
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return f"{entry!r} is not an IP address or CIDR range"
        return f"{entry!r} has host bits set: write {network}"
    return None


@dataclass(frozen=True)
class WorkerGrant:
    """One connection a background job may get tokens of, and the scopes it may ask for."""

    connection: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class WorkerAccess:
    """A client's ``token_vault_privileged_access``: who may sign, from where, for what."""

    #: The ids of the credentials (public keys) whose subject tokens are accepted.
    credentials: tuple[str, ...]
    #: The addresses and CIDR ranges requests may come from.
    ip_allowlist: tuple[str, ...]
    grants: tuple[WorkerGrant, ...]

    @classmethod
    def from_record(cls, block: Mapping[str, Any]) -> WorkerAccess:
        """Read the block of a client record (whatever is malformed in it reads as absent)."""
        credentials = [
            str(c.get("id")) for c in _items(block.get("credentials")) if isinstance(c, Mapping)
        ]
        grants = [
            WorkerGrant(str(g.get("connection")), tuple(str(s) for s in _items(g.get("scopes"))))
            for g in _items(block.get("grants"))
            if isinstance(g, Mapping) and g.get("connection")
        ]
        ips = [str(ip) for ip in _items(block.get("ip_allowlist"))]
        return cls(tuple(credentials), tuple(ips), tuple(grants))

    def to_block(self) -> dict[str, Any]:
        """Return the block as the Management API takes it."""
        return {
            "credentials": [{"id": credential} for credential in self.credentials],
            "ip_allowlist": list(self.ip_allowlist),
            "grants": [{"connection": g.connection, "scopes": list(g.scopes)} for g in self.grants],
        }

    def problems(self) -> list[str]:
        """Return why Auth0 would refuse this access (or every request under it); [] if none."""
        missing = [] if self.credentials else ["no credential may sign subject tokens"]
        return missing + self.ip_problems() + self.grant_problems()

    def ip_problems(self) -> list[str]:
        """Return what breaks Auth0's rules in the ``ip_allowlist``."""
        if not self.ip_allowlist:
            return ["the ip_allowlist is empty, so Auth0 refuses every request"]
        found = [p for p in map(ip_problem, self.ip_allowlist) if p is not None]
        if len(self.ip_allowlist) > MAX_IP_ALLOWLIST:
            found.append(
                f"the ip_allowlist has {len(self.ip_allowlist)} entries; Auth0 takes at most "
                f"{MAX_IP_ALLOWLIST}"
            )
        return found

    def grant_problems(self) -> list[str]:
        """Return what breaks Auth0's rules in the ``grants``."""
        names = [grant.connection for grant in self.grants]
        if not names:
            return ["the grants name no connection, so Auth0 refuses every request"]
        found: list[str] = []
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            found.append("the grants name " + ", ".join(twice) + " more than once")
        if len(set(names)) > MAX_GRANTED_CONNECTIONS:
            found.append(
                f"the grants name {len(set(names))} connections; Auth0 takes at most "
                f"{MAX_GRANTED_CONNECTIONS}"
            )
        scopes = sum(len(grant.scopes) for grant in self.grants)
        if scopes > MAX_GRANTED_SCOPES:
            found.append(
                f"the grants hold {scopes} scopes; Auth0 takes at most {MAX_GRANTED_SCOPES} in all"
            )
        return found

    def summary(self) -> str:
        """Return the access in one line, for a report."""
        grants = "; ".join(
            f"{g.connection} ({len(g.scopes)} scope{'' if len(g.scopes) == 1 else 's'})"
            for g in self.grants
        )
        return f"from {', '.join(self.ip_allowlist) or 'nowhere'} for {grants or 'nothing'}"


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def requested_access(grants: Sequence[str], ips: Sequence[str], settings: Settings) -> WorkerAccess:
    """Return the access ``worker setup`` was asked for, or raise naming the option at fault.

    ``grants`` are ``CONNECTION=SCOPE,SCOPE`` (default: ``TOKEN_VAULT_CONNECTIONS`` with their
    scopes), ``ips`` addresses or CIDR ranges; Auth0's rules are checked here, before any call.
    The credential is left for the caller to fill in, once it is registered.
    """
    if not ips:
        raise ConfigurationError(
            "--ip",
            "give at least one address or CIDR range the jobs call Auth0 from (repeat --ip): "
            "Auth0 refuses every Privileged Worker request while the allowlist is empty.",
        )
    chosen: list[WorkerGrant] = []
    for item in grants:
        connection, sep, scopes = item.partition("=")
        if not sep or not connection.strip():
            raise ConfigurationError("--grant", f"{item!r}: write CONNECTION=SCOPE,SCOPE.")
        chosen.append(WorkerGrant(connection.strip(), tuple(split_scopes(scopes))))
    if not grants:
        chosen = [WorkerGrant(n, tuple(c.scopes)) for n, c in settings.connections.items()]
    access = WorkerAccess((), tuple(ip.strip() for ip in ips), tuple(chosen))
    for option, problems in (("--ip", access.ip_problems()), ("--grant", access.grant_problems())):
        if problems:
            raise ConfigurationError(option, "; ".join(problems) + ".")
    return access


class PrivilegedWorker(ClientStep):
    """Give the client's key Privileged Worker access (or, for doctor, check the access it has).

    With ``wanted``, plans setting the client's ``token_vault_privileged_access`` to it; without,
    checks the access the client has against Auth0's rules. Either way, plans enabling each
    granted connection for the client.
    """

    key = "worker"
    name = "Privileged Worker access"
    page = "Settings > Privileged Worker"

    def __init__(self, wanted: WorkerAccess | None = None) -> None:
        self.wanted = wanted

    def plan_client(self, context: SetupContext) -> list[SetupAction]:
        """Plan the access block, then each granted connection enabled for the client."""
        block = context.client().get("token_vault_privileged_access")
        current = WorkerAccess.from_record(block) if isinstance(block, Mapping) else None
        if self.wanted is None:
            if current is None:
                return []  # no access to check: doctor says background tokens are not set up
            access = current
            problems = current.problems()
            if problems:
                actions = self.refused(context, "; ".join(problems), WORKER_SETUP_FIX)
            else:
                actions = self.unchanged(context, current.summary())
        else:
            access = self.wanted
            if current == access:
                actions = self.unchanged(context, access.summary())
            else:
                wanted = access.to_block()

                def apply() -> str:
                    context.management.set_privileged_access(wanted, context.client_id)
                    return "set: " + access.summary()

                actions = self.planned(context, "set it " + access.summary(), apply)
        for name in dict.fromkeys(grant.connection for grant in access.grants):
            if self.wanted is None and name in context.state.settings.connections:
                continue  # doctor checks the app's own connections in setup's step already
            actions.append(plan_connection_enabled(context, name, "connection enabled for the app"))
        return actions
