"""The README's reference parts agree with the code: its command list and its settings table.

The CLI reference names every command too (docs/configuration.rst's tables are checked in
test_docs.py).
"""

from __future__ import annotations

import re
import shlex

import click

from flask_token_vault import _config as config
from flask_token_vault.admin.cli import cli
from tests.helpers import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
CLI_REFERENCE = (ROOT / "docs" / "cli.rst").read_text(encoding="utf-8")


def commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> dict[str, click.Command]:
    """Return every command of the CLI by its words (``client credentials add``)."""
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.update(commands(command, (*path, name)))
        else:
            found[" ".join((*path, name))] = command
    return found


def readme_command_lines() -> list[list[str]]:
    """Return the words of each line of the README's 'Managing the vault' command list."""
    section = README.split("## Managing the vault", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"^```sh\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    return [shlex.split(line.split("#", 1)[0]) for line in block.splitlines() if line.strip()]


def test_the_readme_lists_every_command_with_options_it_has() -> None:
    known = commands()
    listed: set[str] = set()
    for words in readme_command_lines():
        assert words[:2] == ["flask", "token-vault"], words
        rest = words[2:]
        name = next(
            (
                n
                for n in sorted(known, key=len, reverse=True)
                if rest[: len(n.split())] == n.split()
            ),
            None,
        )
        assert name is not None, f"the README lists an unknown command: {words}"
        listed.add(name)
        options = {opt for param in known[name].params for opt in param.opts}
        for word in rest[len(name.split()) :]:
            flag = word.strip("[]")
            if flag.startswith("--"):
                assert flag in options, f"{name} has no option {flag}"
    assert listed == set(known), f"missing from the README: {sorted(set(known) - listed)}"


def test_the_cli_reference_describes_every_command() -> None:
    for name in commands():
        assert f"``flask token-vault {name}" in CLI_REFERENCE, name


def readme_settings() -> dict[str, str]:
    """Return each key of the README's configuration table with its default column."""
    section = README.split("## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \| [^|]+ \| ([^|]+) \|", section, re.MULTILINE)
    return {key: default.strip() for key, default in rows}


def test_the_readme_settings_table_has_every_setting_with_its_default() -> None:
    table = readme_settings()
    settings = {setting.name: setting for setting in (*config.EVERYDAY, *config.TUNING)}
    assert sorted(table) == sorted(settings)
    for name, setting in settings.items():
        literal = re.search(r"``(.+?)``", setting.documented_default)
        if setting.default is None or literal is None:
            continue  # "required", "none" or words: nothing to compare
        shown = re.match(r"`([^`]+)`", table[name])
        assert shown, f"{name}: the README shows no default value"
        assert shown.group(1) == literal.group(1).strip('"'), name
