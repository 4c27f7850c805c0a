"""The whole path, app -> otelcol-audit -> archive, VictoriaLogs and Jaeger (the traces backend).

One stack and one realistic session serve the module: several users and tenants, success,
refusal, a crash, a validation error, an unknown route, a non-audit log and a WebSocket.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from otel_audit.archive import ArchivedEvent

from .harness import AuditStack, poll
from .traffic import (
    SPAN_EVENT_KEYS,
    Traffic,
    check_archive,
    check_note_only_in_victorialogs,
    check_span_events,
    check_victorialogs,
    drive_session,
    wait_for_archive,
)

pytestmark = pytest.mark.e2e

NOTE = f"app note {uuid.uuid4().hex}"
ARCHIVE_PATIENCE = 15.0
BACKEND_PATIENCE = 30.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditStack]:
    """VictoriaLogs, Jaeger, otelcol-audit and the e2e app, for this module."""
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


def test_jaeger_shows_each_audit_event_on_its_server_span(
    stack: AuditStack, archived: list[ArchivedEvent]
) -> None:
    """Through Jaeger's API, each archived event is a span event on its own server span, with
    the record's event name, id, action, outcome, user and tenant."""
    check_span_events(stack, archived, BACKEND_PATIENCE)


def test_jaeger_has_each_audited_request_trace(
    stack: AuditStack, session: Traffic, archived: list[ArchivedEvent]
) -> None:
    """Each audited HTTP request's trace, found by the id its record names, shows the request
    event in Jaeger's web UI API too (``/api/traces/{id}``, the span event as a span log)."""
    requests = {
        str(e.attributes["audit.request.id"]): e
        for e in archived
        if e.event_name == "audit.http.request"
    }
    assert requests.keys() == {sent.request_id for sent in session.sent}
    for event in requests.values():
        poll(
            functools.partial(request_span_logs, stack, event),
            timeout=BACKEND_PATIENCE,
            what=f"the request event of trace {event.trace_id} in Jaeger's v1 API",
        )


def test_non_audit_logs_stay_out_of_archive(
    stack: AuditStack, archived: list[ArchivedEvent]
) -> None:
    """The app's own ``app.note`` record reaches VictoriaLogs and never the archive."""
    check_note_only_in_victorialogs(stack, NOTE, BACKEND_PATIENCE)


# --- Jaeger's v1 answer (what its web UI reads) -----------------------------------------------


def span_logs(answer: dict[str, Any], span_id: str) -> list[dict[str, object]]:
    """The logs (span events) of span ``span_id`` in a v1 ``/api/traces/{id}`` answer, each as
    ``{field key: value}``; the event name is the ``event`` field."""
    return [
        {field["key"]: field["value"] for field in log.get("fields", ())}
        for trace in answer.get("data") or ()
        for span in trace.get("spans", ())
        if str(span.get("spanID", "")).lower() == span_id
        for log in span.get("logs", ())
    ]


def request_span_logs(stack: AuditStack, event: ArchivedEvent) -> list[dict[str, object]]:
    """The logs of ``event``'s span in Jaeger's v1 answer that are ``event``: its name and
    the minimal span event's attributes, as archived."""
    wanted: dict[str, object] = {"event": event.event_name}
    wanted |= {k: event.attributes[k] for k in SPAN_EVENT_KEYS if k in event.attributes}
    raw = stack.stack.jaeger_trace_raw(event.trace_id, api="v1")
    logs = span_logs(json.loads(raw), event.span_id) if raw else []
    return [log for log in logs if wanted.items() <= log.items()]
