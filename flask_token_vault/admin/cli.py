"""The ``flask token-vault`` commands: set the tenant up, check it, manage keys and tokensets.

Registered through the ``flask.commands`` entry point, so any app using the extension has them
(``flask token-vault --help`` lists them). They run in the app context and call the Management
API with the app's own client. Human output is an aligned table; ``--json`` prints JSON for
scripts. Any failure prints what went wrong and what to do on stderr and exits non-zero.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, ParamSpec, TypeVar

import click
from flask.cli import AppGroup

from .._accounts import management_client
from .._config import Settings
from .._keys import ClientKey
from .._oidc import read_discovery
from .._state import get_state
from ..errors import ConfigurationError, TokenVaultError
from . import places
from .app_checks import FAIL
from .doctor import run_doctor
from .management import ManagementClient
from .setup_plan import CHANGED, NOT_MADE, PLANNED, SKIPPED, UNCHANGED, SetupItem
from .tenant_setup import SETUP_STEPS, plan_setup, setup_tenant
from .worker_access import PrivilegedWorker, requested_access

P = ParamSpec("P")
R = TypeVar("R")

#: The ``flask token-vault`` command group.
cli = AppGroup("token-vault", help="Manage Auth0 Token Vault for this app.")


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return rows as text columns aligned under their headers."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip()
        for line in (list(headers), *[list(r) for r in rows])
    ]
    return "\n".join(lines)


def _handle_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a typed error into a message and remedy on stderr and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except TokenVaultError as exc:
            message = f"{exc.description} [{exc.error}]\n  fix: {exc.remedy}"
            raise click.ClickException(message) from None

    return wrapper


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


#: ``--json`` for the commands that list records: JSON instead of a table.
_json_table_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON instead of a table."
)


def _echo_records(
    records: Sequence[Any],
    as_json: bool,
    headers: list[str],
    row: Callable[[Any], list[str]],
    empty: str | None = None,
) -> None:
    """Print records as JSON (their ``to_dict``) or as a table; ``empty`` when there are none."""
    if as_json:
        _echo_json([record.to_dict() for record in records])
    elif records:
        click.echo(format_table(headers, [row(record) for record in records]))
    elif empty is not None:
        click.echo(empty)


def _time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value is not None else "-"


# -- setup ------------------------------------------------------------------------------------

_SETUP_MARKS = {
    PLANNED: "[would change]",
    CHANGED: "[changed]",
    UNCHANGED: "[unchanged]",
    SKIPPED: "[skipped]",
    NOT_MADE: "[not made]",
}


#: ``--base-url`` of ``setup`` and ``doctor``: the app's address, for its own URLs.
_BASE_URL_OPTION = click.option(
    "--base-url",
    metavar="URL",
    default=None,
    help="The app's public address, e.g. https://app.example.com, for its callback and logout "
    "URLs (default: TOKEN_VAULT_EXTERNAL_URL, else SERVER_NAME from the config).",
)


@cli.command()
@_BASE_URL_OPTION
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@click.option(
    "--only",
    "only",
    multiple=True,
    type=click.Choice([step.key for step in SETUP_STEPS]),
    help="Run only this step (repeat for several): "
    + "; ".join(f"{step.key}: {step.name}" for step in SETUP_STEPS)
    + ".",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a report.")
@_handle_errors
def setup(base_url: str | None, dry_run: bool, only: tuple[str, ...], as_json: bool) -> None:
    """Set the tenant up for this app: grant, switches, My Account policy, rotation, URLs.

    Idempotent: what is already right is left alone. Exits 1 when a change could not be made.
    """
    state = get_state()
    try:
        read_discovery(state.settings, state.management.transport)
    except TokenVaultError as exc:
        if exc.error == "connection_error":  # one line, not a "by hand" block per step
            raise click.ClickException(f"{exc.description} {exc.remedy}") from None
    try:
        result = setup_tenant(base_url=base_url, dry_run=dry_run, only=only)
    except ConfigurationError as exc:
        raise click.BadParameter(exc.problem, param_hint="--base-url") from None
    if as_json:
        _echo_json(result.to_list())
    else:
        settings = state.settings
        click.echo(
            f"Tenant {settings.base_url}, client {settings.client_id}, "
            f"TOKEN_VAULT_CONNECT_FLOW = {settings.connect_flow!r}"
            + (" (dry run: nothing is changed)" if dry_run else "")
        )
        _echo_setup_items(result.items)
        labels = [(PLANNED, "to change")] if dry_run else [(CHANGED, "changed")]
        labels += [(UNCHANGED, "unchanged"), (SKIPPED, "skipped"), (NOT_MADE, "not made")]
        counts = [f"{len(result.with_status(status))} {label}" for status, label in labels]
        click.echo("\n" + ", ".join(counts) + ".")
    if not result.ok:
        raise click.exceptions.Exit(1)


def _echo_setup_items(items: Sequence[SetupItem]) -> None:
    """Print each item of a set-up with its mark, and how to make by hand what was not made."""
    width = max(len(mark) for mark in _SETUP_MARKS.values())
    for item in items:
        mark = _SETUP_MARKS.get(item.status, item.status).ljust(width)
        click.echo(f"{mark} {item.target}: {item.step}: {item.detail}")
        if item.status == NOT_MADE:
            if item.dashboard:
                click.echo(f"{'':{width}} by hand: {item.dashboard}")
            if item.fix:
                click.echo(f"{'':{width}} fix: {item.fix}")


# -- tokensets --------------------------------------------------------------------------------


@cli.group()
def tokensets() -> None:
    """List and delete the tokensets Token Vault holds for a user."""


@tokensets.command("list")
@click.argument("user_id")
@_json_table_option
@_handle_errors
def tokensets_list(user_id: str, as_json: bool) -> None:
    """List what the vault holds for a user, read as Connected Accounts (Management API)."""
    _echo_records(
        management_client().list_tokensets(user_id),
        as_json,
        ["ID", "CONNECTION", "SCOPES", "ISSUED", "EXPIRES", "LAST USED"],
        lambda t: [
            t.id,
            t.connection,
            " ".join(t.scopes),
            _time(t.issued_at),
            _time(t.expires_at),
            _time(t.last_used_at),
        ],
        empty=f"{user_id} has no tokensets.",
    )


@tokensets.command("delete")
@click.argument("user_id")
@click.argument("tokenset_id")
@click.option("--yes", "-y", is_flag=True, help="Delete without asking for confirmation.")
@_handle_errors
def tokensets_delete(user_id: str, tokenset_id: str, yes: bool) -> None:
    """Delete a user's tokenset and drop the user's tokens from this app's cache.

    Asks for confirmation first (``--yes`` skips it).
    """
    management = management_client()
    # A connected account's id (cac_) is found in the listing; an old tokenset id, at the old
    # endpoint, while the tenant answers it.
    listing = (
        management.list_tokensets
        if tokenset_id.startswith("cac_")
        else management.list_legacy_tokensets
    )
    found = next((t for t in listing(user_id) if t.id == tokenset_id), None)
    # An id not in the list goes straight to Auth0, whose 404 says it does not exist.
    if found is not None and not yes:
        click.confirm(
            f"Delete tokenset {tokenset_id} ({found.connection}: "
            f"{' '.join(found.scopes) or 'no scopes'}) of {user_id}? This app can then get no "
            f"{found.connection} token for the user until they connect again.",
            abort=True,
        )
    deleted = management.delete_tokenset(user_id, tokenset_id)
    # Without this the app would keep serving the cached provider token until it expires.
    state = get_state()
    state.cache.invalidate_user(user_id)
    click.echo(
        f"Deleted tokenset {tokenset_id} of {user_id}"
        + (f" ({found.connection})." if found else ".")
    )
    click.echo(
        f"It was deleted through the old tokenset endpoint ({deleted}), which this tenant still "
        "answers; Auth0 took it out of its documentation on 2026-07-14, and once it is gone only "
        "the user can remove an account (the app's Disconnect button, My Account API)."
    )
    click.echo(_cache_notice(state.cache.shared, state.cache.store.name, state.settings))
    click.echo(
        "The provider's own tokens are not revoked: one already handed out stays valid at the "
        "provider until it expires."
    )


def _cache_notice(shared: bool, backend: str, settings: Settings) -> str:
    """Say honestly which copies of the user's cached tokens this command could drop."""
    if shared:
        return (
            f"This app's shared cache ({backend}) no longer serves the user's tokens; running "
            f"processes drop the copy they keep in memory within {settings.local_cache_ttl:g} s."
        )
    return (
        f"This app's cache ({backend}) lives inside each running process, which this command "
        "cannot reach: a running app keeps using a token it already holds until that token "
        "expires (typically within an hour) or the user signs out; its next exchange then "
        "fails. Set TOKEN_VAULT_CACHE to a shared cache (e.g. 'redis://HOST:6379/0') for this "
        "to take effect at once."
    )


# -- users ------------------------------------------------------------------------------------


@cli.group()
def users() -> None:
    """Find users of the tenant."""


@users.command("find")
@click.argument("email")
@_json_table_option
@_handle_errors
def users_find(email: str, as_json: bool) -> None:
    """Find the user id of an email address (Management API, scope read:users).

    Exits 1 when no user has the address.
    """
    found = management_client().users_by_email(email)
    _echo_records(
        found,
        as_json,
        ["USER ID", "EMAIL", "NAME", "CONNECTIONS"],
        lambda u: [u.user_id, u.email or "-", u.name or "-", ", ".join(u.connections) or "-"],
    )
    if not found:
        click.echo(f"No user of the tenant has the email address {email}.", err=True)
        raise click.exceptions.Exit(1)


# -- client keys and background tokens --------------------------------------------------------


@cli.group()
def client() -> None:
    """Set up the application (client) for Token Vault."""


@client.group()
def credentials() -> None:
    """Authenticate the application with a key instead of its secret (private_key_jwt)."""


def _client_key(key: str | None, alg: str | None) -> ClientKey:
    """Return the key given on the command line, or the app's AUTH0_CLIENT_PRIVATE_KEY."""
    configured = get_state().settings.client_key
    if key is None:
        if configured is None:
            raise click.ClickException(
                "No key: pass --key PATH (the private key's PEM file) or set "
                "AUTH0_CLIENT_PRIVATE_KEY."
            )
        return configured
    try:
        return ClientKey(key, alg or "RS256")
    except ConfigurationError as exc:
        raise click.ClickException(f"--key: {exc.problem}") from None


def _credential_name(key: ClientKey) -> str:
    return f"flask-token-vault-{key.kid[:12]}"


def _ensure_credential(management: ManagementClient, key: ClientKey) -> str:
    """Return the id of the client's credential for ``key``, registering it when missing."""
    name = _credential_name(key)
    for credential in management.list_credentials():
        if credential.get("name") == name or credential.get("kid") == key.kid:
            click.echo(f"The public key is registered already: credential {credential['id']}.")
            return str(credential["id"])
    created = management.add_credential(key.public_pem(), key.algorithm, name)
    click.echo(f"Registered the public key as credential {created['id']} ({key.algorithm}).")
    return str(created["id"])


_KEY_OPTION = click.option(
    "--key",
    default=None,
    help="The private key (PEM text or file path); default: AUTH0_CLIENT_PRIVATE_KEY. "
    "Only its public half is sent.",
)
_ALG_OPTION = click.option(
    "--alg",
    type=click.Choice(["RS256", "RS384", "PS256"]),
    default=None,
    help="Signing algorithm for --key (default RS256).",
)


@credentials.command("add")
@_KEY_OPTION
@_ALG_OPTION
@click.option("--yes", is_flag=True, help="Do not ask before switching the client to the key.")
@_handle_errors
def credentials_add(key: str | None, alg: str | None, yes: bool) -> None:
    """Register the key's public half on this app's client and authenticate with it."""
    client_key = _client_key(key, alg)
    management = management_client()
    credential = _ensure_credential(management, client_key)
    if not yes:
        click.confirm(
            "The client will then authenticate with this key only: its client secret stops "
            "working at once. Switch it now?",
            abort=True,
        )
    changed = management.enable_private_key_jwt(credential)
    click.echo(
        ("The client now authenticates with private_key_jwt." if changed else "Nothing to do.")
        + " Set AUTH0_CLIENT_PRIVATE_KEY and remove AUTH0_CLIENT_SECRET from the app's settings."
    )


@cli.group()
def worker() -> None:
    """Set up background tokens (Auth0's Privileged Worker exchange)."""


@worker.command("setup")
@click.option(
    "--grant",
    "grant",
    multiple=True,
    metavar="CONNECTION=SCOPES",
    help="CONNECTION=SCOPE,SCOPE that jobs may ask for (repeat per connection, at most 5 "
    "connections and 20 scopes); default: TOKEN_VAULT_CONNECTIONS with their scopes.",
)
@click.option(
    "--ip",
    "ips",
    multiple=True,
    metavar="ADDRESS",
    help="An address or CIDR range the jobs call Auth0 from (required; repeat, at most 10): "
    "Auth0 refuses Privileged Worker requests from anywhere else.",
)
@_KEY_OPTION
@_ALG_OPTION
@click.option("--yes", is_flag=True, help="Apply without asking (after printing the block).")
@_handle_errors
def worker_setup(
    grant: tuple[str, ...], ips: tuple[str, ...], key: str | None, alg: str | None, yes: bool
) -> None:
    """Give the client key Privileged Worker access and enable the granted connections.

    Prints the token_vault_privileged_access block and the changes, and asks before making them.
    """
    client_key = _client_key(key, alg)
    try:
        asked = requested_access(grant, ips, get_state().settings)
    except ConfigurationError as exc:
        raise click.BadParameter(exc.problem, param_hint=exc.key) from None
    management = management_client()
    access = replace(asked, credentials=(_ensure_credential(management, client_key),))
    click.echo(
        "\nReview the token_vault_privileged_access block below. Whoever holds this key can "
        "get, for ANY user of this tenant, the provider tokens of these connections and scopes, "
        "with no sign-in, from these addresses:\n"
    )
    _echo_json({"token_vault_privileged_access": access.to_block()})
    plan = plan_setup(steps=[PrivilegedWorker(access)])
    click.echo("")
    _echo_setup_items(plan.items)
    if any(item.status == PLANNED for item in plan.items):
        if not yes:
            click.confirm("Apply these changes?", abort=True)
        result = plan.apply()
        click.echo("")
        _echo_setup_items(result.items)
        if not result.ok:
            raise click.exceptions.Exit(1)
    click.echo(
        "Background jobs can now call vault.worker_token(user_id, connection, scopes=..., "
        "audit_context=...)."
    )


@cli.group("api-client")
def api_client() -> None:
    """Set up the Custom API Client an API exchanges callers' access tokens with."""


@api_client.command("enable")
@click.argument("identifier", required=False)
@click.option("--name", default=None, help="Name of the client, when it is created.")
@click.option(
    "--show-secret",
    is_flag=True,
    help="Print the client's secret (read with the Management API scope read:client_keys "
    "when the client already exists).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@_handle_errors
def api_client_enable(
    identifier: str | None, name: str | None, show_secret: bool, as_json: bool
) -> None:
    """Create or find the Custom API Client of an API (default: AUTH0_AUDIENCE), idempotently.

    The client is linked to the API (``app_type: resource_server``) and has the Token Vault
    grant. Its secret is printed only with --show-secret (keep it out of shared logs).
    """
    management = management_client()
    found = management.enable_api_client(identifier, name=name)
    secret = None
    if show_secret:
        # Auth0 gives a new client's secret in the answer that created it; an existing
        # client's only to a token with read:client_keys.
        secret = found.client_secret or management.get_client_secret(found.client_id)
    if as_json:
        data = found.to_dict()
        if secret:
            data["client_secret"] = secret
        _echo_json(data)
        return
    action = "Created" if found.created else "Found"
    click.echo(
        f"{action} the Custom API Client {found.client_id} ({found.name}) of "
        f"{found.resource_server_identifier}, with the Token Vault grant."
    )
    click.echo(f"TOKEN_VAULT_API_CLIENT_ID={found.client_id}")
    if secret:
        click.echo(f"TOKEN_VAULT_API_CLIENT_SECRET={secret}")
    elif show_secret:
        click.echo(
            "The Management API did not give its secret: authorize this application for the "
            f"scope read:client_keys ({places.MANAGEMENT_API_ACCESS}) and run this again, or "
            f"copy it from {places.application(found.name)} > Credentials."
        )
    else:
        click.echo(
            f"Its secret (TOKEN_VAULT_API_CLIENT_SECRET) is not printed: "
            f"`{places.API_CLIENT_ENABLE} --show-secret` prints it."
        )


# -- connected accounts -----------------------------------------------------------------------


@cli.group()
def accounts() -> None:
    """List the accounts users connected (Connected Accounts)."""


@accounts.command("list")
@click.argument("user_id")
@_json_table_option
@_handle_errors
def accounts_list(user_id: str, as_json: bool) -> None:
    """List a user's connected accounts (Management API)."""
    _echo_records(
        management_client().list_connected_accounts(user_id),
        as_json,
        ["ID", "CONNECTION", "SCOPES", "CREATED", "EXPIRES"],
        lambda a: [
            a.id,
            a.connection,
            " ".join(a.scopes),
            _time(a.created_at),
            _time(a.expires_at),
        ],
        empty=f"{user_id} has no connected accounts.",
    )


# -- doctor -----------------------------------------------------------------------------------

_MARKS = {"pass": "[PASS]", "fail": "[FAIL]", "skip": "[SKIP]"}  # nosec B105 - report marks


@cli.command()
@_BASE_URL_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a report.")
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=None,
    help="How many processes serve the app (default: $WEB_CONCURRENCY, else 1).",
)
@_handle_errors
def doctor(base_url: str | None, as_json: bool, processes: int | None) -> None:
    """Check the tenant and the app's settings; name the fix for each fault."""
    try:
        checks = run_doctor(processes=processes, base_url=base_url)
    except ConfigurationError as exc:
        raise click.BadParameter(exc.problem, param_hint="--base-url") from None
    failed = [c for c in checks if c.status == FAIL]
    if as_json:
        _echo_json([c.to_dict() for c in checks])
    else:
        for check in checks:
            line = f"{_MARKS.get(check.status, check.status)} {check.name}"
            if check.detail:
                line += f": {check.detail}"
            click.echo(line)
            if check.fix and check.status != "pass":
                click.echo(f"       fix: {check.fix}")
        passed = sum(c.status == "pass" for c in checks)
        skipped = len(checks) - passed - len(failed)
        click.echo(f"\n{passed} passed, {len(failed)} failed, {skipped} skipped.")
    if failed:
        raise click.exceptions.Exit(1)
