"""The troubleshooting guide's table of error codes is the error classes' own, code for code.

Every ``error`` code the package raises is in the table with its page title, cause and fix as the
classes (``errors.py``, ``_error_codes.py``) give them. When this fails, the message holds the
table to paste between the markers in ``docs/troubleshooting.rst``.
"""

from __future__ import annotations

import re

from flask_token_vault import errors
from flask_token_vault.errors import TokenVaultError
from tests.docs.test_docs import error_classes, read
from tests.helpers import ROOT

BEGIN = ".. error-table-begin\n"
END = ".. error-table-end\n"


def leaf_classes() -> list[type[TokenVaultError]]:
    """Return the error classes the package raises, in the order ``errors.py`` defines them."""
    found = [
        cls
        for cls in error_classes()
        if issubclass(cls, TokenVaultError)
        and cls is not TokenVaultError
        and cls not in errors.GROUPS
        and not cls.__name__.startswith("_")
    ]
    source = (ROOT / "flask_token_vault" / "errors.py").read_text()
    return sorted(found, key=lambda cls: source.index(f"\nclass {cls.__name__}("))


def rows() -> list[tuple[str, str, str, str, str]]:
    """Return (code, class and status, page title, cause, fix) for every code of every class."""
    out = []
    for cls in leaf_classes():
        where = f":class:`~flask_token_vault.{cls.__name__}` ({cls.code})"
        cause = (cls.__doc__ or "").strip().splitlines()[0]
        out.append((cls.default_error, where, cls.heading, cause, cls.default_remedy))
        for code, known in sorted(cls.codes.items()):
            out.append((code, where, known.title or cls.heading, known.cause, known.fix))
    return out


def table() -> str:
    """Return the table as it stands in the guide, between its markers."""
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 18 18 16 24 24",
        "",
        "   * - ``error``",
        "     - Class (status)",
        "     - Page title",
        "     - Cause",
        "     - Fix",
    ]
    for code, where, title, cause, fix in rows():
        lines += [f"   * - ``{code}``", f"     - {where}", f"     - {title}"]
        lines += [f"     - {cause}", f"     - {fix}"]
    return "\n".join(lines) + "\n"


def test_the_guide_holds_the_classes_table() -> None:
    text = read("troubleshooting.rst")
    assert BEGIN in text and END in text
    shown = text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"
    expected = table()
    assert shown == expected, "docs/troubleshooting.rst's table should read:\n\n" + expected


def test_every_code_the_package_raises_is_in_the_table() -> None:
    raised: set[str] = set()
    for path in (ROOT / "flask_token_vault").glob("*.py"):
        raised |= set(re.findall(r'\berror="([a-z0-9_]+)"', path.read_text()))
    listed = {code for code, *_ in rows()}
    assert raised, "the scan found no codes: has the raising style changed?"
    assert raised - listed == set(), "add these codes to _error_codes.py"
