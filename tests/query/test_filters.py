"""Filters, pages, look-ups and counts over the 100,000-event trail, against an oracle."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from otel_audit.archive import ArchivedEvent
from otel_audit.query import (
    CursorError,
    EventFilter,
    FileSource,
    compile_filter,
    compute_stats,
    get_event,
    iter_events,
    page_events,
    sort_key,
)
from otel_audit.query._page import page_of_stream
from otel_audit.query._stats import StatsTally, format_bucket

from .cases import CASES, Case, now_of
from .conftest import Trail, keys, oracle


def selected(trail: Trail, flt: EventFilter) -> list[ArchivedEvent]:
    """What a FileSource yields for ``flt``: lines its prefilter keeps, events it matches."""
    matcher = compile_filter(flt, now_of(trail.now_ns))
    return [
        event
        for raw, events in trail.lines
        if matcher.keep_line(raw)
        for event in events
        if matcher(event)
    ]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_filter_selects_what_the_oracle_selects(trail: Trail, case: Case) -> None:
    """Prefilter plus matcher select exactly the records the oracle picks, copies included;
    every line the prefilter rejects holds no selected record."""
    args = case.oracle_args(trail.now_ns)
    expected = [r for r in trail.records if oracle(r, **args)]
    flt = case.event_filter(trail.now_ns)
    assert keys(selected(trail, flt)) == keys(expected)
    if case.id != "action exact, no match":
        assert expected, "the case must select something to mean anything"
    matcher = compile_filter(flt, now_of(trail.now_ns))
    rejected = [events for raw, events in trail.lines if not matcher.keep_line(raw)]
    assert not keys(e for events in rejected for e in events).keys() & keys(expected).keys()
    if case.fields.get("user") == "user-7":
        assert len(rejected) > len(trail.lines) / 2, "a selective filter skips most lines"


def test_trace_id_matches_in_any_case(trail: Trail) -> None:
    """--trace-id takes upper- or lower-case hex and finds the record(s) with that id."""
    record = next(r for r in trail.records[1000:] if r.trace_id)
    flt = EventFilter(trace_id=record.trace_id.upper())
    expected = [r for r in trail.records if r.trace_id == record.trace_id]
    assert keys(selected(trail, flt)) == keys(expected)


@pytest.mark.parametrize(
    "fields",
    [{"user": "user-7"}, {"client": "10.1.2.3", "since": timedelta(days=20)}],
    ids=["user", "client-since"],
)
def test_file_source_reads_every_layout(trail: Trail, fields: dict[str, Any]) -> None:
    """FileSource over the three folders (rotated, .gz, spool) gives what the oracle gives."""
    now = now_of(trail.now_ns)
    flt = EventFilter(**fields)
    errors: list[object] = []
    got = list(FileSource(trail.paths, on_error=errors.append).events(flt, now=now))
    assert errors == []
    assert keys(got) == keys(selected(trail, flt))
    assert any(".gz:" in e.source for e in got) and any("seg-" in e.source for e in got)


@pytest.mark.parametrize("newest_first", [False, True], ids=["oldest-first", "newest-first"])
def test_pages_walk_every_event_once_in_order(trail: Trail, newest_first: bool) -> None:
    """Following next_cursor lists each selected event once, by (time, id); total counts
    every record (copies too). The page logic FileSource runs, on the selected events."""
    flt = EventFilter(action="auth.login*", outcome="failure")
    events = selected(trail, flt)
    expected = sorted(set(keys(events)), reverse=newest_first)
    assert len(expected) < len(events), "the selection should hold copies of some events"
    listed: list[tuple[int, str]] = []
    cursor = None
    while True:
        page = page_of_stream(
            lambda: iter(events), limit=333, cursor=cursor, newest_first=newest_first
        )
        assert page.total == len(events)
        assert len(page.events) <= 333
        listed += [sort_key(e) for e in page.events]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert listed == expected


def test_file_pages_follow_the_cursor(trail: Trail) -> None:
    """page_events over the folders: two pages that continue each other, then the end."""
    flt = EventFilter(user="user-7")
    ordered = sorted(set(keys(selected(trail, flt))))
    first = page_events(trail.paths, flt, limit=len(ordered) - 3)
    second = page_events(trail.paths, flt, limit=50, cursor=first.next_cursor)
    assert [sort_key(e) for e in first.events + second.events] == ordered
    assert second.next_cursor is None


def test_a_cursor_for_the_other_order_or_not_ours_is_refused(trail: Trail) -> None:
    """Cursors are checked, not trusted."""
    flt = EventFilter(user="user-7")
    page = page_events(trail.paths, flt, limit=2)
    assert page.next_cursor is not None
    with pytest.raises(CursorError, match="other order"):
        page_events(trail.paths, flt, limit=2, cursor=page.next_cursor, newest_first=True)
    with pytest.raises(CursorError, match="not a cursor"):
        page_events(trail.paths, flt, limit=2, cursor="bm90IGEgY3Vyc29y")


def test_get_event_finds_one_by_id(trail: Trail) -> None:
    """get_event returns the record with that audit.event.id, None for an unknown id."""
    record = trail.records[54321]
    event = get_event(trail.paths, record.attributes["audit.event.id"])
    assert event is not None
    assert (event.timestamp_ns, event.attributes) == (record.timestamp_ns, record.attributes)
    assert get_event(trail.paths, "0000-no-such-id") is None


def expected_stats(trail: Trail, since_ns: int, bucket_ns: int) -> dict[str, Any]:
    """The counts, straight from what was written."""
    chosen = [r for r in trail.records if r.timestamp_ns >= since_ns]

    def count(key: str, records: list[Any]) -> Counter[str]:
        return Counter(str(r.attributes.get(key, "")) for r in records)

    failed = [r for r in chosen if oracle(r, category="failed-login")]
    denied = [r for r in chosen if oracle(r, category="denied")]
    return {
        "total": len(chosen),
        "by_action": count("audit.action", chosen),
        "by_outcome": count("audit.outcome", chosen),
        "by_actor": count("user.id", chosen),
        "by_tenant": count("tenant.id", chosen),
        "over_time": Counter(
            format_bucket(r.timestamp_ns - r.timestamp_ns % bucket_ns) for r in chosen
        ),
        "failed_logins_by_client": count("client.address", failed),
        "failed_logins_by_user": count("user.id", failed),
        "denied_by_user": count("user.id", denied),
        "denied_by_route": count("http.route", denied),
    }


def test_stats_count_what_was_written(trail: Trail) -> None:
    """Every dimension of the statistics equals the oracle's counts."""
    now = now_of(trail.now_ns)
    since = timedelta(days=10)
    flt = EventFilter(since=since)
    tally = StatsTally(timedelta(hours=6)).add_all(selected(trail, flt)).result()
    since_ns = trail.now_ns // 1000 * 1000 - 10 * 86_400 * 10**9
    expected = expected_stats(trail, since_ns, 6 * 3600 * 10**9)
    got = tally.to_dict()
    for name, value in expected.items():
        assert (dict(got[name]) if isinstance(value, Counter) else got[name]) == value, name
    assert list(got["over_time"]) == sorted(got["over_time"])
    assert got["failed_logins"] == sum(expected["failed_logins_by_client"].values())
    assert got["denied"] == sum(expected["denied_by_user"].values())
    counts = list(got["by_actor"].values())
    assert counts == sorted(counts, reverse=True)
    # The public entry point on the files gives the same figures.
    narrow = EventFilter(tenant="tenant-4", since=since)
    assert compute_stats(trail.paths, narrow, bucket=timedelta(hours=6), now=now) == (
        StatsTally(timedelta(hours=6)).add_all(selected(trail, narrow)).result()
    )


def test_iter_events_streams_without_reading_everything_first(trail: Trail) -> None:
    """The first event comes out before the source is exhausted (a generator, not a list)."""
    events = iter_events(trail.paths, EventFilter())
    first = next(events)
    assert first.event_name.startswith("audit.")
    events.close()  # type: ignore[attr-defined]
