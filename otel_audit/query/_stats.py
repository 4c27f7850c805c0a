"""Counts over a selection of events: :class:`AuditStats` and the tally that fills it.

The dimensions: by action, outcome, actor (``user.id``), tenant and time bucket; failed
logins by client address and by user; denied accesses by user and by route. A missing
value counts under ``""``. Time buckets start at multiples of the bucket since the Unix
epoch, in UTC (as VictoriaLogs' ``stats by (_time:1h)``), and are keyed by their start
(RFC 3339).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from ..archive import ArchivedEvent
from ._filter import format_duration
from ._match import is_denied, is_failed_login
from ._shape import (
    ACTION,
    CLIENT,
    OUTCOME,
    ROUTE,
    TENANT_ID,
    USER_ID,
    event_time_ns,
    format_timestamp,
    text,
)

DEFAULT_BUCKET: Final = timedelta(hours=1)

DIMENSIONS: Final = (
    ("by_action", ACTION),
    ("by_outcome", OUTCOME),
    ("by_actor", USER_ID),
    ("by_tenant", TENANT_ID),
)
"""Plain counts: (field of :class:`AuditStats`, attribute)."""


def _counts() -> dict[str, int]:
    return {}


@dataclass
class AuditStats:
    """What ``otel-audit stats`` prints and ``GET /stats`` answers; every map is value -> count,
    largest count first."""

    total: int = 0
    bucket: str = format_duration(DEFAULT_BUCKET)
    """The width of :attr:`over_time`'s buckets (``1h``)."""
    first: str | None = None
    """The earliest event's timestamp (RFC 3339), or None when nothing matched."""
    last: str | None = None
    by_action: dict[str, int] = field(default_factory=_counts)
    by_outcome: dict[str, int] = field(default_factory=_counts)
    by_actor: dict[str, int] = field(default_factory=_counts)
    by_tenant: dict[str, int] = field(default_factory=_counts)
    over_time: dict[str, int] = field(default_factory=_counts)
    """Bucket start (RFC 3339) -> count, oldest first."""
    failed_logins: int = 0
    failed_logins_by_client: dict[str, int] = field(default_factory=_counts)
    failed_logins_by_user: dict[str, int] = field(default_factory=_counts)
    denied: int = 0
    denied_by_user: dict[str, int] = field(default_factory=_counts)
    denied_by_route: dict[str, int] = field(default_factory=_counts)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the same keys)."""
        return dict(vars(self))


def ranked(counts: Mapping[str, int]) -> dict[str, int]:
    """``counts`` largest first, ties by value."""
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def bucket_start(nanos: int, bucket_ns: int) -> int:
    """The start of the bucket holding ``nanos``."""
    return nanos - nanos % bucket_ns


def format_bucket(nanos: int) -> str:
    """A bucket start as RFC 3339 (whole seconds, as VictoriaLogs prints them)."""
    seconds, fraction = divmod(nanos, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return stamp + (f".{fraction:09d}".rstrip("0") if fraction else "") + "Z"


class StatsTally:
    """Counts events one by one (:meth:`add`), then :meth:`result`."""

    def __init__(self, bucket: timedelta = DEFAULT_BUCKET) -> None:
        self._bucket = bucket
        self._bucket_ns = int(bucket.total_seconds()) * 1_000_000_000
        if self._bucket_ns <= 0:
            raise ValueError("the time bucket must be at least one second")
        self._total = 0
        self._first: int | None = None
        self._last: int | None = None
        self._plain = {name: Counter[str]() for name, _ in DIMENSIONS}
        self._times = Counter[int]()
        self._failed_by_client = Counter[str]()
        self._failed_by_user = Counter[str]()
        self._denied_by_user = Counter[str]()
        self._denied_by_route = Counter[str]()

    def add(self, event: ArchivedEvent) -> None:
        """Count one event."""
        attributes = event.attributes
        self._total += 1
        nanos = event_time_ns(event)
        if self._first is None or nanos < self._first:
            self._first = nanos
        if self._last is None or nanos > self._last:
            self._last = nanos
        for name, key in DIMENSIONS:
            self._plain[name][text(attributes.get(key))] += 1
        self._times[bucket_start(nanos, self._bucket_ns)] += 1
        user = text(attributes.get(USER_ID))
        if is_failed_login(event):
            self._failed_by_client[text(attributes.get(CLIENT))] += 1
            self._failed_by_user[user] += 1
        if is_denied(event):
            self._denied_by_user[user] += 1
            self._denied_by_route[text(attributes.get(ROUTE))] += 1

    def add_all(self, events: Iterable[ArchivedEvent]) -> StatsTally:
        """Count every event of ``events``; returns self."""
        for event in events:
            self.add(event)
        return self

    def result(self) -> AuditStats:
        """The counts so far."""
        return AuditStats(
            total=self._total,
            bucket=format_duration(self._bucket),
            first=None if self._first is None else format_timestamp(self._first),
            last=None if self._last is None else format_timestamp(self._last),
            **{name: ranked(counter) for name, counter in self._plain.items()},
            over_time={format_bucket(start): n for start, n in sorted(self._times.items())},
            failed_logins=sum(self._failed_by_client.values()),
            failed_logins_by_client=ranked(self._failed_by_client),
            failed_logins_by_user=ranked(self._failed_by_user),
            denied=sum(self._denied_by_user.values()),
            denied_by_user=ranked(self._denied_by_user),
            denied_by_route=ranked(self._denied_by_route),
        )
