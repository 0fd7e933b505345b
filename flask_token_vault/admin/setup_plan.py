"""The shape of a set-up: the items a step plans, what it reads, and the plan and its result.

(Layer: beside :mod:`.tenant_setup`, whose steps fill these in.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from flask import Flask, current_app, request, url_for

from .._state import AppState, get_state
from ..errors import ConfigurationError, TokenVaultError
from . import places
from .management import ManagementClient
from .records import _JsonRecord

#: A change the plan would make (dry run).
PLANNED = "planned"
#: A change that was made.
CHANGED = "changed"
#: Already as it should be: nothing to do.
UNCHANGED = "unchanged"
#: Not needed on this tenant or with this app's settings (says why).
SKIPPED = "skipped"
#: A change that could not be made: do it by hand (``dashboard``) or as ``fix`` says.
NOT_MADE = "not_made"


@dataclass(frozen=True)
class SetupItem(_JsonRecord):
    """One line of a set-up plan or result: what was checked, found, changed or left to do."""

    #: The step, e.g. ``Token Vault grant``.
    step: str
    #: What it acts on, e.g. ``client abc123`` or ``connection google-oauth2``.
    target: str
    #: :data:`PLANNED`, :data:`CHANGED`, :data:`UNCHANGED`, :data:`SKIPPED` or :data:`NOT_MADE`.
    status: str
    #: What was found or done.
    detail: str
    #: Where to make the same change by hand in the Auth0 Dashboard.
    dashboard: str = ""
    #: What to do when it was not made (besides the Dashboard path).
    fix: str = ""


@dataclass(frozen=True)
class SetupAction:
    """A planned item, with the function that makes its change (``None``: nothing to make)."""

    #: What the step found and plans.
    item: SetupItem
    #: Makes the change and returns what it did; raises a TokenVaultError when it cannot.
    apply: Callable[[], str] | None = None
    #: Whether the app needs it with its settings: ``doctor`` fails a needed item still to
    #: make and skips one that is not needed (a switch of the other flow, say).
    required: bool = True


@dataclass(frozen=True)
class AppUrls:
    """The app's own URLs that Auth0 must allow, as the app builds them."""

    #: Where Auth0 sends the browser back after sign-in (``token_vault.callback``).
    callback: str
    #: Where it comes back after connecting an account (``token_vault.connect_callback``).
    connect_callback: str
    #: The ``returnTo`` of sign-out (``TOKEN_VAULT_LOGOUT_RETURN_TO``, else the default page).
    logout: str
    #: Where Auth0 posts back-channel logout tokens (``token_vault.backchannel_logout``).
    backchannel_logout: str = ""


class SetupContext:
    """What the steps read: the app, its settings and client, the tenant (each record once)."""

    def __init__(self, app: Flask, base_url: str | None = None) -> None:
        #: The app being set up.
        self.app = app
        #: Its per-app state.
        self.state: AppState = get_state(app)
        #: The app's Management API client.
        self.management: ManagementClient = self.state.management
        self._base_url = base_url
        self._client: dict[str, Any] | TokenVaultError | None = None
        self._connections: dict[str, dict[str, Any] | TokenVaultError] = {}

    @property
    def client_id(self) -> str:
        """Return the app's client id."""
        return self.state.settings.client_id

    @property
    def flow(self) -> str:
        """Return ``TOKEN_VAULT_CONNECT_FLOW``."""
        return self.state.settings.connect_flow

    def client(self) -> dict[str, Any]:
        """Return the app's client record (read once); raise what reading it raised."""
        if self._client is None:
            try:
                self._client = self.management.get_client(self.client_id)
            except TokenVaultError as exc:
                self._client = exc
        if isinstance(self._client, TokenVaultError):
            raise self._client
        return self._client

    def app_dashboard(self) -> str:
        """Return the Dashboard path of the app's settings."""
        name = self.client_id
        with contextlib.suppress(TokenVaultError):
            name = str(self.client().get("name") or name)
        return places.application(name)

    def connection(self, name: str) -> dict[str, Any]:
        """Return a connection record by name (read once); raise what reading it raised."""
        if name not in self._connections:
            try:
                self._connections[name] = self.management.find_connection(name)
            except TokenVaultError as exc:
                self._connections[name] = exc
        found = self._connections[name]
        if isinstance(found, TokenVaultError):
            raise found
        return found

    def app_urls(self) -> AppUrls | None:
        """Return the app's URLs, or ``None`` when its address is unknown.

        The address is ``base_url`` when given, else ``TOKEN_VAULT_EXTERNAL_URL``, else
        ``PREFERRED_URL_SCHEME://SERVER_NAME`` + ``APPLICATION_ROOT`` from the app's config; the
        URLs are what ``url_for(..., _external=True)`` gives under it, so a URL prefix or a
        mount point is included.
        """
        base = self._base_url or self.state.settings.external_url
        config = self.app.config
        if base is None and config.get("SERVER_NAME"):
            root = str(config.get("APPLICATION_ROOT") or "/").rstrip("/")
            base = f"{config.get('PREFERRED_URL_SCHEME') or 'http'}://{config['SERVER_NAME']}{root}"
        if base is None:
            return None
        settings = self.state.settings
        with self.app.test_request_context("/", base_url=base):
            return AppUrls(
                callback=url_for("token_vault.callback", _external=True),
                connect_callback=url_for("token_vault.connect_callback", _external=True),
                # As the logout route builds returnTo.
                logout=settings.logout_return_to
                or request.host_url.rstrip("/") + settings.default_next,
                backchannel_logout=url_for("token_vault.backchannel_logout", _external=True),
            )


class SetupStep(Protocol):
    """One step of the set-up: reads the tenant, says what it would change and how."""

    #: Its name for ``flask token-vault setup --only``, e.g. ``grant``.
    key: str
    #: A short name, e.g. ``Token Vault grant``.
    name: str

    def plan(self, context: SetupContext) -> Iterable[SetupAction]:
        """Return what this step finds and would change; change nothing."""
        ...


class NotOnThisTenant(Exception):
    """A change the tenant does not know, and the app's flow does not need."""

    def __init__(self, cause: TokenVaultError) -> None:
        self.description = f"this tenant has no such switch ({cause.description})"
        super().__init__(self.description)


@dataclass(frozen=True)
class SetupResult:
    """What a set-up did (or, for a dry run, would do), item by item."""

    #: Every item, in the order of the steps.
    items: tuple[SetupItem, ...]
    #: Whether nothing was changed (a dry run).
    dry_run: bool = False

    def with_status(self, status: str) -> list[SetupItem]:
        """Return the items with this status."""
        return [item for item in self.items if item.status == status]

    @property
    def ok(self) -> bool:
        """Return whether every change could be made (nothing is :data:`NOT_MADE`)."""
        return not self.with_status(NOT_MADE)

    def to_list(self) -> list[dict[str, str]]:
        """Return the items as JSON-ready dicts."""
        return [item.to_dict() for item in self.items]


@dataclass(frozen=True)
class SetupPlan:
    """What :func:`plan_setup` found: items, and the changes :meth:`apply` would make."""

    #: Each step's actions, in order.
    actions: tuple[SetupAction, ...] = field(default_factory=tuple)

    @property
    def items(self) -> tuple[SetupItem, ...]:
        """Return the planned items (:data:`PLANNED` for each change to make)."""
        return tuple(action.item for action in self.actions)

    def result(self) -> SetupResult:
        """Return the plan as a dry-run result (nothing changed)."""
        return SetupResult(self.items, dry_run=True)

    def apply(self) -> SetupResult:
        """Make every planned change; return what was changed and what could not be."""
        done: list[SetupItem] = []
        for action in self.actions:
            item = action.item
            if action.apply is None or item.status != PLANNED:
                done.append(item)
                continue
            try:
                detail = action.apply()
            except NotOnThisTenant as exc:
                done.append(_replace(item, SKIPPED, str(exc.description)))
            except TokenVaultError as exc:
                done.append(_replace(item, NOT_MADE, str(exc.description), exc.remedy))
            else:
                done.append(_replace(item, CHANGED, detail))
        return SetupResult(tuple(done))


def _replace(item: SetupItem, status: str, detail: str, fix: str = "") -> SetupItem:
    return SetupItem(item.step, item.target, status, detail, item.dashboard, fix)


def setup_context(app: Flask | None = None, base_url: str | None = None) -> SetupContext:
    """Return what the steps read for ``app`` (default: the current app) at ``base_url``."""
    target: Flask = app if app is not None else current_app._get_current_object()  # type: ignore[attr-defined]
    return SetupContext(target, None if base_url is None else _check_base_url(base_url))


def _check_base_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigurationError(
            "base_url", f"must be the app's address, e.g. 'https://app.example.com', not {value!r}."
        )
    return value.strip().rstrip("/")
