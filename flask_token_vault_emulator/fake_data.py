"""Make the deterministic calendar data that the fake provider APIs serve."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

_TITLES = (
    "Team stand-up",
    "1:1 with manager",
    "Design review",
    "Lunch with Sam",
    "Sprint planning",
    "Customer call",
    "Dentist appointment",
    "Quarterly business review",
    "Focus time",
    "Interview: backend engineer",
    "Coffee with Priya",
    "Release retrospective",
)

_JOB_TITLES = ("Software Engineer", "Product Manager", "Designer", "Engineering Manager")


@dataclass
class CalendarEvent:
    """Describe one calendar event, independent of how a provider formats it."""

    id: str
    summary: str
    start: datetime
    end: datetime
    all_day: bool = False
    description: str | None = None
    location: str | None = None


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.strip().lower().encode()).digest()


def sample_events(account: str, today: date) -> list[CalendarEvent]:
    """Return the 3 to 5 events every account has, spread over the week starting ``today``."""
    digest = _digest(account)
    count = 3 + digest[0] % 3
    events = []
    for index in range(count):
        day = today + timedelta(days=digest[1 + index] % 7)
        start = datetime.combine(day, time(9 + digest[6 + index] % 8), tzinfo=timezone.utc)
        minutes = 30 * (1 + digest[11 + index] % 3)
        events.append(
            CalendarEvent(
                id=f"emu{digest.hex()[:12]}{index}",
                summary=_TITLES[digest[16 + index] % len(_TITLES)],
                start=start,
                end=start + timedelta(minutes=minutes),
            )
        )
    return sorted(events, key=lambda event: event.start)


def stable_number(account: str, digits: int = 21) -> str:
    """Return a number string derived from the account (like Google's numeric user ids)."""
    return str(int.from_bytes(_digest(account), "big"))[:digits]


def stable_uuid(account: str) -> str:
    """Return a UUID derived from the account (like Microsoft Graph object ids)."""
    return str(uuid.UUID(bytes=_digest(account)[:16], version=4))


def job_title(account: str) -> str:
    """Return a job title derived from the account."""
    return _JOB_TITLES[_digest(account)[0] % len(_JOB_TITLES)]


def parse_datetime(value: str) -> datetime:
    """Parse an RFC 3339 date-time (``Z`` allowed; no zone means UTC); raise ValueError if bad."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python 3.10 reads only 3 or 6 fraction digits; Graph writes 7.
    text = re.sub(r"\.(\d+)", lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def format_rfc3339(moment: datetime) -> str:
    """Format a UTC date-time the way Google Calendar does (``2024-05-01T09:00:00Z``)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_graph(moment: datetime) -> str:
    """Format a UTC date-time the way Microsoft Graph does (``2024-05-01T09:00:00.0000000``)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.0000000")
