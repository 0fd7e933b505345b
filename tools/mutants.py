"""Make one-place changes (mutants) of security lines and check that the tests notice each.

Each :class:`Mutant` names a file, a text that must occur in it exactly once, what replaces it,
and the tests that must fail on the change. The tree is copied once to a temporary directory;
there each mutant is written, its tests run (``python -m pytest -x -q``, from the copy, so the
copy's package is the one imported), and the file put back. First, a control run of every
selection on the unchanged copy: a selection that fails there would prove nothing. The working
tree is never touched.

    python tools/mutants.py                 # every mutant, one at a time
    python tools/mutants.py --list          # the list, nothing run
    python tools/mutants.py --only jwks     # the mutants whose name contains "jwks"

Prints one line per mutant (killed, survived, error) and a total. Exits 0 when every mutant
not marked ``equivalent`` was killed and every control passed. The mutants run one after
another: the tests start servers and the machine's cores are often shared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mutant_list import MUTANTS, Mutant

ROOT = Path(__file__).resolve().parent.parent
#: Seconds one selection may run before it counts as hung (an error, not a kill).
TIMEOUT = 600
_IGNORED = shutil.ignore_patterns(
    ".git",
    ".venv*",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "_build",
    "build",
    "dist",
    "*.egg-info",
)


def _pytest(tree: Path, tests: tuple[str, ...]) -> tuple[int, float, str]:
    """Run ``tests`` in ``tree``; return pytest's exit code, the seconds taken, its last line."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # never a stale .pyc of a mutant
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    started = time.monotonic()
    try:
        done = subprocess.run(  # noqa: S603 (our own interpreter, our own arguments)
            command, cwd=tree, env=env, capture_output=True, text=True, timeout=TIMEOUT
        )
    except subprocess.TimeoutExpired:
        return -1, time.monotonic() - started, f"no answer within {TIMEOUT} s"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return done.returncode, time.monotonic() - started, lines[-1] if lines else done.stderr[-200:]


def _outcome(code: int) -> str:
    # 1: tests failed (the change was noticed); 0: all passed; anything else: pytest could not
    # run the selection, which proves nothing either way.
    return {0: "survived", 1: "killed"}.get(code, "error")


def check_list(mutants: tuple[Mutant, ...]) -> list[str]:
    """Return a problem for each mutant whose ``old`` text is not in its file exactly once."""
    problems = []
    for mutant in mutants:
        count = (ROOT / mutant.path).read_text(encoding="utf-8").count(mutant.old)
        if count != 1:
            problems.append(f"{mutant.name}: {mutant.old!r} occurs {count} times in {mutant.path}")
    return problems


def run(mutants: tuple[Mutant, ...]) -> int:
    """Run the controls, then each mutant; print the results; return the exit status."""
    problems = check_list(mutants)
    for problem in problems:
        print(f"error: {problem}")
    if problems:
        return 2
    with tempfile.TemporaryDirectory(prefix="mutants-") as temp:
        tree = Path(temp) / "tree"
        shutil.copytree(ROOT, tree, ignore=_IGNORED)
        controls = list(dict.fromkeys(m.tests for m in mutants))
        failed_controls = 0
        for tests in controls:
            code, took, last = _pytest(tree, tests)
            if code != 0:
                failed_controls += 1
                print(f"control FAILED {took:5.1f}s {' '.join(tests)}: {last}")
        print(f"controls: {len(controls) - failed_controls}/{len(controls)} selections pass")
        results: list[tuple[Mutant, str]] = []
        for mutant in mutants:
            target = tree / mutant.path
            original = target.read_text(encoding="utf-8")
            target.write_text(original.replace(mutant.old, mutant.new), encoding="utf-8")
            try:
                code, took, last = _pytest(tree, mutant.tests)
            finally:
                target.write_text(original, encoding="utf-8")
            outcome = _outcome(code)
            results.append((mutant, outcome))
            note = f" (equivalent: {mutant.equivalent})" if mutant.equivalent else ""
            print(f"{outcome:8} {took:5.1f}s  {mutant.name}{note}", flush=True)
            if outcome == "error":
                print(f"         {last}")
    killed = sum(outcome == "killed" for _, outcome in results)
    survived = [m for m, outcome in results if outcome == "survived"]
    errors = sum(outcome == "error" for _, outcome in results)
    unexplained = [m for m in survived if not m.equivalent]
    print(
        f"{len(results)} mutants: {killed} killed, {len(survived)} survived "
        f"({len(survived) - len(unexplained)} marked equivalent), {errors} errors"
    )
    return 0 if not unexplained and not errors and not failed_controls else 1


def main(argv: list[str] | None = None) -> int:
    """Read the command line and run (or list) the mutants."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print the mutants, run nothing")
    parser.add_argument(
        "--only", action="append", default=[], help="run the mutants whose name contains this"
    )
    args = parser.parse_args(argv)
    chosen = tuple(m for m in MUTANTS if not args.only or any(s in m.name for s in args.only))
    if args.list:
        for mutant in chosen:
            print(f"{mutant.name}\n    {mutant.path}: {mutant.old!r} -> {mutant.new!r}")
            print(f"    tests: {' '.join(mutant.tests)}")
        problems = check_list(chosen)
        for problem in problems:
            print(f"error: {problem}")
        return 2 if problems else 0
    return run(chosen)


if __name__ == "__main__":
    sys.exit(main())
