"""Where a fix is made: the CLI's commands and the Auth0 Dashboard's pages, each written once.

Messages of ``setup``, ``doctor``, the CLI and the Management API client name these; a renamed
command or a moved Dashboard page is changed here only.
"""

from __future__ import annotations

#: The command group (``flask --app app token-vault ...``).
CLI = "flask token-vault"
SETUP = f"{CLI} setup"
SETUP_WITH_BASE_URL = f"{SETUP} --base-url https://YOUR-HOST"
DOCTOR = f"{CLI} doctor"
CREDENTIALS_ADD = f"{CLI} client credentials add --key PATH"
WORKER_SETUP = f"{CLI} worker setup"
WORKER_SETUP_ARGS = f"{WORKER_SETUP} --grant CONNECTION=SCOPE,SCOPE --ip ADDRESS"
API_CLIENT_ENABLE = f"{CLI} api-client enable"


def setup_only(step: str) -> str:
    """Return the command that runs one step of ``setup`` (its ``--only`` name)."""
    return f"{SETUP} --only {step}"


DASHBOARD = "Auth0 Dashboard"
APPLICATIONS = f"{DASHBOARD} > Applications > Applications"
APIS = f"{DASHBOARD} > Applications > APIs"
MANAGEMENT_API_ACCESS = f"{APIS} > Auth0 Management API > Machine To Machine Applications"
SOCIAL = f"{DASHBOARD} > Authentication > Social"
CREATE_CONNECTION = f"{SOCIAL} > Create Connection"
MFA = f"{DASHBOARD} > Security > Multi-factor Auth"


def application(name: str) -> str:
    """Return the Dashboard page of an application (``name``: its name or client id)."""
    return f"{APPLICATIONS} > {name}"


def connection(name: str) -> str:
    """Return the Dashboard page of a social connection."""
    return f"{SOCIAL} > {name}"
