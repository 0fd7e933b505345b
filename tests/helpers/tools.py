"""An agent tool the tests hand to each agent framework: it reads the user's Google calendars."""

from __future__ import annotations

import requests

from flask_token_vault import token_vault_tool, tool_token
from tests.helpers import TIMEOUT
from tests.helpers.apps import CAL_READ
from tests.helpers.handles import GOOGLE


@token_vault_tool(GOOGLE, scopes=[CAL_READ])
def count_calendars(base: str) -> int:
    """Count the user's calendars (a tool an agent calls)."""
    answer = requests.get(
        base + "/calendar/v3/users/me/calendarList",
        headers={"Authorization": f"Bearer {tool_token().access_token}"},
        timeout=TIMEOUT,
    )
    answer.raise_for_status()
    return len(answer.json()["items"])
