"""A ``slack_sdk`` WebClient whose token comes from the vault on every API call.

Install with ``pip install "Flask-Token-Vault[slack]"``. Slack's quick start makes a
``WebClient(token=os.environ["SLACK_BOT_TOKEN"])``; with the vault, the client is made from the
connection instead of a token, and everything else stays::

    from flask_token_vault.providers.slack_client import VaultWebClient

    client = VaultWebClient("sign-in-with-slack", scopes=["channels:read"])
    channels = client.conversations_list()["channels"]

The asynchronous client is :class:`flask_token_vault.providers.slack_async.AsyncVaultWebClient`
(it needs ``aiohttp``, as Slack's own ``AsyncWebClient`` does).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from ._bound import SourceBound

#: Slack's answers (``{"ok": false, "error": ...}``) to a token it no longer takes: the token
#: is dropped for everyone and the call sent once more with a new one.
REFUSED = frozenset({"invalid_auth", "token_expired", "token_revoked"})

#: The client and the token of the API call under way in this thread or task: the SDK reads
#: ``client.token`` more than once per call, and each read must give the same token.
_SENDING: ContextVar[tuple[object, str] | None] = ContextVar(
    "flask_token_vault_slack_sending", default=None
)


def refused(error: SlackApiError) -> bool:
    """Tell whether Slack's error means it refused the token (see :data:`REFUSED`)."""
    body = error.response.data if error.response is not None else None
    return isinstance(body, dict) and body.get("error") in REFUSED


def names_own_token(kwargs: dict[str, Any]) -> bool:
    """Tell whether a call passes its own ``token`` argument, which Slack's client prefers."""
    return any(
        isinstance(kwargs.get(part), dict) and "token" in kwargs[part]
        for part in ("params", "data", "json")
    )


class _Sending:
    """``with``: the token one API call sends, as ``client.token`` reads it during the call.

    A plain class rather than ``contextlib.contextmanager``: it costs half as much per call.
    """

    __slots__ = ("_client", "_mark", "_token")

    def __init__(self, client: object, token: str) -> None:
        self._client = client
        self._token = token

    def __enter__(self) -> str:
        self._mark = _SENDING.set((self._client, self._token))
        return self._token

    def __exit__(self, *exc: object) -> None:
        _SENDING.reset(self._mark)


class VaultTokenMixin(SourceBound):
    """``token`` read from a :class:`~flask_token_vault.TokenSource`, for both Slack clients.

    Outside an API call, ``client.token`` is the source's current token; during one, the
    token that call sends. A token cannot be set: it would not renew. ``token=`` is refused.
    """

    @property
    def token(self) -> str | None:
        """The Slack token of this call (the vault's current one outside a call)."""
        sending = _SENDING.get()
        if sending is not None and sending[0] is self:
            return sending[1]
        return self._fresh()

    @token.setter
    def token(self, value: str | None) -> None:
        # Slack's constructor sets ``token=None``; any other value would be a fixed token.
        if value is not None:
            raise AttributeError("the token comes from the vault: make the client with a source")

    def _fresh(self) -> str:
        return self.source.token(self.scopes).access_token

    def _sending(self) -> _Sending:
        """Fix the token this API call sends (``client.token`` during the call)."""
        return _Sending(self, self._fresh())

    def _resend_after(self, error: SlackApiError, sent: str, kwargs: dict[str, Any]) -> None:
        """After a failed call: re-raise, or drop the refused token and take a new one.

        Retried once: a call Slack refused the token of, unless it uploads ``files`` (already
        read).
        """
        if not refused(error):
            raise error
        self.source.reject(sent)
        if kwargs.get("files"):
            raise error
        _SENDING.set((self, self._fresh()))


class VaultWebClient(VaultTokenMixin, WebClient):
    """Slack's ``WebClient``, taking a token from the vault for each API call.

    ``source`` is a :class:`~flask_token_vault.TokenSource`, or a connection name (Auth0's
    Sign in with Slack: ``"sign-in-with-slack"``) for the current request's user; make the
    client in the view that uses it. ``scopes`` are required of the token: one the user has
    not granted raises :class:`~flask_token_vault.InsufficientScope` before anything is sent,
    which :func:`~flask_token_vault.provider_token_required` turns into a consent step. Other
    keyword arguments are ``WebClient``'s own (``base_url``, ``timeout``, ``retry_handlers``...).

    When Slack answers ``invalid_auth``, ``token_expired`` or ``token_revoked``, the token is
    dropped for every process (:meth:`TokenSource.reject
    <flask_token_vault.TokenSource.reject>`) and the call sent once more with a new one. Not
    retried: a call that uploads ``files`` (already read), and the further pages of a
    paginated answer (Slack's client sends them with the first page's token).
    """

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:
        """Send one Slack API call with the vault's token; after a refusal, once more."""
        if names_own_token(kwargs):
            return super().api_call(api_method, **kwargs)
        with self._sending() as access_token:
            try:
                return super().api_call(api_method, **kwargs)
            except SlackApiError as error:
                self._resend_after(error, access_token, kwargs)
            return super().api_call(api_method, **kwargs)
