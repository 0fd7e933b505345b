"""Signals sent by Flask-Token-Vault (blinker, in the extension's own namespace).

The sender is always the app (``current_app._get_current_object()``). No signal ever carries a
token, a refresh token, a code or a secret.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Sent after a successful Token Vault exchange. Arguments: ``user_id``, ``connection``,
#: ``login_hint``, ``scopes`` (tuple or None), ``expires_in`` (seconds).
token_exchanged = _signals.signal("token-exchanged")

#: Sent when an exchange fails. Arguments: ``user_id``, ``connection``, ``error`` (the typed
#: :class:`~flask_token_vault.TokenVaultError`).
exchange_failed = _signals.signal("exchange-failed")

#: Sent when the user must connect again or consent to more. Arguments: ``user_id``,
#: ``connection``, ``required_scopes`` (tuple), ``reason`` (the error code).
reconsent_required = _signals.signal("reconsent-required")

#: Sent after a user signs in. Arguments: ``user_id``, ``connection`` (or None).
logged_in = _signals.signal("logged-in")

#: Sent after a user signs out. Arguments: ``user_id``.
logged_out = _signals.signal("logged-out")

#: Sent once when the shared cache stops answering (3 timeouts or refused connections in a row)
#: and the extension stops asking it for ``TOKEN_VAULT_CACHE_COOLDOWN`` seconds, serving tokens
#: from each process's memory and exchanging directly meanwhile. Arguments: ``error`` (the
#: exception's class name), ``retry_in`` (seconds until it asks the cache again).
cache_unavailable = _signals.signal("cache-unavailable")

#: Sent once when the shared cache answers again after :data:`cache_unavailable`. No arguments.
cache_recovered = _signals.signal("cache-recovered")

#: Sent after an account is connected to the vault. Arguments: ``user_id``, ``connection``,
#: ``account_id`` (the connected account's ``cac_...`` id, or None when the vault was filled by
#: a sign-in through the connection, ``TOKEN_VAULT_CONNECT_FLOW = "authorize"``).
connected = _signals.signal("connected")

#: Sent after the user's accounts are removed from the vault (:func:`~flask_token_vault.disconnect`
#: or the disconnect route). Arguments: ``user_id``, ``connection`` (or None when one account
#: was named by id), ``account_ids`` (tuple of the ids removed; empty when nothing was there).
disconnected = _signals.signal("disconnected")

#: Sent after a disconnect asked the provider to revoke the app's grant
#: (``revoke_provider=True``), before the account is deleted. Arguments: ``user_id``,
#: ``revocation`` (a :class:`~flask_token_vault.ProviderRevocation`: ``connection``,
#: ``account_id``, ``outcome`` ``"revoked"``, ``"not_supported"`` or ``"failed"``, ``detail``).
provider_revoked = _signals.signal("provider-revoked")

#: Sent after Auth0's back-channel logout token is taken (valid, not a replay). Arguments:
#: ``sub`` (or None), ``sid`` (or None): with a ``sid`` only that Auth0 session ends, with a
#: ``sub`` alone every session of the user. The sessions themselves end on their next request
#: (:data:`session_ended` with reason ``"backchannel"``).
backchannel_logout = _signals.signal("backchannel-logout")

#: Sent when a signed-in user's session ends. Arguments: ``user_id``, ``reason``: ``"logout"``
#: (the sign-out form), ``"lifetime"`` (``TOKEN_VAULT_SESSION_LIFETIME`` passed), ``"idle"``
#: (``TOKEN_VAULT_SESSION_IDLE_TIMEOUT`` passed) or ``"backchannel"`` (ended by a back-channel
#: logout, seen on the session's next request).
session_ended = _signals.signal("session-ended")
