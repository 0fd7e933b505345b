"""Run the emulator from a shell until Ctrl-C: ``python -m flask_token_vault_emulator``."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence

from .server import Emulator
from .tls import MtlsListener


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m flask_token_vault_emulator",
        description="Run a local Auth0 Token Vault emulator (for local testing only).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8100, help="port (default 8100; 0 = any)")
    parser.add_argument(
        "--auto-login",
        metavar="EMAIL",
        default=None,
        help="sign EMAIL in at /authorize without showing the login page",
    )
    parser.add_argument(
        "--bare",
        action="store_true",
        help="start as a new tenant with nothing set up (for `flask token-vault setup`)",
    )
    parser.add_argument(
        "--mtls",
        action="store_true",
        help="also serve the mTLS endpoint aliases over TLS on a second port, with a client "
        "certificate registered for the app (RFC 8705)",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="do not write an access log line per request"
    )
    return parser.parse_args(argv)


#: The app's own ``SECRET_KEY``, made by the shell the line is pasted into: a new random key that
#: the emulator never sees nor prints (the README's line, character for character).
KEY_COMMAND = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
SECRET_KEY_EXPORT = f'export SECRET_KEY="$({KEY_COMMAND})"'


def banner(emulator: Emulator, auto_login: str | None = None, *, bare: bool = False) -> str:
    """Return what the emulator prints at start-up: where it is and the lines to paste."""
    lines = [f"export {key}={value}" for key, value in emulator.app_config().items()]
    exports = "\n".join(f"  {line}" for line in [*lines, SECRET_KEY_EXPORT])
    return (
        f"Auth0 Token Vault emulator running at {emulator.url}\n"
        f"  issuer:        {emulator.issuer}\n"
        f"  client id:     {emulator.client_id}\n"
        f"  client secret: {emulator.client_secret}\n"
        f"  Google API:    {emulator.google_api_base}\n"
        f"  Graph API:     {emulator.graph_api_base}\n"
        f"  auto-login:    {auto_login or 'off (the login page is shown)'}\n"
        f"  tenant:        {'bare (run `flask token-vault setup`)' if bare else 'set up'}\n"
        "Point your app at it: paste these lines into the shell that runs the app\n"
        "(AUTH0_DOMAIN keeps its http://: a bare host:port would mean https; an app that\n"
        "reads GOOGLE_API_BASE into its connection's api_base calls the fake API above;\n"
        "SECRET_KEY is the app's own, a new random one made by that shell):\n"
        f"{exports}\n"
        "For local testing only: never expose it to the internet. Press Ctrl-C to stop."
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Start the emulator, print how to use it, and serve until interrupted."""
    args = parse_args(argv)
    emulator = Emulator(
        host=args.host, port=args.port, auto_login=args.auto_login, log_requests=not args.quiet
    )
    emulator.start()
    if args.bare:
        emulator.bare_tenant()
    print(banner(emulator, args.auto_login, bare=args.bare), flush=True)
    listener = MtlsListener(emulator).start() if args.mtls else None
    if listener is not None:
        print(mtls_banner(listener, bare=args.bare), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("Stopping.", file=sys.stderr)
    finally:
        if listener is not None:
            listener.stop()
        emulator.stop()
    return 0


def mtls_banner(listener: MtlsListener, *, bare: bool = False) -> str:
    """Return what ``--mtls`` prints: where the aliases are and how an app uses them."""
    head = f"mTLS endpoint aliases at {listener.url} (server CA: {listener.ca_bundle})\n"
    if bare:
        return head + "The tenant is bare: register a client certificate once it has a client."
    lines = listener.exports(*listener.issue_client_certificate())
    return (
        head
        + "To authenticate by certificate instead of the secret, paste these lines too:\n"
        + "\n".join(f"  {line}" for line in lines)
    )


if __name__ == "__main__":
    sys.exit(main())
