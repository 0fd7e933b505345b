"""Agent tools that call a provider for the user, and the interrupt when the user must act.

(Layer: request-time API, above :mod:`._on_behalf`.) :func:`token_vault_tool` turns a plain
function into a tool that needs a connection and scopes. Each call gets the user's token through
the handle the agent acts with (:func:`acting_for`, else the current request's), so however
many tools run at once for one user, one exchange is made. When the user must connect the
account or grant more, the call raises :class:`~flask_token_vault.TokenVaultInterrupt` instead,
which carries the link to send them to and the scopes to ask for (those granted and those
required, so nothing granted before is lost); once they have, the same call runs again and
goes through.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlencode, urlsplit

from flask import has_request_context

from ._connect_links import declare_scopes
from ._exchange import ProviderToken
from ._on_behalf import OnBehalf, on_behalf
from ._state import get_state
from ._tokens import sorted_scopes
from .errors import (
    AccountNotConnected,
    InsufficientScope,
    ReconsentRequired,
    TokenVaultInterrupt,
)

_F = TypeVar("_F", bound=Callable[..., Any])

#: The handle the tools of this context act with (:func:`acting_for`).
_acting: ContextVar[OnBehalf | None] = ContextVar("token_vault_acting", default=None)
#: The token of the tool call running in this context (:func:`tool_token`).
_token: ContextVar[ProviderToken | None] = ContextVar("token_vault_tool_token", default=None)


@contextmanager
def acting_for(handle: OnBehalf) -> Iterator[OnBehalf]:
    """Run the tools called inside the ``with`` block for the user of ``handle``.

    Use it where the agent runs: in the view, in a ``stream_with_context`` generator, in each
    worker thread (a thread does not inherit it: enter it there) or in a job.
    """
    reset = _acting.set(handle)
    try:
        yield handle
    finally:
        _acting.reset(reset)


def acting_handle() -> OnBehalf | None:
    """Return the handle of the innermost :func:`acting_for` block, or ``None``."""
    return _acting.get()


def tool_token() -> ProviderToken:
    """Return the provider token of the :func:`token_vault_tool` call running now."""
    found = _token.get()
    if found is None:
        raise RuntimeError(
            "tool_token() is for the body of a function decorated with token_vault_tool."
        )
    return found


def token_vault_tool(
    connection: str,
    scopes: Iterable[str] = (),
    *,
    login_hint: str | None = None,
) -> Callable[[_F], _F]:
    """Make a function a tool that calls ``connection``'s provider for the user (a decorator).

    In the tool, :func:`tool_token` is the user's token carrying ``scopes``. The user is the
    one of :func:`acting_for`, else of the current request (:func:`on_behalf`). When the user
    has not connected the account, or has not granted ``scopes``, the call raises
    :class:`~flask_token_vault.TokenVaultInterrupt` before the function runs. The signature,
    name and docstring stay the function's, so agent frameworks read them as before; coroutine
    functions stay coroutine functions.

    The scopes are declared to the app, as those of ``provider_token_required`` views are, so
    the interrupt's connect link may ask for them.
    """
    required = sorted_scopes(scopes)
    declare_scopes(connection, required)

    def decorate(fn: _F) -> _F:
        def bound_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
            try:
                bound = inspect.signature(fn).bind(*args, **kwargs)
            except TypeError:
                return dict(kwargs)
            return dict(bound.arguments)

        def fetch(args: tuple[Any, ...], kwargs: dict[str, Any]) -> ProviderToken:
            handle = _acting.get() or _request_handle()
            try:
                return handle.token(connection, required, login_hint=login_hint)
            except (AccountNotConnected, ReconsentRequired) as exc:
                raise _interrupt(
                    exc, handle, connection, required, fn, bound_arguments(args, kwargs)
                ) from exc

        if inspect.iscoroutinefunction(fn):

            @wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                reset = _token.set(fetch(args, kwargs))
                try:
                    return await fn(*args, **kwargs)
                finally:
                    _token.reset(reset)

            wrapper: Callable[..., Any] = run_async
        else:

            @wraps(fn)
            def run(*args: Any, **kwargs: Any) -> Any:
                reset = _token.set(fetch(args, kwargs))
                try:
                    return fn(*args, **kwargs)
                finally:
                    _token.reset(reset)

            wrapper = run
        wrapper.token_vault_requires = (connection, required)  # type: ignore[attr-defined]
        return cast(_F, wrapper)

    return decorate


def _request_handle() -> OnBehalf:
    if not has_request_context():
        raise RuntimeError(
            "A token_vault_tool runs for a user: call it inside `with acting_for(handle):` "
            "(take the handle with on_behalf() in the request), or in a request."
        )
    return on_behalf()


def _interrupt(
    error: AccountNotConnected | ReconsentRequired,
    handle: OnBehalf,
    connection: str,
    required: tuple[str, ...],
    fn: Callable[..., Any],
    arguments: dict[str, Any],
) -> TokenVaultInterrupt:
    """Return the interrupt that asks the user to connect or grant what ``error`` says."""
    granted = error.granted if isinstance(error, InsufficientScope) else ()
    wanted = tuple(sorted({*granted, *required, *getattr(error, "required", ())}))
    return TokenVaultInterrupt(
        error.description,
        error=error.error,
        connection=connection,
        granted=granted,
        required=required,
        scopes=wanted,
        connect_url=_connect_link(handle, connection, wanted),
        tool=fn.__name__,
        arguments=arguments,
        code=error.code,
    )


def _connect_link(handle: OnBehalf, connection: str, scopes: tuple[str, ...]) -> str | None:
    """Return the path of the app's connect route asking ``scopes`` for the handle's user.

    ``None`` for an API caller, who connects through the My Account API instead.
    """
    if handle.via == "api":
        return None
    app = handle.app()
    state = get_state(app)
    params = state.links.query(
        connection, scopes, handle.sub, state.links.declared(connection, app.view_functions)
    )
    if handle.return_to:
        params["next"] = handle.return_to
    # The URL map itself: no request context is needed (a thread, a job), and none is pushed
    # inside a view (a pushed one would run the app's teardown functions when it pops).
    root = urlsplit(handle.app_root)
    adapter = app.url_map.bind(root.netloc or "localhost", script_name=root.path or "/")
    path = adapter.build("token_vault.connect", {"connection": connection})
    return path + ("?" + urlencode(params) if params else "")
