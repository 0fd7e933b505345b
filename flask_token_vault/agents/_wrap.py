"""What the framework adapters share: a function made a Token Vault tool once."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .._tools import token_vault_tool


def as_vault_tool(
    fn: Callable[..., Any],
    connection: str | None,
    scopes: Iterable[str],
    login_hint: str | None,
) -> Callable[..., Any]:
    """Return ``fn`` if :func:`~flask_token_vault.token_vault_tool` made it, else wrap it.

    A function already decorated carries its connection and scopes: naming them again would
    leave two answers to which ones the tool needs, so it is refused.
    """
    decorated = hasattr(fn, "token_vault_requires")
    if decorated and connection is not None:
        raise TypeError(
            f"{fn.__name__} is already a token_vault_tool: pass it without connection= and scopes="
        )
    if decorated:
        return fn
    if connection is None:
        raise TypeError(
            f"{fn.__name__} needs a connection: decorate it with token_vault_tool, or pass "
            "connection= (and scopes=)"
        )
    return token_vault_tool(connection, scopes, login_hint=login_hint)(fn)
