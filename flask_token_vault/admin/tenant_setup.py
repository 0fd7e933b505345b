"""Bring the Auth0 tenant to a working state for this app (``flask token-vault setup``).

(Layer: beside ``cli`` and ``doctor`` at the top: it reads the app's settings and URLs, and calls
the Management API with the app's own client.)

Each rule about the tenant is one step (:data:`SETUP_STEPS`) that can both report and fix.
A step reads the tenant through a :class:`SetupContext` and returns :class:`SetupAction`
objects: a :class:`SetupItem` saying what it found and, when something must change, a function
that makes the change. :func:`plan_setup` runs the steps and changes nothing (the dry run);
:meth:`SetupPlan.apply` makes the changes, each of which reads the tenant again before writing,
so running it twice changes nothing the second time. A change that cannot be made is reported
with the Dashboard path to make it by hand. ``doctor`` reports the same plan as checks: an item
still to make is a failed check, fixed by ``setup --only KEY``.

A further step (a key to register, say) is a class with a ``key``, a ``name`` and a
``plan(context)`` method, added to :data:`SETUP_STEPS` or passed as ``steps=``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from flask import Flask

from ..errors import ConfigurationError, ManagementError, ManagementNotFound, TokenVaultError
from . import places
from .records import (
    MY_ACCOUNT_POLICY_SCOPES,
    backchannel_url_problem,
    backchannel_urls,
    client_problems,
    missing_client_urls,
    missing_grant_types,
    missing_my_account_scopes,
    rotation_type,
    vault_switches,
)
from .setup_plan import (
    NOT_MADE,
    PLANNED,
    UNCHANGED,
    AppUrls,
    NotOnThisTenant,
    SetupAction,
    SetupContext,
    SetupItem,
    SetupPlan,
    SetupResult,
    SetupStep,
    setup_context,
)


def _not_made(
    step: str, target: str, error: TokenVaultError, dashboard: str, fix: str = ""
) -> SetupAction:
    return SetupAction(
        SetupItem(step, target, NOT_MADE, str(error.description), dashboard, fix or error.remedy)
    )


class ClientStep:
    """A step that changes the app's client, reading its record first.

    When the record cannot be read (no Management API access, say), the step plans a NOT_MADE
    item that points at its page of the Dashboard.
    """

    #: Its name for ``setup --only``.
    key: str
    #: A short name, e.g. ``Token Vault grant``.
    name: str
    #: Where the app's settings page of the Dashboard shows this step's setting.
    page: str

    def target(self, context: SetupContext) -> str:
        """Return what the step acts on: ``client ID``."""
        return f"client {context.client_id}"

    def dashboard(self, context: SetupContext) -> str:
        """Return where to make this step's change by hand in the Auth0 Dashboard."""
        return f"{context.app_dashboard()} > {self.page}"

    def required(self, context: SetupContext) -> bool:
        """Return whether the app needs this step's change with its settings."""
        return True

    def plan(self, context: SetupContext) -> Iterable[SetupAction]:
        """Plan this step's change; a client record that cannot be read is NOT_MADE."""
        try:
            return self.plan_client(context)
        except TokenVaultError as exc:  # what reading the client record raised
            return [_not_made(self.name, self.target(context), exc, self.dashboard(context))]

    def plan_client(self, context: SetupContext) -> list[SetupAction]:
        """Read the client (``context.client()``) and plan this step's change to it."""
        raise NotImplementedError

    def unchanged(self, context: SetupContext, found: str) -> list[SetupAction]:
        """Plan nothing: the client is as it should be (``found`` says how)."""
        return [SetupAction(SetupItem(self.name, self.target(context), UNCHANGED, found))]

    def planned(
        self, context: SetupContext, change: str, apply: Callable[[], str]
    ) -> list[SetupAction]:
        """Plan ``change``, which ``apply`` makes."""
        item = SetupItem(self.name, self.target(context), PLANNED, change, self.dashboard(context))
        return [SetupAction(item, apply, self.required(context))]

    def adding(
        self, context: SetupContext, missing: list[str], add: Callable[[], object]
    ) -> list[SetupAction]:
        """Plan adding ``missing`` to the client, which ``add`` does."""

        def apply() -> str:
            add()
            return "added " + ", ".join(missing)

        return self.planned(context, "add " + ", ".join(missing), apply)

    def refused(
        self,
        context: SetupContext,
        why: str,
        fix: str,
        dashboard: str | None = None,
        required: bool | None = None,
    ) -> list[SetupAction]:
        """Plan a change that cannot be made: ``why``, and what to do (``fix``, the Dashboard)."""
        where = dashboard or self.dashboard(context)
        item = SetupItem(self.name, self.target(context), NOT_MADE, why, where, fix)
        needed = self.required(context) if required is None else required
        return [SetupAction(item, required=needed)]


class TokenVaultGrant(ClientStep):
    """Give the app's client the Token Vault grant (with Authorization Code and Refresh Token)."""

    key = "grant"
    name = "Token Vault grant"
    page = "Settings > Advanced Settings > Grant Types"

    def plan_client(self, context: SetupContext) -> list[SetupAction]:
        """Plan adding the missing grant types, or say why the client cannot have them."""
        client = context.client()
        problems = client_problems(client)
        if problems:
            return self.refused(
                context,
                "the client cannot use Token Vault: " + "; ".join(problems),
                "Use a first-party, OIDC-conformant Regular Web Application that "
                "authenticates with a client secret.",
                dashboard=f"{context.app_dashboard()} > Settings",
            )
        missing = missing_grant_types(client)
        if not missing:
            return self.unchanged(context, "has the grant types")
        return self.adding(
            context, missing, lambda: context.management.enable_token_vault_grant(context.client_id)
        )


class RotationOff(ClientStep):
    """Turn refresh-token rotation off on the app's client (Token Vault does not support it)."""

    key = "rotation"
    name = "refresh-token rotation off"
    page = "Settings > Refresh Token Rotation: off"

    def plan_client(self, context: SetupContext) -> list[SetupAction]:
        """Plan turning rotation off, keeping every other refresh-token setting."""
        rotation = rotation_type(context.client())
        if rotation != "rotating":
            return self.unchanged(context, f"rotation_type is {rotation or 'not set'}")

        def apply() -> str:
            context.management.disable_refresh_token_rotation(context.client_id)
            return "rotation_type set to non-rotating (other refresh-token settings kept)"

        return self.planned(context, "set rotation_type to non-rotating", apply)


class MyAccountPolicy(ClientStep):
    """Let the app's refresh token get My Account API tokens (Multi-Resource Refresh Token)."""

    key = "my-account"
    name = "My Account API policy"

    def required(self, context: SetupContext) -> bool:
        """Return whether the app's flow needs the policy: Connected Accounts does."""
        return context.flow == "connected_accounts"

    def dashboard(self, context: SetupContext) -> str:
        """Return the client's Multi-Resource Refresh Token page, and what to allow there."""
        return (
            f"{context.app_dashboard()} > Settings > Multi-Resource Refresh Token > Edit "
            f"Configuration: allow the Auth0 My Account API ({_my_account(context)}) with "
            + ", ".join(MY_ACCOUNT_POLICY_SCOPES)
        )

    def plan_client(self, context: SetupContext) -> list[SetupAction]:
        """Plan the refresh-token policy for ``https://{domain}/me/``, keeping the others."""
        audience = _my_account(context)
        missing = missing_my_account_scopes(context.client(), context.state.settings.base_url)
        if not missing:
            return self.unchanged(context, f"the policy for {audience} allows Connected Accounts")

        def apply() -> str:
            context.management.allow_my_account(context.client_id)
            return f"policy for {audience} allows " + ", ".join(MY_ACCOUNT_POLICY_SCOPES)

        change = f"allow {audience} with " + ", ".join(missing) + " (other policies kept)"
        return self.planned(context, change, apply)


def _my_account(context: SetupContext) -> str:
    """Return the My Account API's audience on the app's tenant."""
    return context.state.settings.base_url + "/me/"


class ConnectionVault:
    """Turn Token Vault on for each configured connection: both switches the tenant has."""

    key = "connections"
    name = "Token Vault on the connection"

    def plan(self, context: SetupContext) -> Iterable[SetupAction]:
        """Plan both switches on every connection in ``TOKEN_VAULT_CONNECTIONS``."""
        actions: list[SetupAction] = []
        for name in context.state.settings.connections:
            actions.extend(self._plan_one(context, name))
        return actions

    def _plan_one(self, context: SetupContext, name: str) -> list[SetupAction]:
        target = f"connection {name}"
        page = places.connection(name)
        try:
            connection = context.connection(name)
        except ManagementNotFound as exc:
            return [
                _not_made(
                    "connection exists",
                    target,
                    exc,
                    places.CREATE_CONNECTION,
                    f"Create the {name} connection, or fix its name in TOKEN_VAULT_CONNECTIONS.",
                )
            ]
        except TokenVaultError as exc:
            return [_not_made(self.name, target, exc, page)]
        actions = [plan_connection_enabled(context, name, "connection enabled for the app")]
        switches = vault_switches(connection)
        actions.append(self._connected_accounts(context, name, switches.connected_accounts, page))
        actions.append(self._sign_in(context, name, switches.sign_in, page))
        return actions

    def _connected_accounts(
        self, context: SetupContext, name: str, active: bool | None, page: str
    ) -> SetupAction:
        step, target = "Connected Accounts switch", f"connection {name}"
        dashboard = f"{page} > Purpose: Connected Accounts for Token Vault"
        if active:
            return SetupAction(SetupItem(step, target, UNCHANGED, "connected_accounts.active"))

        def apply() -> str:
            try:
                context.management.enable_connected_accounts(name)
            except ManagementError as exc:
                if exc.upstream_status != 400:
                    raise
                if context.flow != "connected_accounts":
                    # A tenant from before Connected Accounts refuses the property: fine for
                    # the sign-in flow, which the other switch serves.
                    raise NotOnThisTenant(exc) from None
                raise ManagementError(
                    f"{exc.description} This tenant may not have Connected Accounts yet.",
                    upstream_status=400,
                    error_code=exc.error_code,
                    message=exc.message,
                    remedy="Turn Connected Accounts on in the Dashboard if the connection shows "
                    "the switch; otherwise set TOKEN_VAULT_CONNECT_FLOW = 'authorize' (this "
                    "tenant fills the vault by sign-in).",
                ) from None
            return "connected_accounts.active set"

        detail = "set connected_accounts.active"
        needed = context.flow == "connected_accounts"
        return SetupAction(SetupItem(step, target, PLANNED, detail, dashboard), apply, needed)

    def _sign_in(self, context: SetupContext, name: str, active: bool, page: str) -> SetupAction:
        step, target = "Token Vault switch (2025)", f"connection {name}"
        option = "options.federated_connections_access_tokens.active"
        dashboard = f"{page} > Purpose: Connected Accounts for Token Vault (the 2025 Dashboard)"
        if active:
            return SetupAction(SetupItem(step, target, UNCHANGED, option))

        def apply() -> str:
            context.management.enable_token_vault(name)
            return f"{option} set (every other option kept)"

        item = SetupItem(step, target, PLANNED, f"set {option}", dashboard)
        return SetupAction(item, apply, required=context.flow == "authorize")


def plan_connection_enabled(context: SetupContext, name: str, step: str) -> SetupAction:
    """Plan enabling the connection ``name`` for the app's client, if it is not yet.

    Auth0's rule for every connection the app uses, and for each a background job is granted
    (``worker setup``): the connection must be enabled for the client. A connection that
    cannot be read, or whose clients cannot be listed, is NOT_MADE with the Dashboard path.
    """
    target, client_id = f"connection {name}", context.client_id
    where = f"{places.connection(name)} > Applications: turn on {client_id}"
    try:
        enabled = client_id in context.management.connection_clients(context.connection(name))
    except TokenVaultError as exc:
        return _not_made(step, target, exc, where)
    if enabled:
        return SetupAction(SetupItem(step, target, UNCHANGED, f"enabled for client {client_id}"))

    def apply() -> str:
        context.management.enable_connection_for_client(name, client_id)
        return f"enabled for client {client_id}"

    detail = f"enable it for client {client_id} (not among the connection's applications)"
    return SetupAction(SetupItem(step, target, PLANNED, detail, where), apply)


class _AppUrlStep(ClientStep):
    """A step that registers some of the app's own URLs on its client: it needs their address."""

    #: What to do when the app's address is unknown.
    no_address_fix: str

    def plan_client(self, context: SetupContext) -> list[SetupAction]:
        """Plan registering the URLs, or say that the app's address is unknown."""
        urls = context.app_urls()
        if urls is None:
            why = (
                "the app's address is unknown: no base URL given, no TOKEN_VAULT_EXTERNAL_URL "
                "and no SERVER_NAME"
            )
            # doctor cannot check them either: not a fault of the tenant, so not required.
            return self.refused(context, why, self.no_address_fix, required=False)
        return self.plan_urls(context, urls)

    def plan_urls(self, context: SetupContext, urls: AppUrls) -> list[SetupAction]:
        """Plan registering this step's ``urls`` on the client (keeping the others)."""
        raise NotImplementedError


class AppUrlsRegistered(_AppUrlStep):
    """Register the app's callback, connect-callback and logout URLs on its client."""

    key = "urls"
    name = "app URLs allowed"
    page = "Settings > Application URIs > Allowed Callback URLs and Allowed Logout URLs"
    no_address_fix = (
        f"Run `{places.SETUP_WITH_BASE_URL}` (or set SERVER_NAME), or add "
        "YOUR-HOST/auth/callback and YOUR-HOST/auth/connect/callback as callback URLs by hand."
    )

    def plan_urls(self, context: SetupContext, urls: AppUrls) -> list[SetupAction]:
        """Plan adding the app's URLs the client does not list yet (keeping the others)."""
        wanted = {
            "callbacks": [urls.callback, urls.connect_callback],
            "allowed_logout_urls": [urls.logout],
        }
        missing = [
            u for lacking in missing_client_urls(context.client(), wanted).values() for u in lacking
        ]
        if not missing:
            listed = ", ".join([*wanted["callbacks"], *wanted["allowed_logout_urls"]])
            return self.unchanged(context, "listed: " + listed)

        def apply() -> str:
            added = context.management.add_client_urls(
                callbacks=wanted["callbacks"],
                logout_urls=wanted["allowed_logout_urls"],
                client_id=context.client_id,
            )
            return "added " + ", ".join(added)

        return self.planned(context, "add " + ", ".join(missing), apply)


class BackchannelLogoutUrl(_AppUrlStep):
    """Register the app's back-channel logout URL on its client (the other ones are kept)."""

    key = "backchannel"
    name = "back-channel logout URL"
    page = "Settings > OpenID Connect Back-Channel Logout > Back-Channel Logout URI"
    no_address_fix = f"Run `{places.SETUP_WITH_BASE_URL} --only backchannel`."

    def required(self, context: SetupContext) -> bool:
        """Return False: the app works without back-channel logout (sessions end later)."""
        return False

    def plan_urls(self, context: SetupContext, urls: AppUrls) -> list[SetupAction]:
        """Plan adding the URL to ``oidc_logout.backchannel_logout_urls``."""
        url = urls.backchannel_logout
        problem = backchannel_url_problem(url)
        if problem is not None:
            fix = "Serve the app over https and run setup with its https address."
            return self.refused(context, problem, fix)
        if url in backchannel_urls(context.client()):
            return self.unchanged(context, "listed: " + url)
        add = context.management.add_backchannel_logout_url
        return self.adding(context, [url], lambda: add(url, context.client_id))


#: The steps of ``flask token-vault setup``, in order. Add a step object to extend it.
SETUP_STEPS: list[SetupStep] = [
    TokenVaultGrant(),
    RotationOff(),
    MyAccountPolicy(),
    ConnectionVault(),
    AppUrlsRegistered(),
    BackchannelLogoutUrl(),
]


def plan_setup(
    app: Flask | None = None,
    *,
    base_url: str | None = None,
    steps: Sequence[SetupStep] | None = None,
    only: Iterable[str] = (),
) -> SetupPlan:
    """Read the tenant and plan what would bring it to a working state for the app.

    Changes nothing. ``base_url`` is the app's public address (e.g.
    ``https://app.example.com``), used to build its callback and logout URLs; without it
    ``SERVER_NAME`` is used, and without either the URLs are left for you to add. ``steps``
    replaces :data:`SETUP_STEPS`; ``only`` keeps the steps with these keys (e.g. ``grant``).
    """
    context = setup_context(app, base_url)
    actions: list[SetupAction] = []
    for step in select_steps(steps, only):
        actions.extend(step.plan(context))
    return SetupPlan(tuple(actions))


def select_steps(steps: Sequence[SetupStep] | None, only: Iterable[str] = ()) -> list[SetupStep]:
    """Return ``steps`` (default :data:`SETUP_STEPS`), only those with a key in ``only`` if any."""
    chosen = list(SETUP_STEPS if steps is None else steps)
    wanted = set(only)
    unknown = wanted - {step.key for step in chosen}
    if unknown:
        known = ", ".join(step.key for step in chosen)
        raise ConfigurationError("only", f"{', '.join(sorted(unknown))}: the steps are {known}.")
    return [step for step in chosen if not wanted or step.key in wanted]


def setup_tenant(
    app: Flask | None = None,
    *,
    base_url: str | None = None,
    dry_run: bool = False,
    steps: Sequence[SetupStep] | None = None,
    only: Iterable[str] = (),
) -> SetupResult:
    """Bring the Auth0 tenant to a working state for the app; return what was done.

    Idempotent: what is already right is left alone, so a second run changes nothing. With
    ``dry_run`` nothing is changed and the result lists the plan. See :func:`plan_setup` for
    ``base_url``, ``steps`` and ``only``.
    """
    plan = plan_setup(app, base_url=base_url, steps=steps, only=only)
    return plan.result() if dry_run else plan.apply()
