"""Collect the reliability figures and print them at the end of the run."""

from __future__ import annotations

from typing import Any

import pytest

from .figures import (
    BOUNDED,
    DEPLOYMENTS,
    FAULT_TABLE,
    HOSTILE,
    KEY_SCAN,
    MUTANTS,
    SECRET_SCAN,
    SESSIONS,
)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the fault table, the hostile inputs, the scans, the session figures and bounds."""
    write = terminalreporter.write_line
    if FAULT_TABLE:
        sites = list(FAULT_TABLE)
        faults: list[str] = []
        for row in FAULT_TABLE.values():
            faults.extend(f for f in row if f not in faults)
        cells = {
            (fault, site): "{} {}".format(*_cell(FAULT_TABLE[site].get(fault)))
            for fault in faults
            for site in sites
        }
        first = max(len("fault"), *(len(f) for f in faults))
        widths = [max(len(site), *(len(cells[f, site]) for f in faults)) for site in sites]
        write("")
        write("Fault matrix: call site x fault (ok = typed error, retried success, or the")
        write("provider's own answer, within the deadline; session unchanged; nothing cached;")
        write("for logout: signed out at once, the revocation left to a background thread)")
        write(
            "  "
            + "fault".ljust(first)
            + " | "
            + " | ".join(s.ljust(w) for s, w in zip(sites, widths, strict=True))
        )
        write("  " + "-" * first + "-+-" + "-+-".join("-" * w for w in widths))
        for fault in faults:
            line = " | ".join(cells[fault, s].ljust(w) for s, w in zip(sites, widths, strict=True))
            write("  " + fault.ljust(first) + " | " + line)
        handled = sum(ok for row in FAULT_TABLE.values() for ok, _ in row.values())
        total = sum(len(row) for row in FAULT_TABLE.values())
        write(f"Fault cells handled: {handled}/{total}")
    if HOSTILE:
        refused = sum(ok for ok, _ in HOSTILE.values())
        write(f"Hostile inputs tried: {len(HOSTILE)}, refused safely: {refused}")
        for name, (ok, detail) in HOSTILE.items():
            if not ok:
                write(f"  MISS {name}: {detail}")
    if SECRET_SCAN:
        write(
            "Secret scan: {secrets} secrets (and their {fragments} 12-character fragments) "
            "searched in {chars} characters of logs, stdout, stderr, signals, errors, reprs, "
            "cache and URLs: {hits} hits".format(**SECRET_SCAN)
        )
    if KEY_SCAN:
        write(
            "Key scan: {secrets} keys, assertions, DPoP proofs and subject tokens searched in "
            "{chars} characters of a keyed run (DPoP, background tokens): {hits} hits".format(
                **KEY_SCAN
            )
        )
    if SESSIONS:
        write("Sessions that end (measured in this run):")
        for name, text in SESSIONS.items():
            write(f"  {name}: {text}")
    if BOUNDED:
        write("Bounded by the deadline (real redis-server, a stepped clock, two processes):")
        for name, measured, target, met in BOUNDED:
            write(f"  {name}: {measured} (target: {target}) {'met' if met else 'MISSED'}")
    if MUTANTS:
        held = sum(ok for ok, _ in MUTANTS.values())
        write(
            f"Checks of the lines a mutation pass found unguarded (tools/mutants.py): "
            f"{len(MUTANTS)} run, {held} held"
        )
        for name, (ok, detail) in MUTANTS.items():
            if not ok:
                write(f"  MISS {name}: {detail}")
    if DEPLOYMENTS:
        write("Shared cache on each Redis deployment (real servers, 2 processes x 16 threads):")
        for name, text in DEPLOYMENTS.items():
            write(f"  {name}: {text}")


def _cell(entry: tuple[bool, str] | None) -> tuple[str, str]:
    if entry is None:
        return ("MISS", "not run")
    return ("ok" if entry[0] else "MISS", entry[1])


@pytest.fixture
def fault_table() -> dict[str, dict[str, tuple[bool, str]]]:
    """Return the shared fault table."""
    return FAULT_TABLE
