"""The :class:`TokenVault` extension object (layer: the top; it wires the others into an app)."""

from __future__ import annotations

from functools import partial
from typing import Any

from flask import Flask

from ._config import load_settings
from ._decorators import check_views
from ._on_behalf import on_behalf
from ._responses import UnauthorizedHandler, error_response
from ._state import EXTENSION_KEY, AppState, Hooks, get_state
from ._views import backchannel_logout, blueprint, disconnect, disconnect_one_account, logout
from ._worker import worker_token
from .errors import TokenVaultError


class TokenVault:
    """Flask extension that signs users in with Auth0 and fetches provider tokens from Token Vault.

    Use ``TokenVault(app)`` or, with an application factory, ``vault = TokenVault()`` then
    ``vault.init_app(app)``. Keyword options override the app's config keys of the same name,
    e.g. ``TokenVault(app, TOKEN_VAULT_URL_PREFIX="/login")``.
    """

    def __init__(self, app: Flask | None = None, **options: Any) -> None:
        self._options = options
        self._hooks = Hooks()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Read and validate the app's configuration, then register routes and helpers."""
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                "Flask-Token-Vault is already registered on this app; call init_app once per app."
            )
        settings = load_settings(app.config, self._options)
        app.extensions[EXTENSION_KEY] = AppState(settings, hooks=self._hooks)
        app.register_blueprint(blueprint, url_prefix=settings.url_prefix or None)
        # Auth0's servers post logout tokens, with no form token, and the sign-out and
        # disconnect forms carry the extension's own (checked by the views): a CSRF extension
        # already on the app (Flask-WTF's CSRFProtect) must let these routes through.
        csrf = app.extensions.get("csrf")
        if csrf is not None and callable(getattr(csrf, "exempt", None)):
            for view in (backchannel_logout, logout, disconnect, disconnect_one_account):
                csrf.exempt(view)
        # The app's own handler, registered before or after this, wins over ours.
        if TokenVaultError not in app.error_handler_spec[None][None]:
            app.register_error_handler(TokenVaultError, error_response)

        # Routes are usually added after init_app: check their connections once all exist.
        app.before_request(partial(check_views, app))

    def unauthorized_handler(self, callback: UnauthorizedHandler) -> UnauthorizedHandler:
        """Register what to answer when a view needs a sign-in or a connection (a decorator).

        ``callback`` receives a :class:`~flask_token_vault.Challenge` (why, which connection,
        the scopes to ask for and the URLs to sign in or connect) and returns a response, or
        ``None`` to give the default one (a redirect for browsers, a 401 JSON body for API
        clients), in every app this object serves.
        """
        self._hooks.unauthorized = callback
        return callback

    @staticmethod
    def state(app: Flask | None = None) -> AppState:
        """Return the per-app state of ``app`` (default: the current app)."""
        return get_state(app)

    worker_token = staticmethod(worker_token)
    on_behalf = staticmethod(on_behalf)
