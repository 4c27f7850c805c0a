"""Audit events also land on the SERVER span, and log records never depend on sampling."""

from __future__ import annotations

from fastapi import Depends
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from otel_audit import Actor, AuditConfig, record, set_actor

from .conftest import Telemetry, Tracing, audited_app, make_telemetry


async def _dependency() -> str:
    return "dep"


def test_span_events_land_on_the_server_span(telemetry: Telemetry, tracing: Tracing) -> None:
    """Request and business events are span events of the SERVER span, not an inner one."""
    app = audited_app(telemetry, AuditConfig(span_event_detail="full"), tracing=tracing)

    @app.post("/orders/{order_id}")
    async def create(order_id: str, dep: str = Depends(_dependency)) -> dict[str, str]:
        record("order.created", resource_type="order", resource_id=order_id)
        return {"id": order_id}

    TestClient(app).post("/orders/o-1")
    (server_span,) = telemetry.server_spans()
    names = [event.name for event in server_span.events]
    assert names.count("audit.order.created") == 1
    assert names.count("audit.http.request") == 1
    request_event = next(e for e in server_span.events if e.name == "audit.http.request")
    log_record = telemetry.one_record("audit.http.request")
    assert dict(request_event.attributes or {}) == dict(log_record.attributes)
    assert log_record.span_id == server_span.context.span_id
    assert log_record.trace_id == server_span.context.trace_id
    other_spans = [s for s in telemetry.spans.get_finished_spans() if s is not server_span]
    assert all(not any(e.name.startswith("audit.") for e in s.events) for s in other_spans)


def test_error_event_lands_on_the_server_span(telemetry: Telemetry, tracing: Tracing) -> None:
    """An unhandled exception's audit event is added while the server span is still open."""
    app = audited_app(telemetry, tracing=tracing)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    TestClient(app, raise_server_exceptions=False).get("/boom")
    (server_span,) = telemetry.server_spans()
    events = [e for e in server_span.events if e.name == "audit.http.request"]
    assert len(events) == 1
    assert (events[0].attributes or {})["audit.outcome"] == "error"


def test_logs_are_emitted_when_traces_are_sampled_out(tracing: Tracing) -> None:
    """With a sampler that drops every trace, every audit log record is still emitted."""
    sampled_out = make_telemetry(sampler=ALWAYS_OFF)
    app = audited_app(sampled_out, tracing=tracing)

    @app.get("/x")
    async def endpoint() -> str:
        record("thing.viewed")
        return "ok"

    client = TestClient(app)
    for _ in range(5):
        client.get("/x")
    assert sampled_out.spans.get_finished_spans() == ()
    names = [r.event_name for r in sampled_out.audit_records()]
    assert names.count("audit.http.request") == 5
    assert names.count("audit.thing.viewed") == 5


def test_span_events_can_be_turned_off(telemetry: Telemetry) -> None:
    """span_events=False keeps the log record but adds nothing to the span."""
    app = audited_app(telemetry, AuditConfig(span_events=False))

    @app.get("/x")
    async def endpoint() -> str:
        return "ok"

    TestClient(app).get("/x")
    (server_span,) = telemetry.server_spans()
    assert not any(e.name.startswith("audit.") for e in server_span.events)
    assert len(telemetry.audit_records()) == 1


def test_without_tracing_events_are_still_logged(telemetry: Telemetry) -> None:
    """An app with no HTTP tracing at all still gets every audit log record."""
    app = audited_app(telemetry, tracing="none")

    @app.get("/x")
    async def endpoint() -> str:
        return "ok"

    TestClient(app).get("/x")
    assert telemetry.spans.get_finished_spans() == ()
    assert telemetry.one_record("audit.http.request").attributes["http.route"] == "/x"


def test_minimal_span_events_keep_only_what_finds_the_log_record(telemetry: Telemetry) -> None:
    """span_event_detail=minimal: the span event has the id, action, outcome and actor only."""
    app = audited_app(telemetry, AuditConfig(span_event_detail="minimal"))

    @app.get("/x")
    async def endpoint() -> str:
        set_actor(Actor("u-1", tenant="acme", roles=("admin",)))
        return "ok"

    TestClient(app).get("/x")
    (server_span,) = telemetry.server_spans()
    (event,) = [e for e in server_span.events if e.name == "audit.http.request"]
    log_attributes = telemetry.one_record("audit.http.request").attributes
    assert dict(event.attributes or {}) == {
        "audit.event.id": log_attributes["audit.event.id"],
        "audit.action": "http.request",
        "audit.outcome": "success",
        "user.id": "u-1",
        "tenant.id": "acme",
    }
    assert "http.route" in log_attributes and "user.roles" in log_attributes


def test_span_events_are_minimal_by_default(telemetry: Telemetry) -> None:
    """By default the span event points at the record: id, action, outcome, user, tenant."""
    app = audited_app(telemetry)

    @app.get("/me")
    async def me() -> dict[str, bool]:
        set_actor(Actor("u-1", tenant="acme"))
        return {"ok": True}

    TestClient(app).get("/me?q=1")
    (server_span,) = telemetry.server_spans()
    (event,) = [e for e in server_span.events if e.name == "audit.http.request"]
    record = telemetry.one_record("audit.http.request")
    assert dict(event.attributes or {}) == {
        key: record.attributes[key]
        for key in ("audit.event.id", "audit.action", "audit.outcome", "user.id", "tenant.id")
    }
