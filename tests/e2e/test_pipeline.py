"""The whole path, app -> otelcol-audit -> archive, VictoriaLogs and the traces backend.

One stack and one realistic session serve the module: several users and tenants, success,
refusal, a crash, a validation error, an unknown route, a non-audit log and a WebSocket.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from examples.stack import BIN
from otel_audit.archive import ArchivedEvent

from .harness import APP_SERVICE, AuditStack, poll
from .traffic import (
    Traffic,
    check_archive,
    check_note_only_in_victorialogs,
    check_span_events,
    check_victorialogs,
    drive_session,
    event_id,
    wait_for_archive,
)

pytestmark = pytest.mark.e2e

NOTE = f"app note {uuid.uuid4().hex}"
ARCHIVE_PATIENCE = 15.0
BACKEND_PATIENCE = 30.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditStack]:
    """VictoriaLogs, trace sink, otelcol-audit and the e2e app, for this module."""
    audit_stack = AuditStack(tmp_path_factory.mktemp("pipeline"))
    try:
        audit_stack.start_all()
        yield audit_stack
    finally:
        audit_stack.stop()


@pytest.fixture(scope="module")
def session(stack: AuditStack) -> Traffic:
    """The session, played once against the module's stack."""
    traffic = Traffic(stack.app_url)
    drive_session(traffic, NOTE)
    return traffic


@pytest.fixture(scope="module")
def archived(stack: AuditStack, session: Traffic) -> list[ArchivedEvent]:
    """The session's events, once the archive holds all of them."""
    return wait_for_archive(stack, session, ARCHIVE_PATIENCE)


def test_every_audit_event_reaches_archive_and_victorialogs(
    stack: AuditStack, session: Traffic, archived: list[ArchivedEvent]
) -> None:
    """Each event of the session is archived exactly once and found intact in VictoriaLogs."""
    check_archive(archived, session)
    check_victorialogs(stack, archived, BACKEND_PATIENCE)
    routes = {e.attributes.get("http.route") for e in archived}
    assert {"/items/{item_id}", "/users/{user_id}/role", "/ws/chat"} <= routes


def test_span_events_carry_audit_events(stack: AuditStack, archived: list[ArchivedEvent]) -> None:
    """Every archived event is also a span event on its server span, with the same event id."""
    check_span_events(stack, archived, BACKEND_PATIENCE)


def test_non_audit_logs_stay_out_of_archive(
    stack: AuditStack, archived: list[ArchivedEvent]
) -> None:
    """The app's own ``app.note`` record reaches VictoriaLogs and never the archive."""
    check_note_only_in_victorialogs(stack, NOTE, BACKEND_PATIENCE)


# --- the real traces backend -----------------------------------------------------------------


def jaeger_audit_events(traces: list[dict[str, Any]]) -> dict[str, str]:
    """``audit.event.id`` -> spanID of the span whose log (span event) carries it."""
    found: dict[str, str] = {}
    for trace in traces:
        for span in trace.get("spans", ()):
            for log in span.get("logs", ()):
                fields = {f.get("key"): f.get("value") for f in log.get("fields", ())}
                if isinstance(fields.get("audit.event.id"), str):
                    found[fields["audit.event.id"]] = str(span.get("spanID", "")).lower()
    return found


@pytest.mark.skipif(
    not (BIN / "victoria-traces").exists(),
    reason="VictoriaTraces is not installable here: the Go module proxy answers 403 for "
    "github.com/VictoriaMetrics/VictoriaTraces",
)
def test_span_events_reach_victoriatraces(tmp_path: Path) -> None:
    """VictoriaTraces' Jaeger API shows the audit span events on the archived events' spans."""
    audit_stack = AuditStack(tmp_path / "stack", victoria_traces=True)
    try:
        audit_stack.start_all()
        traffic = Traffic(audit_stack.app_url)
        drive_session(traffic, NOTE)
        archived = wait_for_archive(audit_stack, traffic, ARCHIVE_PATIENCE)
        expected = {event_id(e): e.span_id for e in archived}

        def all_found() -> dict[str, str] | None:
            found = jaeger_audit_events(audit_stack.stack.jaeger_traces(APP_SERVICE))
            return found if expected.keys() <= found.keys() else None

        found = poll(all_found, timeout=BACKEND_PATIENCE, what="audit span events in Jaeger")
        assert {i: found[i] for i in expected} == expected
    finally:
        audit_stack.stop()
