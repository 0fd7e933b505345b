"""What every adapter holds: a token source and the scopes its calls need.

(Layer: the adapters' own base, on top of :mod:`flask_token_vault._sources`.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._sources import TokenSource, as_source


class SourceBound:
    """A :class:`~flask_token_vault.TokenSource` and the scopes an adapter's calls need.

    ``source`` may be a connection name: the current request's user at that connection.
    Other keywords go on to the library's own class (cooperative ``__init__``), except
    ``token``: a token set by hand would not renew, so it is refused.
    """

    source: TokenSource
    scopes: tuple[str, ...]

    def __init__(
        self,
        source: TokenSource | str,
        scopes: Iterable[str] = (),
        *,
        login_hint: str | None = None,
        **kwargs: Any,
    ) -> None:
        if "token" in kwargs:
            raise TypeError(f"{type(self).__name__} takes its token from the vault, not token=")
        self.source = as_source(source, login_hint)
        self.scopes = tuple(scopes)
        super().__init__(**kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source!r})"
