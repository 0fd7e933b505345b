"""Background jobs of the example app, on RQ: refresh a user's calendar with no one signed in.

The web app (or a cron job) enqueues ``refresh_calendar(user_id)`` with
:func:`enqueue_calendar_refresh`; any number of RQ workers, on any machines sharing the Redis,
run them::

    python -m pip install '.[rq]'   # in a checkout of the repository
    rq worker --url "$REDIS_URL"

Each worker builds the app once from its environment (``AUTH0_DOMAIN``, ``AUTH0_CLIENT_ID``,
``AUTH0_CLIENT_PRIVATE_KEY``, ``TOKEN_VAULT_CACHE`` = the same Redis) and asks
:meth:`TokenVault.worker_token <flask_token_vault.TokenVault.worker_token>` for the user's
Google token: Auth0's Privileged Worker exchange, through the cache every worker and web
process shares, so three jobs for one user cost one exchange.
"""

from __future__ import annotations

import os
from typing import Any

import requests
from flask import Flask

from flask_token_vault import provider_api_url

from . import CAL_READ, create_app, vault

__all__ = ["enqueue_calendar_refresh", "refresh_calendar", "worker_app"]

_app: Flask | None = None
#: Why the job takes each user's token: Auth0 requires a reason and writes it to the tenant's
#: logs, so it says what the job does and never whom it is for.
AUDIT_CONTEXT = "calendar refresh job (example app)"


def worker_app() -> Flask:
    """Return this worker process's app, built once from the environment."""
    global _app
    if _app is None:
        if not os.environ.get("AUTH0_DOMAIN"):
            raise RuntimeError("A worker needs AUTH0_DOMAIN and the client key in its environment.")
        _app = create_app()
    return _app


def refresh_calendar(user_id: str) -> dict[str, Any]:
    """Fetch a user's upcoming events with their Google token; return a summary of them."""
    app = worker_app()
    with app.app_context():
        token = vault.worker_token(
            user_id, "google-oauth2", [CAL_READ], audit_context=AUDIT_CONTEXT
        )
        answer = requests.get(
            # Google's API, or where the connection's api_base points (GOOGLE_API_BASE).
            provider_api_url("google-oauth2", "/calendar/v3/calendars/primary/events"),
            headers={"Authorization": f"Bearer {token.access_token}"},
            params={"maxResults": "10", "singleEvents": "true", "orderBy": "startTime"},
            timeout=10,
        )
        answer.raise_for_status()
        items = answer.json().get("items", [])
    first = items[0].get("summary") if items else None
    return {"user_id": user_id, "events": len(items), "first": first}


def enqueue_calendar_refresh(redis_url: str, user_ids: list[str]) -> list[str]:
    """Put one ``refresh_calendar`` job per user on the default queue; return the job ids."""
    # Imported here: RQ is an optional extra, and running a job does not need it.
    from redis import Redis
    from rq import Queue

    queue = Queue(connection=Redis.from_url(redis_url))
    return [queue.enqueue(refresh_calendar, user_id).id for user_id in user_ids]
