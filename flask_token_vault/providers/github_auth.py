"""A PyGithub ``Auth`` that signs each request with the vault's GitHub token.

Install with ``pip install "Flask-Token-Vault[github]"``. PyGithub's quick start makes
``Github(auth=Auth.Token("access_token"))``; with the vault, only the ``auth`` changes::

    from github import Github
    from flask_token_vault.providers.github_auth import VaultGithubAuth

    auth = VaultGithubAuth("github", scopes=["read:user"])
    login = auth.call(lambda: Github(auth=auth).get_user().login)

PyGithub asks its ``Auth`` for the header before every request, so the token renews when the
vault renews it. PyGithub has no hook for what GitHub answers: a 401 comes out of the call as
``github.BadCredentialsException``. :meth:`VaultGithubAuth.call` catches it, drops the token
for everyone and runs the function once more; without it, :meth:`VaultGithubAuth.reject_sent`
drops the token (e.g. from the app's error handler) and the next request gets a new one.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from github.Auth import Auth
from github.GithubException import BadCredentialsException

from ._bound import SourceBound

T = TypeVar("T")

#: The auth object and the token it last put on a request in this thread or task.
_SENT: ContextVar[tuple[object, str] | None] = ContextVar(
    "flask_token_vault_github_sent", default=None
)


class VaultGithubAuth(SourceBound, Auth):
    """PyGithub authentication with a GitHub token from the vault, asked for per request.

    ``source`` is a :class:`~flask_token_vault.TokenSource`, or a connection name (usually
    ``"github"``) for the current request's user; make it in the view that uses it.
    ``scopes`` are required of the token: one the user has not granted raises
    :class:`~flask_token_vault.InsufficientScope` from the PyGithub call that needs the token,
    which :func:`~flask_token_vault.provider_token_required` turns into a consent step.
    """

    @property
    def token_type(self) -> str:
        """``Bearer``: GitHub takes OAuth tokens as bearer tokens."""
        return "Bearer"

    @property
    def token(self) -> str:
        """The vault's current token (the one each request carries, read when it is sent)."""
        access_token = self.source.token(self.scopes).access_token
        _SENT.set((self, access_token))
        return access_token

    @property
    def _masked_token(self) -> str:
        # What PyGithub writes in its debug log in place of the header.
        return "Bearer (vault token removed)"

    def reject_sent(self) -> bool:
        """Drop the token this thread last sent through this object; tell whether there was one.

        For a ``BadCredentialsException`` caught outside :meth:`call`: the token GitHub
        refused is dropped for every process and the next request gets a new one.
        """
        sent = _SENT.get()
        if sent is None or sent[0] is not self:
            return False
        self.source.reject(sent[1])
        _SENT.set(None)
        return True

    def call(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Return ``function(*args, **kwargs)``; after GitHub's 401, drop the token and rerun it.

        Put the whole PyGithub work in ``function``, iteration of a ``PaginatedList``
        included (its pages are fetched as it is iterated). Run once more, so it should be
        safe to repeat (reads are; a write that got a 401 was not made).
        """
        try:
            return function(*args, **kwargs)
        except BadCredentialsException:
            if not self.reject_sent():
                raise
        return function(*args, **kwargs)
