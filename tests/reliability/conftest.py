"""Collect the reliability figures and print them at the end of the run."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

#: call site -> fault -> outcome text ("" while not run); filled by test_faults.py.
FAULT_TABLE: dict[str, dict[str, tuple[bool, str]]] = defaultdict(dict)
#: hostile input name -> (refused properly, detail); filled by test_hostile.py.
HOSTILE: dict[str, tuple[bool, str]] = {}
#: secret-scan results: what was scanned and the hits; filled by test_secrets.py.
SECRET_SCAN: dict[str, Any] = {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the fault table, the hostile-input count and the secret-scan result."""
    write = terminalreporter.write_line
    if FAULT_TABLE:
        faults: list[str] = []
        for row in FAULT_TABLE.values():
            for fault in row:
                if fault not in faults:
                    faults.append(fault)
        write("")
        write("Fault matrix (call site x fault): outcome, ok = handled as specified")
        width = max(len(site) for site in FAULT_TABLE) + 2
        for fault in faults:
            cells = []
            for site, row in FAULT_TABLE.items():
                ok, text = row.get(fault, (False, "not run"))
                cells.append(f"{site}: {'ok' if ok else 'MISS'} {text}")
            write(f"  {fault:<22}" + " | ".join(cells))
        handled = sum(ok for row in FAULT_TABLE.values() for ok, _ in row.values())
        total = sum(len(row) for row in FAULT_TABLE.values())
        write(f"Fault cells handled: {handled}/{total} (width {width})")
    if HOSTILE:
        refused = sum(ok for ok, _ in HOSTILE.values())
        write(f"Hostile inputs tried: {len(HOSTILE)}, refused safely: {refused}")
        for name, (ok, detail) in HOSTILE.items():
            if not ok:
                write(f"  MISS {name}: {detail}")
    if SECRET_SCAN:
        write(
            "Secret scan: {secrets} secrets searched in {chars} characters of logs, signals, "
            "errors, reprs, cache and URLs: {hits} hits".format(**SECRET_SCAN)
        )


@pytest.fixture
def fault_table() -> dict[str, dict[str, tuple[bool, str]]]:
    """Return the shared fault table."""
    return FAULT_TABLE
