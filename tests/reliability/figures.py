"""The figures the reliability tests fill in and ``conftest.py`` prints at the end of the run."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

#: call site -> fault -> outcome text ("" while not run); filled by test_faults.py.
FAULT_TABLE: dict[str, dict[str, tuple[bool, str]]] = defaultdict(dict)
#: hostile input name -> (refused properly, detail); filled by test_hostile.py.
HOSTILE: dict[str, tuple[bool, str]] = {}
#: secret-scan results: what was scanned and the hits; filled by test_secrets.py.
SECRET_SCAN: dict[str, Any] = {}
#: the same for a run with the client key, DPoP and background tokens; filled by test_secrets.py.
KEY_SCAN: dict[str, Any] = {}
#: session protection -> what was measured; filled by test_sessions.py.
SESSIONS: dict[str, str] = {}
#: (scenario, figure measured, target, met); filled by test_bounded.py.
BOUNDED: list[tuple[str, str, str, bool]] = []
#: deployment -> what was measured; filled by test_redis_deployments.py.
DEPLOYMENTS: dict[str, str] = {}
#: one-place change of a security line -> (its test failed on it as it should, detail); filled by
#: test_mutants.py.
MUTANTS: dict[str, tuple[bool, str]] = {}
