"""An :class:`EventFilter` as a VictoriaLogs LogsQL query (:func:`to_logsql`).

The translation selects exactly what the file matcher selects, given how VictoriaLogs stores
an OTLP log record (v1.43): each attribute is a field of its own name, the body is ``_msg``,
the event name ``event_name``, the trace id ``trace_id``, the time ``_time``. Values use
exact filters (``field:="value"``, ``field:in(...)``), globs the exact-prefix filter
(``="user."*``) or an anchored RE2 regexp; every value is a double-quoted LogsQL string
literal (Go syntax: backslash escapes). Relative times stay relative (``_time:>=now-24h``),
so a printed query or UI link keeps meaning "the last 24 hours".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from ._filter import EventFilter, TimeBound, format_duration, to_nanos
from ._match import (
    DENIED_ACTIONS,
    DENIED_STATUSES,
    FAILED_LOGIN_ACTIONS,
    LOGIN_ACTION,
    glob_to_regex,
)
from ._shape import (
    ACTION,
    CLIENT,
    OUTCOME,
    RESOURCE_ID,
    RESOURCE_TYPE,
    ROUTE,
    STATUS,
    TENANT_ID,
    USER_ID,
    format_timestamp,
)

AUDIT_EVENTS: Final = 'event_name:="audit."*'
"""Every audit event (VictoriaLogs also holds the collector's other logs)."""
_PLAIN_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_SHORT_ESCAPES: Final = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def quote(value: str) -> str:
    """``value`` as a double-quoted LogsQL string literal (Go string-literal escapes)."""
    out = ['"']
    for char in value:
        escaped = _SHORT_ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif char < " " or char == "\x7f" or "\ud800" <= char <= "\udfff":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def field_name(name: str) -> str:
    """A field name, quoted unless it is a plain dotted identifier."""
    return name if _PLAIN_NAME.fullmatch(name) else quote(name)


def exact(name: str, values: Sequence[str]) -> str:
    """``name`` equal to one of ``values``."""
    if len(values) == 1:
        return f"{field_name(name)}:={quote(values[0])}"
    return f"{field_name(name)}:in({', '.join(quote(v) for v in values)})"


def glob(name: str, pattern: str) -> str | None:
    """``name`` matching a glob (None: the glob matches everything)."""
    if not pattern.strip("*"):
        return None
    wild = [i for i, char in enumerate(pattern) if char in "*?"]
    if not wild:
        return exact(name, [pattern])
    if wild == [len(pattern) - 1] and pattern.endswith("*"):
        return f"{field_name(name)}:={quote(pattern[:-1])}*"
    return f"{field_name(name)}:~{quote(glob_to_regex(pattern))}"


def failed_logins() -> str:
    """Failed logins (``otel-audit stats``, ``--category failed-login``)."""
    failed = exact(ACTION, FAILED_LOGIN_ACTIONS)
    return f"({failed} OR ({exact(ACTION, [LOGIN_ACTION])} AND {exact(OUTCOME, ['failure'])}))"


def denied() -> str:
    """Denied accesses (``--category denied``)."""
    return f"({exact(ACTION, DENIED_ACTIONS)} OR {exact(STATUS, DENIED_STATUSES)})"


def time_filter(since: TimeBound | None, until: TimeBound | None) -> str | None:
    """``[since, until)`` on ``_time``, relative bounds as ``now-<duration>``."""
    if since is None and until is None:
        return None
    if until is None:
        return f"_time:>={_instant(since)}"
    if since is None:
        return f"_time:<{_instant(until)}"
    return f"_time:[{_instant(since)}, {_instant(until)})"


def to_logsql(flt: EventFilter) -> str:
    """The LogsQL filter selecting what ``flt`` selects (no pipes: append your own)."""
    parts = [AUDIT_EVENTS]
    if flt.user is not None:
        parts.append(exact(USER_ID, flt.user_ids()))
    if flt.tenant is not None:
        parts.append(exact(TENANT_ID, flt.tenant_ids()))
    if flt.action is not None and (action := glob(ACTION, flt.action)) is not None:
        parts.append(action)
    for name, value in (
        (OUTCOME, flt.outcome),
        (RESOURCE_TYPE, flt.resource_type),
        (RESOURCE_ID, flt.resource_id),
        (ROUTE, flt.route),
        (CLIENT, flt.client),
        ("trace_id", flt.trace_id),
    ):
        if value is not None:
            parts.append(exact(name, [value]))
    if flt.category == "failed-login":
        parts.append(failed_logins())
    elif flt.category == "denied":
        parts.append(denied())
    if (times := time_filter(flt.since, flt.until)) is not None:
        parts.append(times)
    return " AND ".join(parts)


def _instant(bound: TimeBound | None) -> str:
    if isinstance(bound, datetime):
        return format_timestamp(to_nanos(bound))
    return f"now-{format_duration(bound or timedelta(0))}"
