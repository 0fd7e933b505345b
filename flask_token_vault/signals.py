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
