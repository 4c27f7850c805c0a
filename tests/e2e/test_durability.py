"""The archive survives a collector restart and a dead backend; the backend catches up."""

from __future__ import annotations

from collections import Counter

import pytest

from .harness import AuditStack
from .traffic import Traffic, event_id, wait_for_archive, wait_for_logs

pytestmark = pytest.mark.e2e

# A dead backend must not hold the archive up: events reach it within this, not a timeout.
ARCHIVE_PATIENCE = 10.0
# The queue retries with backoff (1 s doubling towards 30 s): allow a couple of rounds.
QUEUE_PATIENCE = 60.0


def some_events(traffic: Traffic, user: str) -> None:
    """A read and a role change by ``user``: two request events and a business event."""
    assert traffic.request("GET", "/items/1", user=user, tenant="acme").status_code == 200
    changed = traffic.request(
        "PUT", "/users/u-1/role", params={"role": "viewer"}, user=user, tenant="acme"
    )
    assert changed.status_code == 200


def test_restarting_the_collector_keeps_the_archive(audit_stack: AuditStack) -> None:
    """Events from before and after a collector restart are all archived, each exactly once."""
    audit_stack.start("app", audit_stack.app())
    before = Traffic(audit_stack.app_url)
    some_events(before, "alice")
    wait_for_archive(audit_stack, before, ARCHIVE_PATIENCE)
    archived_before = audit_stack.archive_bytes()

    audit_stack.restart("otelcol-audit", audit_stack.collector)
    after = Traffic(audit_stack.app_url)
    some_events(after, "bob")
    wait_for_archive(audit_stack, after, ARCHIVE_PATIENCE)

    assert audit_stack.archive_bytes().startswith(archived_before), "archive was rewritten"
    events = audit_stack.archive_events()
    counts = Counter(event_id(e) for e in events)
    assert [i for i, n in counts.items() if n != 1] == []
    assert len(before.events_in(events)) == before.expected_event_count()
    assert len(after.events_in(events)) == after.expected_event_count()
    assert len(events) == before.expected_event_count() + after.expected_event_count()


def test_backend_down_does_not_stop_the_archive(audit_stack: AuditStack) -> None:
    """With VictoriaLogs dead, events are archived at once; its persistent queue delivers later."""
    audit_stack.start("app", audit_stack.app())
    audit_stack.services["victoria-logs"].kill()

    traffic = Traffic(audit_stack.app_url)
    some_events(traffic, "carol")
    archived = wait_for_archive(audit_stack, traffic, ARCHIVE_PATIENCE)
    assert len(archived) == traffic.expected_event_count()

    # Same port, same data folder: the collector's queued exports find it again.
    audit_stack.start("victoria-logs", audit_stack.victoria_logs())
    logged = wait_for_logs(audit_stack, {event_id(e) for e in archived}, QUEUE_PATIENCE)
    assert {i: len(logged[i]) for i in map(event_id, archived)} == dict.fromkeys(
        map(event_id, archived), 1
    )
