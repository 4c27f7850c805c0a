"""What to select: :class:`EventFilter`, parsed from command-line or query-string text.

Every field is optional; a filter with none selects everything. Values are matched exactly
(``action`` is a glob: ``*`` any run of characters, ``?`` one character). Times are RFC 3339
(``2026-11-30T08:00:00Z``; a date alone is that UTC midnight; no offset means UTC) or
relative to now (``30m``, ``24h``, ``7d``, ``1w2d``). ``since`` is inclusive, ``until``
exclusive. A malformed value raises :class:`FilterError` naming the option and the value.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, timedelta, timezone
from typing import Final, Literal

from ._errors import FilterError

OUTCOMES: Final = ("success", "failure", "error")
"""``audit.outcome`` values (contract)."""
CATEGORIES: Final = ("failed-login", "denied")
"""Derived selections: failed logins (``auth.login_failed``, or ``auth.login`` that failed)
and denied accesses (``access.denied``, or HTTP 401/403)."""
Category = Literal["failed-login", "denied"]

PSEUDONYM_PREFIX: Final = "hmac-sha256:"
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION: Final = re.compile(r"(?:\d+[smhdw])+")
_DURATION_PART: Final = re.compile(r"(\d+)([smhdw])")
_TRACE_ID: Final = re.compile(r"[0-9a-fA-F]{32}")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)

TimeBound = datetime | timedelta
"""An absolute instant (aware) or a duration before "now"."""


def pseudonym(value: str, key: bytes) -> str:
    """``hmac-sha256:<hex>``: what the library records for ``value`` under ``key``."""
    digest = hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return PSEUDONYM_PREFIX + digest.hexdigest()


@dataclass(frozen=True)
class EventFilter:
    """Which events to select; every set field must match (AND)."""

    user: str | None = None
    """``user.id``: the raw id; with :attr:`pseudonym_key`, its pseudonym matches too."""
    tenant: str | None = None
    """``tenant.id``, pseudonymised like :attr:`user`."""
    action: str | None = None
    """``audit.action`` glob (``user.*``, ``auth.login*``)."""
    outcome: str | None = None
    """``audit.outcome``: one of :data:`OUTCOMES`."""
    resource_type: str | None = None
    """``audit.resource.type``."""
    resource_id: str | None = None
    """``audit.resource.id``."""
    route: str | None = None
    """``http.route`` (the template, ``/items/{item_id}``)."""
    client: str | None = None
    """``client.address``."""
    trace_id: str | None = None
    """The record's trace id (32 hex digits, any case)."""
    category: Category | None = None
    """One of :data:`CATEGORIES`."""
    since: TimeBound | None = None
    """Events at or after this instant."""
    until: TimeBound | None = None
    """Events before this instant."""
    pseudonym_key: bytes | None = field(default=None, repr=False, compare=False)
    """The pseudonymisation key (``OTEL_AUDIT_PSEUDONYMIZATION_KEY``), never printed."""

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, str) and not value:
                raise FilterError(f"--{_option(spec.name)}: must not be empty")
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise FilterError(
                f"--outcome: {self.outcome!r} is not one of {', '.join(OUTCOMES)}"
                + ("; denied accesses are --category denied" if self.outcome == "denied" else "")
            )
        if self.category is not None and self.category not in CATEGORIES:
            raise FilterError(
                f"--category: {self.category!r} is not one of {', '.join(CATEGORIES)}"
            )
        if self.trace_id is not None:
            if not _TRACE_ID.fullmatch(self.trace_id):
                raise FilterError(f"--trace-id: {self.trace_id!r} is not 32 hex digits")
            object.__setattr__(self, "trace_id", self.trace_id.lower())
        for name in ("since", "until"):
            bound = getattr(self, name)
            if isinstance(bound, datetime) and bound.tzinfo is None:
                raise FilterError(f"--{name}: {bound} has no time zone")
            if isinstance(bound, timedelta) and bound <= timedelta(0):
                raise FilterError(f"--{name}: the duration must be positive")
        if self.pseudonym_key is not None and not self.pseudonym_key:
            raise FilterError("the pseudonymisation key is empty")
        since, until = self.time_range(datetime.now(timezone.utc))
        if since is not None and until is not None and since >= until:
            raise FilterError("--since must be before --until")

    @classmethod
    def parse(
        cls,
        *,
        user: str | None = None,
        tenant: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
        route: str | None = None,
        client: str | None = None,
        trace_id: str | None = None,
        category: str | None = None,
        since: str | None = None,
        until: str | None = None,
        pseudonym_key: bytes | None = None,
    ) -> EventFilter:
        """A filter from text values (command line, query string); times as described above.

        Relative times stay relative: :meth:`time_range` resolves them against a given now.
        """
        return cls(
            user=user,
            tenant=tenant,
            action=action,
            outcome=outcome,
            resource_type=resource_type,
            resource_id=resource_id,
            route=route,
            client=client,
            trace_id=trace_id,
            category=category,  # type: ignore[arg-type]  # checked in __post_init__
            since=parse_time(since, "since") if since is not None else None,
            until=parse_time(until, "until") if until is not None else None,
            pseudonym_key=pseudonym_key,
        )

    def time_range(self, now: datetime) -> tuple[int | None, int | None]:
        """``(since, until)`` in Unix nanoseconds, relative bounds taken back from ``now``."""
        return _nanos(self.since, now), _nanos(self.until, now)

    def user_ids(self) -> tuple[str, ...]:
        """The ``user.id`` values that match :attr:`user` (raw, and its pseudonym with a key)."""
        return self._identities(self.user)

    def tenant_ids(self) -> tuple[str, ...]:
        """The ``tenant.id`` values that match :attr:`tenant`."""
        return self._identities(self.tenant)

    def _identities(self, value: str | None) -> tuple[str, ...]:
        if value is None:
            return ()
        if self.pseudonym_key is None or value.startswith(PSEUDONYM_PREFIX):
            return (value,)
        return (value, pseudonym(value, self.pseudonym_key))

    def with_key(self, key: bytes | None) -> EventFilter:
        """This filter with ``key`` as its pseudonymisation key."""
        return replace(self, pseudonym_key=key)

    @property
    def is_empty(self) -> bool:
        """Whether nothing is filtered (every event is selected)."""
        return all(
            getattr(self, spec.name) is None
            for spec in fields(self)
            if spec.name != "pseudonym_key"
        )


def parse_time(text: str, option: str = "time") -> TimeBound:
    """RFC 3339 text, a date (UTC midnight), or a duration such as ``24h`` (before now)."""
    text = text.strip()
    if _DURATION.fullmatch(text):
        return parse_duration(text, option)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        # Python 3.10's fromisoformat does not know "Z"; 3.11 would.
        parsed = datetime.fromisoformat(re.sub(r"[zZ]$", "+00:00", text).replace(" ", "T", 1))
    except ValueError:
        raise FilterError(
            f"--{option}: {text!r} is neither RFC 3339 (2026-11-30T08:00:00Z) "
            "nor a duration (30m, 24h, 7d)"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def parse_duration(text: str, option: str = "duration") -> timedelta:
    """``90s``, ``30m``, ``24h``, ``7d``, ``2w``, or sums such as ``1h30m``."""
    if not _DURATION.fullmatch(text.strip()):
        raise FilterError(f"--{option}: {text!r} is not a duration (30m, 24h, 7d, 1h30m)")
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(text))
    if seconds <= 0:
        raise FilterError(f"--{option}: the duration must be positive")
    return timedelta(seconds=seconds)


def format_duration(duration: timedelta) -> str:
    """A duration as LogsQL and :func:`parse_duration` write it (``1d2h``)."""
    seconds = int(duration.total_seconds())
    parts = []
    for unit in ("w", "d", "h", "m", "s"):
        count, seconds = divmod(seconds, _UNITS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def to_nanos(instant: datetime) -> int:
    """An aware datetime as Unix nanoseconds (integer arithmetic, no float rounding)."""
    delta = instant - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _nanos(bound: TimeBound | None, now: datetime) -> int | None:
    if bound is None:
        return None
    return to_nanos(now - bound if isinstance(bound, timedelta) else bound)


def _option(name: str) -> str:
    return name.replace("_", "-")
