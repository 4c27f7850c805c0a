"""Pages of a listing: :class:`Page`, opaque cursors, and picking one page from a stream.

A listing is ordered by ``(timestamp, audit.event.id)`` (:func:`~._shape.sort_key`), oldest
or newest first. A cursor is the key of the last event of a page (and the order it was made
for), so the next page starts right after it, whatever was appended meanwhile. Records with
the same key are copies of one event (at-least-once delivery): a page lists the event once,
while ``total`` counts the records as stored.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ..archive import ArchivedEvent
from ._errors import CursorError, FilterError
from ._shape import SortKey, sort_key

_CURSOR_VERSION = 1


@dataclass(frozen=True)
class Page:
    """One page of a listing."""

    events: list[ArchivedEvent]
    """At most ``limit`` events, in the listing's order."""
    total: int
    """Every record the filter selects (all pages together; copies counted)."""
    next_cursor: str | None
    """Pass it back for the next page; None on the last page."""


def check_limit(limit: int) -> None:
    """A page holds at least one event."""
    if limit < 1:
        raise FilterError(f"limit must be at least 1, got {limit}")


def encode_cursor(key: SortKey, newest_first: bool) -> str:
    """The opaque cursor for "after ``key``"."""
    payload = json.dumps([_CURSOR_VERSION, key[0], key[1], newest_first], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, newest_first: bool) -> SortKey:
    """The key a cursor stands for; :class:`CursorError` when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, nanos, event_id, order = json.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        raise CursorError(f"not a cursor of this API: {cursor[:40]!r}") from None
    if version != _CURSOR_VERSION or not isinstance(nanos, int) or not isinstance(event_id, str):
        raise CursorError(f"not a cursor of this API: {cursor[:40]!r}")
    if order is not newest_first:
        raise CursorError("the cursor was made for the other order (newest_first)")
    return (nanos, event_id)


def after(key: SortKey, cursor: SortKey | None, newest_first: bool) -> bool:
    """Whether ``key`` comes after ``cursor`` in the listing's order."""
    if cursor is None:
        return True
    return key < cursor if newest_first else key > cursor


def unique_sorted(events: Iterable[ArchivedEvent], newest_first: bool) -> list[ArchivedEvent]:
    """``events`` in listing order, one per key."""
    ordered = sorted(events, key=sort_key, reverse=newest_first)
    unique: list[ArchivedEvent] = []
    for event in ordered:
        if not unique or sort_key(unique[-1]) != sort_key(event):
            unique.append(event)
    return unique


def make_page(
    unique: list[ArchivedEvent], total: int, limit: int, newest_first: bool, more: bool
) -> Page:
    """The page of the first ``limit`` of ``unique``; ``more``: events exist beyond them."""
    events = unique[:limit]
    has_next = (len(unique) > limit or more) and bool(events)
    cursor = encode_cursor(sort_key(events[-1]), newest_first) if has_next else None
    return Page(events=events, total=total, next_cursor=cursor)


def page_of_stream(
    stream: Callable[[], Iterator[ArchivedEvent]],
    *,
    limit: int,
    cursor: str | None,
    newest_first: bool,
) -> Page:
    """One page of the selected events ``stream()`` yields, in one pass (two if copies of
    events crowd the page), holding at most about ``2 * limit`` events in memory."""
    check_limit(limit)
    start = decode_cursor(cursor, newest_first) if cursor is not None else None
    keep = limit + 1
    while True:
        total = 0

        def beyond() -> Iterator[ArchivedEvent]:
            nonlocal total
            for event in stream():
                total += 1
                if after(sort_key(event), start, newest_first):
                    yield event

        pick = heapq.nlargest if newest_first else heapq.nsmallest
        best = pick(keep, beyond(), key=sort_key)
        unique = unique_sorted(best, newest_first)
        if len(unique) > limit or len(best) < keep:
            return make_page(unique, total, limit, newest_first, more=False)
        keep *= 2  # copies of one event took places: look further
