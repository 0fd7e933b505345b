"""The pytest plugin's fixtures, importable from here as before.

The plugin itself is :mod:`flask_token_vault_pytest` (registered through the ``pytest11`` entry
point); it lives outside this package so that pytest can load it without importing the
extension.
"""

from __future__ import annotations

from flask_token_vault_pytest import (
    token_vault_app_config,
    token_vault_emulator,
    token_vault_emulator_reset,
    token_vault_fail_next_exchange,
    token_vault_login_as,
)

__all__ = [
    "token_vault_app_config",
    "token_vault_emulator",
    "token_vault_emulator_reset",
    "token_vault_fail_next_exchange",
    "token_vault_login_as",
]
