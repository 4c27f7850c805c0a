"""Auditing never changes the response (unless fail_closed), and every lost event is counted."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadWriteLogRecord

from otel_audit import AuditConfig, AuditEmitError, record

from .conftest import Telemetry, audited_app, make_telemetry


class _ExplodingProcessor(LogRecordProcessor):
    """A real SDK processor whose pipeline fails on every record, like a broken exporter."""

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        raise OSError("disk full")

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


@pytest.fixture
def broken(telemetry: Telemetry) -> Telemetry:
    """Telemetry whose logger provider raises on every emit."""
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(_ExplodingProcessor())
    telemetry.logger_provider = provider
    return telemetry


def _app(telemetry: Telemetry, config: AuditConfig | None = None) -> FastAPI:
    app = audited_app(telemetry, config)

    @app.get("/items/{item_id}")
    async def read(item_id: int) -> dict[str, int]:
        record("item.read", resource_type="item", resource_id=item_id)
        return {"item_id": item_id}

    return app


def _responses(app: FastAPI) -> list[tuple[int, bytes]]:
    client = TestClient(app, raise_server_exceptions=False)
    return [(r.status_code, r.content) for r in (client.get(p) for p in ("/items/1", "/items/x"))]


def test_broken_pipeline_does_not_change_responses(broken: Telemetry) -> None:
    """Responses are byte-identical whether or not the audit pipeline works."""
    working = make_telemetry()
    healthy = _responses(_app(working))
    assert len(working.audit_records()) == 3
    assert _responses(_app(broken)) == healthy


def test_every_drop_is_counted_by_reason(broken: Telemetry) -> None:
    """Each event the pipeline rejected is counted on otel_audit.events.dropped."""
    _responses(_app(broken))
    # /items/1: item.read + http.request; /items/x: http.request (422).
    assert broken.counter("otel_audit.events.dropped", reason="export_error") == 3
    assert broken.counter("otel_audit.events.emitted") == 0


def test_emitted_events_are_counted(telemetry: Telemetry) -> None:
    """Each event emitted is counted by action."""
    _responses(_app(telemetry))
    assert telemetry.counter("otel_audit.events.emitted", **{"audit.action": "http.request"}) == 2
    assert telemetry.counter("otel_audit.events.emitted", **{"audit.action": "item.read"}) == 1


def test_drops_are_logged_rate_limited(broken: Telemetry, caplog: pytest.LogCaptureFixture) -> None:
    """A burst of drops logs one warning, not one per event."""
    app = _app(broken)
    with caplog.at_level("WARNING", logger="otel_audit"):
        _responses(app)
        _responses(app)
    warnings = [r for r in caplog.records if "dropped: export_error" in r.getMessage()]
    assert len(warnings) == 1
    assert "disk full" in warnings[0].getMessage()


def test_fail_closed_refuses_the_request(broken: Telemetry) -> None:
    """With fail_closed, a request whose audit event cannot be written gets a 503."""
    app = audited_app(broken, AuditConfig(fail_closed=True))

    @app.get("/transfer")
    async def transfer() -> dict[str, str]:
        return {"status": "sent"}

    response = TestClient(app).get("/transfer")
    assert response.status_code == 503
    assert response.json() == {"detail": "audit trail unavailable"}
    assert "sent" not in response.text
    assert response.headers["x-request-id"]


def test_fail_closed_record_raises(broken: Telemetry) -> None:
    """With fail_closed, record() raises AuditEmitError instead of silently dropping."""
    audited_app(broken, AuditConfig(fail_closed=True))
    with pytest.raises(AuditEmitError):
        record("user.deleted", resource_id="u1")
    assert broken.counter("otel_audit.events.dropped", reason="export_error") == 1


def test_fail_open_record_returns_none_when_dropped(broken: Telemetry) -> None:
    """Fail-open record() returns None for a dropped event instead of raising."""
    audited_app(broken)
    assert record("user.deleted", resource_id="u1") is None


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")

    def __repr__(self) -> str:
        raise RuntimeError("no")


def test_unserialisable_details_are_kept_as_placeholders(telemetry: Telemetry) -> None:
    """Details that cannot be rendered do not lose the event."""
    audited_app(telemetry)
    event_id = record("job.ran", details={"thing": _Unprintable(), "ok": [1, 2.5, None, True]})
    assert event_id is not None
    details = str(telemetry.one_record("audit.job.ran").attributes["audit.details"])
    assert "<unrepresentable>" in details and "[1,2.5,null,true]" in details


def test_streaming_response_is_audited_once(telemetry: Telemetry) -> None:
    """A streamed body is audited once, at response start, and streams unchanged."""
    from fastapi.responses import StreamingResponse

    app = audited_app(telemetry)

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for index in range(3):
                yield f"chunk{index};".encode()

        return StreamingResponse(chunks())

    response = TestClient(app).get("/stream")
    assert response.content == b"chunk0;chunk1;chunk2;"
    assert len(telemetry.audit_records()) == 1
