"""Filter combinations checked against the oracle (files) and against VictoriaLogs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from otel_audit.query import EventFilter

from .trail import DAY_NS, ODD_USERS, PSEUDONYM_KEY


@dataclass(frozen=True)
class Case:
    """A filter as the engine takes it, and the same selection as the oracle takes it."""

    id: str
    fields: dict[str, Any] = field(default_factory=dict)
    keyed: bool = False
    since_days: float | None = None
    """``since`` as a duration before the trail's now (relative time)."""
    window_days: tuple[float, float] | None = None
    """``since``/``until`` as absolute instants, in days before now."""

    def event_filter(self, now_ns: int) -> EventFilter:
        times: dict[str, Any] = {}
        if self.since_days is not None:
            times["since"] = timedelta(days=self.since_days)
        if self.window_days is not None:
            start, end = (_instant(now_ns - int(days * DAY_NS)) for days in self.window_days)
            times |= {"since": start, "until": end}
        key = PSEUDONYM_KEY if self.keyed else None
        return EventFilter(**self.fields, **times, pseudonym_key=key)

    def oracle_args(self, now_ns: int) -> dict[str, Any]:
        args = dict(self.fields, keyed=self.keyed)
        if self.since_days is not None:
            args["since_ns"] = now_ns // 1000 * 1000 - int(self.since_days * DAY_NS)
        if self.window_days is not None:
            start, end = (now_ns - int(days * DAY_NS) for days in self.window_days)
            # The filter's instants are datetimes: microseconds.
            args |= {"since_ns": start // 1000 * 1000, "until_ns": end // 1000 * 1000}
        return args


def _instant(nanos: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=nanos // 1000)


def now_of(now_ns: int) -> datetime:
    """The trail's now as the engine takes it (a datetime: microseconds)."""
    return _instant(now_ns)


CASES = [
    Case("everything"),
    Case("user raw, without key", {"user": "user-7"}),
    Case("user with key finds its pseudonym too", {"user": "user-7"}, keyed=True),
    Case("tenant with key and action glob", {"tenant": "tenant-3", "action": "user.*"}, keyed=True),
    Case("action prefix and outcome", {"action": "auth.login*", "outcome": "failure"}),
    Case("action suffix glob", {"action": "*.created"}),
    Case("action ? glob", {"action": "user.?ole_changed"}),
    Case("action exact, no match", {"action": "nothing.here"}),
    Case("outcome and route", {"outcome": "error", "route": "/items/{item_id}"}),
    Case("resource type and id", {"resource_type": "user", "resource_id": "u-17"}),
    Case("IPv4 client", {"client": "10.1.2.3"}),
    Case("IPv6 client", {"client": "2001:db8::a"}),
    Case("failed logins", {"category": "failed-login"}),
    Case("denied accesses in the last 7 days", {"category": "denied"}, since_days=7),
    Case("relative since 36h", {"outcome": "success"}, since_days=1.5),
    Case("absolute window", {"action": "http.request"}, window_days=(20, 12.5)),
    Case("identifier with quotes, keyed", {"user": ODD_USERS[0]}, keyed=True),
    Case("identifier with a backslash", {"user": ODD_USERS[1]}),
    Case("non-ASCII identifier with a slash, keyed", {"user": ODD_USERS[2]}, keyed=True),
    Case("identifier with a tab", {"user": ODD_USERS[3]}),
]
