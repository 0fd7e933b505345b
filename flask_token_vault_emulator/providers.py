"""Serve fake Google Calendar and Microsoft Graph APIs that accept Token Vault's provider tokens.

Both check the bearer token the exchange issued: missing, unknown, expired or revoked tokens and
tokens of the other provider get 401; a valid token without a needed scope gets 403. Errors use
each provider's own JSON shape.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Response, request

from .constants import GOOGLE_API_PATH, GRAPH_API_PATH
from .fake_data import (
    CalendarEvent,
    format_graph,
    format_rfc3339,
    job_title,
    parse_datetime,
    sample_events,
    stable_number,
    stable_uuid,
)
from .state import EmulatorState, ProviderToken
from .state.common import display_name_for
from .web import bearer_token, current_state, json_body, json_response

google = Blueprint("google", __name__, url_prefix=GOOGLE_API_PATH)
microsoft = Blueprint("microsoft", __name__, url_prefix=GRAPH_API_PATH)

_GOOGLE_SCOPE = "https://www.googleapis.com/auth/"
CALENDAR_READ_SCOPES = frozenset(
    _GOOGLE_SCOPE + name
    for name in ("calendar.readonly", "calendar", "calendar.events", "calendar.events.readonly")
)
CALENDAR_WRITE_SCOPES = frozenset(_GOOGLE_SCOPE + name for name in ("calendar", "calendar.events"))
GOOGLE_USERINFO_SCOPES = frozenset(
    {
        "openid",
        "email",
        "profile",
        _GOOGLE_SCOPE + "userinfo.email",
        _GOOGLE_SCOPE + "userinfo.profile",
    }
)

GRAPH_USER_SCOPES = frozenset(
    {"user.read", "user.readwrite", "user.readbasic.all", "user.read.all", "user.readwrite.all"}
)
GRAPH_EVENTS_READ_SCOPES = frozenset({"calendars.read", "calendars.readwrite"})
GRAPH_EVENTS_WRITE_SCOPES = frozenset({"calendars.readwrite"})
_GRAPH_RESOURCE = "https://graph.microsoft.com/"


class ProviderError(Exception):
    """Stop handling a fake provider API call and answer ``response``."""

    def __init__(self, response: Response) -> None:
        """Keep the answer to send."""
        super().__init__(response.status)
        self.response = response


# -- token checks -----------------------------------------------------------------------------


def token_problem(
    state: EmulatorState, provider: str, raw: str | None = None
) -> tuple[ProviderToken | None, str]:
    """Return the valid provider token of the request, or None and why it is not valid.

    ``raw`` is the token the call carries (by default its ``Authorization: Bearer`` header).
    """
    if raw is None:
        raw = bearer_token()
    if raw is None:
        return None, "missing"
    token = state.get_provider_token(raw)
    if token is None or token.provider != provider:
        return None, "invalid"
    if token.revoked:
        return None, "revoked"
    if token.expires_at <= state.now():
        return None, "expired"
    return token, ""


def _google_error(status: int, message: str, reason: str, grpc_status: str) -> dict[str, Any]:
    return {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": grpc_status,
        }
    }


def _google_token(accepted_scopes: Iterable[str]) -> ProviderToken:
    """Return the request's valid Google token holding one of ``accepted_scopes``."""
    state = current_state()
    token, _ = token_problem(state, "google")
    realm = 'Bearer realm="https://accounts.google.com/"'
    if token is None:
        body = _google_error(
            401, "Request had invalid authentication credentials.", "authError", "UNAUTHENTICATED"
        )
        headers = {"WWW-Authenticate": realm + ', error="invalid_token"'}
        raise ProviderError(json_response(body, 401, headers))
    accepted = frozenset(accepted_scopes)
    if accepted.isdisjoint(token.scopes):
        body = _google_error(
            403,
            "Request had insufficient authentication scopes.",
            "insufficientPermissions",
            "PERMISSION_DENIED",
        )
        needed = " ".join(sorted(accepted))
        headers = {"WWW-Authenticate": realm + f', error="insufficient_scope", scope="{needed}"'}
        raise ProviderError(json_response(body, 403, headers))
    return token


def _graph_error(status: int, code: str, message: str) -> Response:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    request_id = str(uuid.uuid4())
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {"date": now, "request-id": request_id, "client-request-id": request_id},
        }
    }
    headers = {"request-id": request_id}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="", error="invalid_token"'
    return json_response(body, status, headers)


_GRAPH_401_MESSAGES = {
    "missing": "Access token is empty.",
    "invalid": "IDX14100: JWT is not well formed, there are no dots (.).",
    "revoked": "Access token has been revoked.",
    "expired": "Lifetime validation failed, the token is expired.",
}


def _graph_scope(scope: str) -> str:
    scope = scope.strip().lower()
    return scope[len(_GRAPH_RESOURCE) :] if scope.startswith(_GRAPH_RESOURCE) else scope


def _graph_token(accepted_scopes: Iterable[str]) -> ProviderToken:
    """Return the request's valid Microsoft token holding one of ``accepted_scopes``."""
    state = current_state()
    token, problem = token_problem(state, "microsoft")
    if token is None:
        message = _GRAPH_401_MESSAGES[problem]
        raise ProviderError(_graph_error(401, "InvalidAuthenticationToken", message))
    if frozenset(accepted_scopes).isdisjoint(_graph_scope(scope) for scope in token.scopes):
        raise ProviderError(
            _graph_error(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        )
    return token


@google.errorhandler(ProviderError)
@microsoft.errorhandler(ProviderError)
def provider_error(error: ProviderError) -> Response:
    """Answer a fake provider API error."""
    return error.response


# -- shared calendar data ---------------------------------------------------------------------


def account_events(token: ProviderToken) -> list[CalendarEvent]:
    """Return the account's sample events plus those created through the API, by start time."""
    state = current_state()
    today = datetime.fromtimestamp(state.now(), timezone.utc).date()
    events = sample_events(token.account, today)
    events.extend(state.events_created(token.connection, token.account))
    return sorted(events, key=lambda event: event.start)


def _bounded_int(name: str, default: int, maximum: int) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if 1 <= value <= maximum else None


# -- Google -----------------------------------------------------------------------------------


def _google_bad_request(message: str) -> ProviderError:
    body = _google_error(400, message, "invalid", "INVALID_ARGUMENT")
    return ProviderError(json_response(body, 400))


def _google_time(event: CalendarEvent, moment: datetime) -> dict[str, str]:
    if event.all_day:
        return {"date": moment.date().isoformat()}
    return {"dateTime": format_rfc3339(moment), "timeZone": "UTC"}


def google_event(event: CalendarEvent, account: str) -> dict[str, Any]:
    """Format an event as a Google Calendar ``calendar#event`` resource."""
    body: dict[str, Any] = {
        "kind": "calendar#event",
        "id": event.id,
        "status": "confirmed",
        "htmlLink": f"https://www.google.com/calendar/event?eid={event.id}",
        "summary": event.summary,
        "start": _google_time(event, event.start),
        "end": _google_time(event, event.end),
        "organizer": {"email": account, "self": True},
        "creator": {"email": account, "self": True},
    }
    if event.description is not None:
        body["description"] = event.description
    if event.location is not None:
        body["location"] = event.location
    return body


def _calendar(calendar_id: str, scopes: Iterable[str]) -> tuple[ProviderToken, str]:
    """Return the call's token (holding one of ``scopes``) and the account of the calendar.

    Only the token's own calendar (``primary`` or its address) exists; another is 404.
    """
    token = _google_token(scopes)
    if calendar_id == "primary" or calendar_id.strip().lower() == token.account:
        return token, token.account
    body = _google_error(404, "Not Found", "notFound", "NOT_FOUND")
    raise ProviderError(json_response(body, 404))


@google.get("/calendar/v3/users/me/calendarList")
def google_calendar_list() -> Response:
    """List the account's calendars (only the primary one)."""
    token = _google_token(CALENDAR_READ_SCOPES)
    return json_response(
        {
            "kind": "calendar#calendarList",
            "etag": '"emulator"',
            "items": [
                {
                    "kind": "calendar#calendarListEntry",
                    "id": token.account,
                    "summary": token.account,
                    "timeZone": "UTC",
                    "accessRole": "owner",
                    "primary": True,
                }
            ],
        }
    )


def _google_time_param(name: str) -> datetime | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        return parse_datetime(raw)
    except ValueError:
        raise _google_bad_request(f"Bad Request: invalid {name}.") from None


@google.get("/calendar/v3/calendars/<path:calendar_id>/events")
def google_list_events(calendar_id: str) -> Response:
    """List a calendar's events; honours ``timeMin``, ``timeMax`` and ``maxResults``."""
    token, account = _calendar(calendar_id, CALENDAR_READ_SCOPES)
    max_results = _bounded_int("maxResults", 250, 2500)
    if max_results is None:
        raise _google_bad_request("Invalid value for maxResults.")
    events = account_events(token)
    time_min = _google_time_param("timeMin")
    if time_min is not None:
        events = [event for event in events if event.end > time_min]
    time_max = _google_time_param("timeMax")
    if time_max is not None:
        events = [event for event in events if event.start < time_max]
    return json_response(
        {
            "kind": "calendar#events",
            "summary": account,
            "timeZone": "UTC",
            "accessRole": "owner",
            "items": [google_event(event, account) for event in events[:max_results]],
        }
    )


def _google_event_time(body: dict[str, Any], field: str) -> tuple[datetime, bool]:
    value = body.get(field)
    if not isinstance(value, dict) or not (value.get("dateTime") or value.get("date")):
        raise _google_bad_request(f"Missing {field} time.")
    try:
        if value.get("dateTime"):
            return parse_datetime(str(value["dateTime"])), False
        return parse_datetime(str(value["date"]) + "T00:00:00Z"), True
    except ValueError:
        raise _google_bad_request(f"Invalid {field} time.") from None


@google.post("/calendar/v3/calendars/<path:calendar_id>/events")
def google_create_event(calendar_id: str) -> Response:
    """Create an event; it shows up in later listings of the same account."""
    token, account = _calendar(calendar_id, CALENDAR_WRITE_SCOPES)
    body = json_body()
    start, all_day = _google_event_time(body, "start")
    end, _ = _google_event_time(body, "end")
    if end < start:
        raise _google_bad_request("The specified time range is empty.")
    event = CalendarEvent(
        id="emu" + secrets.token_hex(10),
        summary=str(body.get("summary") or "(No title)"),
        start=start,
        end=end,
        all_day=all_day,
        description=None if body.get("description") is None else str(body["description"]),
        location=None if body.get("location") is None else str(body["location"]),
    )
    current_state().add_event(token.connection, account, event)
    return json_response(google_event(event, account))


@google.get("/oauth2/v3/userinfo")
def google_userinfo() -> Response:
    """Describe the Google account the token belongs to."""
    token = _google_token(GOOGLE_USERINFO_SCOPES)
    name = display_name_for(token.account)
    return json_response(
        {
            "sub": stable_number(token.account),
            "email": token.account,
            "email_verified": True,
            "name": name,
            "given_name": name.split(" ")[0],
        }
    )


@google.post("/revoke")
def google_revoke() -> Response:
    """Revoke the grant behind a token, as ``https://oauth2.googleapis.com/revoke`` does.

    Google ends the whole grant: every access token of the account and the refresh token Token
    Vault holds for it (a refresh then fails). An unknown or already revoked token is 400
    ``invalid_token``. Microsoft has no such endpoint (the emulator's Graph has none either).
    """
    state = current_state()
    raw = request.form.get("token") or request.args.get("token") or ""
    token = state.get_provider_token(raw)
    if token is None or token.provider != "google" or token.revoked:
        return json_response(
            {"error": "invalid_token", "error_description": "Token expired or revoked"}, 400
        )
    with state.lock:
        for other in state.provider_tokens.values():
            if (other.user_id, other.connection, other.account) == (
                token.user_id,
                token.connection,
                token.account,
            ):
                other.revoked = True
        state.set_broken(token.user_id, token.connection, True, token.account)
        state.counters.provider_calls["google"]["revoke"] += 1
    return json_response({})


# -- Microsoft Graph --------------------------------------------------------------------------


def graph_event(event: CalendarEvent, account: str) -> dict[str, Any]:
    """Format an event as a Microsoft Graph ``event`` resource."""
    return {
        "id": event.id,
        "subject": event.summary,
        "bodyPreview": event.description or "",
        "isAllDay": event.all_day,
        "start": {"dateTime": format_graph(event.start), "timeZone": "UTC"},
        "end": {"dateTime": format_graph(event.end), "timeZone": "UTC"},
        "location": {"displayName": event.location or ""},
        "organizer": {
            "emailAddress": {"name": display_name_for(account), "address": account},
        },
        "webLink": f"https://outlook.office365.com/owa/?itemid={event.id}&exvsurl=1",
    }


@microsoft.get("/v1.0/me")
def graph_me() -> Response:
    """Describe the Microsoft account the token belongs to."""
    token = _graph_token(GRAPH_USER_SCOPES)
    name = display_name_for(token.account)
    given, _, surname = name.partition(" ")
    return json_response(
        {
            "@odata.context": _GRAPH_RESOURCE + "v1.0/$metadata#users/$entity",
            "id": stable_uuid(token.account),
            "displayName": name,
            "givenName": given,
            "surname": surname or None,
            "mail": token.account,
            "userPrincipalName": token.account,
            "jobTitle": job_title(token.account),
            "businessPhones": [],
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": "en-US",
        }
    )


@microsoft.get("/v1.0/me/events")
def graph_list_events() -> Response:
    """List the account's events; honours ``$top``."""
    token = _graph_token(GRAPH_EVENTS_READ_SCOPES)
    top = _bounded_int("$top", 10, 1000)
    if top is None:
        raise ProviderError(
            _graph_error(400, "BadRequest", "Invalid value for the query parameter '$top'.")
        )
    events = account_events(token)[:top]
    return json_response(
        {
            "@odata.context": _GRAPH_RESOURCE + "v1.0/$metadata#users('me')/events",
            "value": [graph_event(event, token.account) for event in events],
        }
    )


def _graph_event_time(body: dict[str, Any], field: str) -> datetime:
    value = body.get(field)
    raw = value.get("dateTime") if isinstance(value, dict) else None
    if not raw:
        raise ProviderError(
            _graph_error(400, "ErrorInvalidRequest", f"The event's '{field}' is missing.")
        )
    try:
        return parse_datetime(str(raw))
    except ValueError:
        raise ProviderError(
            _graph_error(400, "ErrorInvalidRequest", f"The event's '{field}' is not valid.")
        ) from None


@microsoft.post("/v1.0/me/events")
def graph_create_event() -> Response:
    """Create an event (needs Calendars.ReadWrite); answer 201 with the event."""
    token = _graph_token(GRAPH_EVENTS_WRITE_SCOPES)
    body = json_body()
    start = _graph_event_time(body, "start")
    end = _graph_event_time(body, "end")
    if end < start:
        raise ProviderError(
            _graph_error(400, "ErrorInvalidRequest", "The event's 'end' is before its 'start'.")
        )
    event = CalendarEvent(
        id="emu" + secrets.token_hex(10),
        summary=str(body.get("subject") or ""),
        start=start,
        end=end,
        all_day=bool(body.get("isAllDay", False)),
    )
    current_state().add_event(token.connection, token.account, event)
    return json_response(graph_event(event, token.account), 201)
