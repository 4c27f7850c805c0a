"""One event as the outside world sees it: the JSON object of ``otel-audit query --format json``.

Contract (``query --format json``, ``audit_router``): ``event_name``, ``timestamp`` (RFC 3339,
UTC, nine fractional digits) and ``attributes`` (an object), then ``event_id``
(``audit.event.id``), ``severity_text``, ``severity_number``, ``body``, ``trace_id``,
``span_id`` (hex, or null), ``resource`` (an object) and ``source`` (``file:line``, or null
for a backend). Values are JSON-safe: bytes as base64, non-finite floats as strings.
"""

from __future__ import annotations

import base64
import math
import time
from typing import Any, Final

from ..archive import ArchivedEvent

EVENT_ID: Final = "audit.event.id"
ACTION: Final = "audit.action"
OUTCOME: Final = "audit.outcome"
USER_ID: Final = "user.id"
TENANT_ID: Final = "tenant.id"
RESOURCE_TYPE: Final = "audit.resource.type"
RESOURCE_ID: Final = "audit.resource.id"
ROUTE: Final = "http.route"
CLIENT: Final = "client.address"
STATUS: Final = "http.response.status_code"

_PLAIN: Final = frozenset({str, int, bool, type(None)})

SortKey = tuple[int, str]
"""``(timestamp in Unix ns, event id)``: the stable order of listings and cursors."""


def event_time_ns(event: ArchivedEvent) -> int:
    """When the event happened (its timestamp, else when it was observed), Unix ns."""
    return event.timestamp_ns or event.observed_timestamp_ns


def event_id(event: ArchivedEvent) -> str:
    """``audit.event.id`` as text ("" when the record has none)."""
    value = event.attributes.get(EVENT_ID)
    return value if isinstance(value, str) else text(value)


def sort_key(event: ArchivedEvent) -> SortKey:
    """The event's place in a listing: by time, then by event id."""
    return (event_time_ns(event), event_id(event))


def format_timestamp(nanos: int) -> str:
    """Unix nanoseconds as RFC 3339 in UTC with nine fractional digits."""
    seconds, fraction = divmod(nanos, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


def text(value: object) -> str:
    """An attribute value as the text filters and statistics compare (as VictoriaLogs stores it)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def json_safe(value: object) -> Any:  # noqa: PLR0911 - one return per kind of value
    """``value`` with bytes as base64 and NaN/infinities as strings, recursively."""
    kind = value.__class__
    if kind in _PLAIN:  # nearly every attribute: nothing to do
        return value
    if kind is dict:
        return {
            str(k): v if v.__class__ in _PLAIN else json_safe(v)
            for k, v in value.items()  # type: ignore[attr-defined]
        }
    if isinstance(value, (str, int)):  # subclasses (bool is an int), as their plain selves
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return str(value)


def event_to_dict(event: ArchivedEvent) -> dict[str, Any]:
    """The contract JSON object of one event (see the module docstring)."""
    return {
        "event_name": event.event_name,
        "timestamp": format_timestamp(event_time_ns(event)),
        "attributes": json_safe(event.attributes),
        "event_id": event_id(event) or None,
        "severity_text": event.severity_text,
        "severity_number": event.severity_number,
        "body": json_safe(event.body),
        "trace_id": event.trace_id or None,
        "span_id": event.span_id or None,
        "resource": json_safe(event.resource),
        "source": event.source or None,
    }
