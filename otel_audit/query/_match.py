"""An :class:`EventFilter` compiled to a predicate over events, and a prefilter over raw lines.

:func:`compile_filter` turns a filter into one :class:`Matcher`: ``matcher(event)`` says
whether an event is selected, and ``matcher.keep_line(raw)`` whether an archive line (one
OTLP/JSON request) can hold a selected event at all, so lines that cannot are not decoded.

The line prefilter is exact, never lossy: it looks for each wanted value's JSON text in the
line. A string's JSON text is unique as long as no ``\\u`` or ``\\/`` escape is used (every
other escape stands for one character only), so lines holding either are always decoded.
Values that could be written as numbers or booleans are looked for without quotes. With a
``since`` bound, a line is kept only if one of its ``timeUnixNano``/``observedTimeUnixNano``
values falls in the time window (a record's time is one of the two).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from json.encoder import encode_basestring
from typing import Final

from ..archive import ArchivedEvent
from ._filter import EventFilter
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
    text,
)

AUDIT_PREFIX: Final = "audit."
"""Event names of audit events start with it (contract)."""
FAILED_LOGIN_ACTIONS: Final = ("auth.login_failed",)
LOGIN_ACTION: Final = "auth.login"
DENIED_ACTIONS: Final = ("access.denied",)
DENIED_STATUSES: Final = ("401", "403")

Check = Callable[[ArchivedEvent], bool]
_LINE_HEAD: Final = b'{"resourceLogs":['
_LINE_TAIL: Final = b"}\n"
_TIMES: Final = re.compile(rb'"(?:timeUnixNano|observedTimeUnixNano)":"?(\d+)')
_BARE: Final = re.compile(r"-?[0-9.eE+-]+|true|false|NaN|-?Infinity")


def glob_to_regex(glob: str) -> str:
    """A glob (``*`` any run, ``?`` one character, the rest literal) as an anchored regex.

    The same text is valid Python ``re`` and RE2 (VictoriaLogs) syntax.
    """
    parts = ["(?s)^"]
    for char in glob:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        elif char.isascii() and not char.isalnum() and char.isprintable() and char != " ":
            parts.append("\\" + char)  # ASCII punctuation: a literal in both syntaxes
        else:
            parts.append(char)
    parts.append("$")
    return "".join(parts)


def is_failed_login(event: ArchivedEvent) -> bool:
    """``auth.login_failed``, or an ``auth.login`` whose outcome is failure."""
    action = event.attributes.get(ACTION)
    if action in FAILED_LOGIN_ACTIONS:
        return True
    return action == LOGIN_ACTION and event.attributes.get(OUTCOME) == "failure"


def is_denied(event: ArchivedEvent) -> bool:
    """``access.denied``, or a request answered 401 or 403."""
    if event.attributes.get(ACTION) in DENIED_ACTIONS:
        return True
    status = event.attributes.get(STATUS)
    return status is not None and text(status) in DENIED_STATUSES


class Matcher:
    """A compiled filter: call it on an event; :meth:`keep_line` screens raw lines."""

    def __init__(
        self,
        checks: Sequence[Check],
        needles: Sequence[tuple[bytes, ...]],
        window: tuple[int, int] | None = None,
    ) -> None:
        self._checks = tuple(checks)
        self._needles = tuple(needles)
        self._window = window

    def __call__(self, event: ArchivedEvent) -> bool:
        for check in self._checks:  # noqa: SIM110 - a plain loop is faster than all(...) here
            if not check(event):
                return False
        return True

    def keep_line(self, raw: bytes) -> bool:
        """False only when no record in ``raw`` (one archive line) can match.

        A line not shaped as the writers write them (garbage, a torn write) is kept, so that
        it is decoded and reported rather than skipped unseen.
        """
        if not (raw.startswith(_LINE_HEAD) and raw.endswith(_LINE_TAIL)):
            return True
        for alternatives in self._needles:
            for needle in alternatives:
                if needle in raw:
                    break
            else:
                return _escaped(raw)  # a wanted value is not there as plain text
        if self._window is not None and not self._in_window(raw):
            return _escaped(raw)
        return True

    def _in_window(self, raw: bytes) -> bool:
        """Whether a record's time or observed time in ``raw`` falls in the window: a
        record's time is one of the two (observed when the time is unset)."""
        low, high = self._window or (0, 0)
        return any(low <= int(found[1]) < high for found in _TIMES.finditer(raw))


def _escaped(raw: bytes) -> bool:
    """Whether ``raw`` uses the escapes that could hide a value's plain text.
    (One byte is found much faster than two, and most lines have no backslash at all.)"""
    return b"\\" in raw and (b"\\u" in raw or b"\\/" in raw)


def compile_filter(flt: EventFilter, now: datetime | None = None) -> Matcher:
    """The matcher of ``flt``; relative times are taken back from ``now`` (default: now)."""
    # Only audit events: VictoriaLogs holds other logs too, and both sources answer alike.
    checks: list[Check] = [lambda event: event.event_name.startswith(AUDIT_PREFIX)]
    needles: list[tuple[bytes, ...]] = [(b'"' + AUDIT_PREFIX.encode(),)]

    def exact(key: str, values: Sequence[str]) -> None:
        if not values:
            return
        allowed = frozenset(values)

        def check(event: ArchivedEvent) -> bool:
            value = event.attributes.get(key)
            if value is None:
                return False
            return (value if value.__class__ is str else text(value)) in allowed

        checks.append(check)
        needles.append(tuple(_needle(value) for value in values))

    exact(USER_ID, flt.user_ids())
    exact(TENANT_ID, flt.tenant_ids())
    for key, value in (
        (OUTCOME, flt.outcome),
        (RESOURCE_TYPE, flt.resource_type),
        (RESOURCE_ID, flt.resource_id),
        (ROUTE, flt.route),
        (CLIENT, flt.client),
    ):
        exact(key, () if value is None else (value,))
    if flt.action is not None:
        _action(flt.action, checks, needles)
    if flt.trace_id is not None:
        trace_id = flt.trace_id
        checks.append(lambda event: event.trace_id == trace_id)
    if flt.category == "failed-login":
        checks.append(is_failed_login)
        needles.append((_needle(LOGIN_ACTION, quoted=False),))
    elif flt.category == "denied":
        checks.append(is_denied)
        needles.append(tuple(_needle(v, quoted=False) for v in (*DENIED_ACTIONS, *DENIED_STATUSES)))
    since, until = flt.time_range(now or datetime.now(timezone.utc))
    window = None
    if since is not None or until is not None:
        checks.append(_time_check(since, until))
        if since is not None and since > 0:  # a record without any time (0) is out anyway
            window = (since, until if until is not None else 2**64)
    return Matcher(checks, needles, window)


def _action(glob: str, checks: list[Check], needles: list[tuple[bytes, ...]]) -> None:
    if not glob.strip("*"):  # matches anything, a missing action included
        return
    if "*" not in glob and "?" not in glob:
        checks.append(lambda event: text(event.attributes.get(ACTION)) == glob)
        needles.append((_needle(glob),))
        return
    pattern = re.compile(glob_to_regex(glob))
    checks.append(lambda event: pattern.match(text(event.attributes.get(ACTION))) is not None)
    literal = max(re.split(r"[*?]", glob), key=len)
    if literal:
        needles.append((_needle(literal, quoted=False),))


def _time_check(since: int | None, until: int | None) -> Check:
    low = since if since is not None else -(2**63)
    high = until if until is not None else 2**64

    def check(event: ArchivedEvent) -> bool:
        nanos = event.timestamp_ns or event.observed_timestamp_ns
        return low <= nanos < high

    return check


def _needle(value: str, *, quoted: bool = True) -> bytes:
    encoded = encode_basestring(value)  # the archive writers' own escaping, with quotes
    if not quoted or _BARE.fullmatch(value):  # could be an intValue / doubleValue / boolValue
        encoded = encoded[1:-1]
    return encoded.encode("utf-8", "surrogatepass")
