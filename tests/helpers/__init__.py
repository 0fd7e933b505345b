"""Helpers the tests import, by purpose: app, OAuth requests, browser, processes, keys, servers.

Fixtures live in ``conftest.py``; the modules here hold plain functions, classes and constants.
"""

from __future__ import annotations

from pathlib import Path

#: The repository's root folder.
ROOT = Path(__file__).resolve().parents[2]
#: Seconds a test waits for an HTTP answer.
TIMEOUT = 10
