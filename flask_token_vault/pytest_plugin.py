"""The pytest plugin's fixtures, importable from here as before.

The plugin itself is :mod:`flask_token_vault_pytest` (registered through the ``pytest11`` entry
point); it lives outside this package so that pytest can load it without importing the
extension.
"""

from __future__ import annotations

import flask_token_vault_pytest
from flask_token_vault_pytest import *  # noqa: F403  (the plugin's __all__ names the fixtures)

__all__ = flask_token_vault_pytest.__all__
