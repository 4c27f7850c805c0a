"""Traffic for the e2e app with a ledger of what was sent, and the checks every path shares.

:class:`Traffic` gives each request a fresh ``X-Request-ID`` and keeps the event ids the app
returned, so a test knows which events must arrive. The ``check_*`` functions are the
assertions the single-collector and the agent/gateway tests both make.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.sync.client import connect as websocket_connect

from otel_audit.archive import ArchivedEvent

from .harness import (
    APP_SERVICE,
    SPAN_KIND_SERVER,
    AuditStack,
    SpanEvent,
    audit_span_events,
    poll,
)

# --- sending -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One HTTP request the test sent, and what the app answered."""

    request_id: str
    method: str
    path: str
    status: int
    user: str | None
    tenant: str | None
    event_ids: tuple[str, ...]
    """Ids of the business events ``record()`` returned in the response."""


@dataclass
class Traffic:
    """Sends requests to the e2e app, each with a fresh X-Request-ID, and keeps a ledger."""

    base_url: str
    sent: list[Sent] = field(default_factory=list)
    websocket_request_ids: list[str] = field(default_factory=list)

    def request(
        self,
        method: str,
        path: str,
        *,
        user: str | None = None,
        tenant: str | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        request_id = f"e2e-{uuid.uuid4().hex}"
        all_headers = {"x-request-id": request_id, **(headers or {})}
        if user is not None:
            all_headers["x-user"] = user
        if tenant is not None:
            all_headers["x-tenant"] = tenant
        # A new connection per request: uvicorn closes the connection after an unhandled
        # exception, and a reused one would then fail the next request.
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            response = client.request(method, path, headers=all_headers, **kwargs)
        # Every response echoes the id, including the 500 for a crash (sent by Starlette's
        # error middleware, outside the audit middleware).
        assert response.headers.get("x-request-id") == request_id, response.headers
        self.sent.append(
            Sent(request_id, method, path, response.status_code, user, tenant, _ids(response))
        )
        return response

    def websocket(self, messages: Sequence[str], *, user: str, tenant: str) -> None:
        """A WebSocket session on /ws/chat that echoes ``messages``."""
        request_id = f"e2e-ws-{uuid.uuid4().hex}"
        url = self.base_url.replace("http://", "ws://", 1) + "/ws/chat"
        headers = {"x-request-id": request_id, "x-user": user, "x-tenant": tenant}
        with websocket_connect(url, additional_headers=headers, open_timeout=10) as socket:
            for message in messages:
                socket.send(message)
                assert socket.recv(timeout=10) == message
        self.websocket_request_ids.append(request_id)

    @property
    def request_ids(self) -> set[str]:
        return {sent.request_id for sent in self.sent} | set(self.websocket_request_ids)

    @property
    def business_event_ids(self) -> set[str]:
        return {event_id for sent in self.sent for event_id in sent.event_ids}

    def events_in(self, events: Sequence[ArchivedEvent]) -> list[ArchivedEvent]:
        """The events among ``events`` that this traffic caused (by request id)."""
        ids = self.request_ids
        return [e for e in events if e.attributes.get("audit.request.id") in ids]

    def expected_event_count(self) -> int:
        """One request event per HTTP request, its business events, two per WebSocket."""
        return len(self.sent) + len(self.business_event_ids) + 2 * len(self.websocket_request_ids)


def _ids(response: httpx.Response) -> tuple[str, ...]:
    try:
        body = response.json()
    except ValueError:
        return ()
    if isinstance(body, dict) and isinstance(body.get("detail"), dict):
        body = body["detail"]
    ids = body.get("event_ids", ()) if isinstance(body, dict) else ()
    return tuple(str(i) for i in ids if i)


def wait_for_archive(stack: AuditStack, traffic: Traffic, timeout: float) -> list[ArchivedEvent]:
    """Poll until the archive holds at least every event ``traffic`` must have caused."""
    expected = traffic.expected_event_count()

    def arrived() -> list[ArchivedEvent] | None:
        events = traffic.events_in(stack.archive_events())
        return events if len(events) >= expected else None

    return poll(arrived, timeout=timeout, what=f"{expected} events in the archive")


def wait_for_logs(
    stack: AuditStack, event_ids: set[str], timeout: float
) -> dict[str, list[dict[str, Any]]]:
    """Poll until VictoriaLogs returns every id in ``event_ids``; entries grouped by id."""

    def arrived() -> dict[str, list[dict[str, Any]]] | None:
        by_id: dict[str, list[dict[str, Any]]] = {}
        for entry in stack.logs():
            by_id.setdefault(entry.get("audit.event.id", ""), []).append(entry)
        return by_id if event_ids <= by_id.keys() else None

    return poll(arrived, timeout=timeout, what=f"{len(event_ids)} audit events in VictoriaLogs")


# --- the session and the checks it must pass ----------------------------------------------


def drive_session(traffic: Traffic, note: str) -> None:
    """Two tenants, four users: reads, a role change, denied and allowed deletes, a crash,
    a validation error, an unknown route, a non-audit log record (``note``), a WebSocket."""
    for number, (user, tenant) in enumerate(
        [("alice", "acme"), ("bob", "acme"), ("carol", "globex"), ("admin", "globex")]
    ):
        assert traffic.request("GET", f"/items/{number}", user=user, tenant=tenant).is_success
    changed = traffic.request(
        "PUT", "/users/u-17/role", params={"role": "owner"}, user="admin", tenant="globex"
    )
    assert changed.status_code == 200
    denied = traffic.request("DELETE", "/documents/doc-1", user="bob", tenant="acme")
    assert denied.status_code == 403
    deleted = traffic.request("DELETE", "/documents/doc-2", user="admin", tenant="globex")
    assert deleted.status_code == 200
    crashed = traffic.request("POST", "/reports/r-9/render", user="carol", tenant="globex")
    assert crashed.status_code == 500
    invalid = traffic.request("GET", "/items/not-a-number", user="alice", tenant="acme")
    assert invalid.status_code == 422
    assert traffic.request("GET", "/no/such/route").status_code == 404
    noted = traffic.request("POST", "/notes", params={"text": note}, user="alice", tenant="acme")
    assert noted.status_code == 200
    traffic.websocket(["hello", "bye"], user="carol", tenant="globex")


def event_id(event: ArchivedEvent) -> str:
    value = event.attributes["audit.event.id"]
    assert isinstance(value, str), event
    return value


def check_archive(archived: Sequence[ArchivedEvent], traffic: Traffic) -> None:
    """Every event of ``traffic`` is archived exactly once, with the actor and status sent."""
    counts = Counter(event_id(e) for e in archived)
    assert [i for i, n in counts.items() if n != 1] == []
    assert len(archived) == traffic.expected_event_count()
    assert traffic.business_event_ids <= counts.keys()

    requests = [e for e in archived if e.event_name == "audit.http.request"]
    assert sorted(str(e.attributes["audit.request.id"]) for e in requests) == sorted(
        sent.request_id for sent in traffic.sent
    )
    by_request = {sent.request_id: sent for sent in traffic.sent}
    for event in requests:
        sent = by_request[str(event.attributes["audit.request.id"])]
        assert event.attributes["http.response.status_code"] == sent.status
        # The app names the actor in its endpoints; a request refused before one ran has none.
        endpoint_ran = sent.status not in (404, 422)
        assert event.attributes.get("user.id") == (sent.user if endpoint_ran else None)
        assert event.attributes.get("tenant.id") == (sent.tenant if endpoint_ran else None)
    sockets = Counter(e.event_name for e in archived if e.event_name.startswith("audit.websocket"))
    expected_sockets = len(traffic.websocket_request_ids)
    assert sockets == (
        {
            "audit.websocket.connect": expected_sockets,
            "audit.websocket.disconnect": expected_sockets,
        }
        if expected_sockets
        else {}
    )


def check_victorialogs(
    stack: AuditStack, archived: Sequence[ArchivedEvent], timeout: float
) -> None:
    """Each archived event is in VictoriaLogs once, its actor and route intact."""
    logged = wait_for_logs(stack, {event_id(e) for e in archived}, timeout)
    for event in archived:
        entries = logged[event_id(event)]
        assert len(entries) == 1, entries
        entry: dict[str, Any] = entries[0]
        assert entry["event_name"] == event.event_name
        for key in ("user.id", "tenant.id", "http.route"):
            assert entry.get(key) == event.attributes.get(key), (key, entry)


# What the library's minimal span event carries (span_event_detail="minimal", the default).
SPAN_EVENT_KEYS = ("audit.event.id", "audit.action", "audit.outcome", "user.id", "tenant.id")


def check_span_events(stack: AuditStack, archived: Sequence[ArchivedEvent], timeout: float) -> None:
    """Jaeger holds each archived event as a span event on the record's own server span.

    Traces are fetched by the archived records' trace ids (``/api/v3/traces/{id}``); the span
    event has the record's event name and the minimal set of its attributes, nothing else
    but the collector's redaction counts.
    """
    expected = {event_id(e) for e in archived}
    trace_ids = {e.trace_id for e in archived}
    assert all(trace_ids), "every archived event names its trace"

    def all_found() -> dict[str, SpanEvent] | None:
        found = audit_span_events(stack.trace_spans(trace_ids))
        return found if expected <= found.keys() else None

    found = poll(all_found, timeout=timeout, what="every audit span event in Jaeger")
    for event in archived:
        span_event = found[event_id(event)]
        span = span_event.span
        assert span_event.name == event.event_name
        assert span.kind == SPAN_KIND_SERVER, span.name
        assert (span.trace_id, span.span_id) == (event.trace_id, event.span_id)
        assert span.resource["service.name"] == APP_SERVICE
        wanted = {k: event.attributes[k] for k in SPAN_EVENT_KEYS if k in event.attributes}
        assert {k: v for k, v in span_event.attributes.items() if k in SPAN_EVENT_KEYS} == wanted
        extra = {k for k in span_event.attributes if k not in SPAN_EVENT_KEYS}
        assert all(k.startswith("redaction.") for k in extra), (extra, event.event_name)


def check_note_only_in_victorialogs(stack: AuditStack, note: str, timeout: float) -> None:
    """The ``app.note`` record is in VictoriaLogs and not in the archive.

    Call it after the archive holds the note's own request event, so absence means something.
    """
    entries = poll(
        lambda: stack.logs('event_name:"app.note"'),
        timeout=timeout,
        what="the app.note record in VictoriaLogs",
    )
    assert [entry["_msg"] for entry in entries] == [note]
    assert [e for e in stack.archive_events() if not e.event_name.startswith("audit.")] == []
    assert note.encode() not in stack.archive_bytes()
