"""The audit transport wired into apps: which one is chosen, the spool's trail, fail-closed.

Real apps, the real spool writer on real files; the trail is read back with the archive
reader and checked with the verifier.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_audit import AuditConfig, AuditEmitError, instrument_app, record
from otel_audit._transport import choose_transport
from otel_audit.archive import ArchivedEvent, read_events, verify_events

from .conftest import counter_value


@pytest.mark.parametrize(
    ("configured", "provider", "env", "expected"),
    [
        (None, False, {}, "spool"),
        (None, False, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "otlp"),
        (None, False, {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://c:4318/v1/logs"}, "otlp"),
        (None, True, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "sdk"),
        ("spool", True, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "spool"),
        ("sdk", False, {}, "sdk"),
    ],
)
def test_transport_is_chosen_as_documented(
    configured: str | None, provider: bool, env: dict[str, str], expected: str
) -> None:
    """Configured wins; else a given logger provider, then an OTLP endpoint, then the spool."""
    assert choose_transport(configured, explicit_provider=provider, env=env) == expected  # type: ignore[arg-type]


def _spooled_app(spool: Path, **config: object) -> tuple[FastAPI, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    app = FastAPI()
    instrument_app(
        app,
        AuditConfig(transport="spool", spool_dir=str(spool), **config),  # type: ignore[arg-type]
        meter_provider=MeterProvider(metric_readers=[reader], shutdown_on_exit=False),
    )

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        record("item.viewed", resource_type="item", resource_id=item_id)
        return {"id": item_id}

    return app, reader


def _trail(spool: Path) -> list[ArchivedEvent]:
    return list(read_events(spool))


def test_spool_trail_is_sequenced_chained_and_closed(tmp_path: Path) -> None:
    """Every event lands in this process's folder, gap-free, chained, with a closing record."""
    app, _ = _spooled_app(tmp_path)
    with TestClient(app) as client:  # the lifespan closes the trail at the end
        for item_id in range(5):
            assert client.get(f"/items/{item_id}").status_code == 200
    events = _trail(tmp_path)
    assert [e.event_name for e in events][-1] == "audit.transport.closed"
    assert [e.attributes["audit.seq"] for e in events] == list(range(1, 12))
    assert events[-1].attributes["audit.transport.closed.last_seq"] == 10
    (instance,) = {e.resource["service.instance.id"] for e in events}
    assert (tmp_path / str(instance)).is_dir()
    report = verify_events(events)
    assert report.clean and report.closed, report


def test_keyed_chain_verifies_only_with_its_key(tmp_path: Path) -> None:
    """With OTEL_AUDIT_CHAIN_KEY the chain is an HMAC chain: the wrong key finds forgeries."""
    app, _ = _spooled_app(tmp_path, chain_key="k-" + "9" * 30)
    with TestClient(app) as client:
        client.get("/items/1")
    events = _trail(tmp_path)
    assert str(events[0].attributes["audit.chain.hash"]).startswith("hmac-sha256:")
    assert verify_events(events, key=b"k-" + b"9" * 30).clean
    assert not verify_events(events, key=b"wrong key").clean


def test_tampering_with_the_spool_is_detected(tmp_path: Path) -> None:
    """Editing one stored value breaks the chain, and the verifier names the event."""
    app, _ = _spooled_app(tmp_path)
    with TestClient(app) as client:
        for item_id in range(3):
            client.get(f"/items/{item_id}")
    (segment,) = tmp_path.glob("*/seg-*.jsonl")
    segment.write_bytes(segment.read_bytes().replace(b'"/items/1"', b'"/items/7"', 1))
    report = verify_events(_trail(tmp_path))
    assert not report.clean
    assert report.count("modified") >= 1


def test_unwritable_spool_is_counted_and_the_request_still_served(tmp_path: Path) -> None:
    """Fail-open: a spool folder that is a file costs the events (counted), not the requests."""
    blocked = tmp_path / "spool"
    blocked.write_text("a file where the spool folder should be")
    app, reader = _spooled_app(blocked)
    with TestClient(app) as client:
        assert client.get("/items/1").status_code == 200
    assert counter_value(reader, "otel_audit.events.dropped", reason="spool_write_error") >= 1


def test_fail_closed_refuses_what_cannot_be_made_durable(tmp_path: Path) -> None:
    """Fail-closed: 503 for the request, AuditEmitError from record(), nothing half-done."""
    blocked = tmp_path / "spool"
    blocked.write_text("a file where the spool folder should be")
    app, _ = _spooled_app(blocked, fail_closed=True)

    @app.get("/job")
    async def job() -> dict[str, bool]:
        with pytest.raises(AuditEmitError):
            record("job.started")
        return {"raised": True}

    @app.get("/alive")
    async def alive() -> dict[str, bool]:
        return {"ok": True}

    with TestClient(app) as client:
        response = client.get("/alive")
        assert response.status_code == 503
        assert response.json() == {"detail": "audit trail unavailable"}
        # record() raised inside (else the endpoint would have failed with a 500), and the
        # request's own event could not be made durable either.
        assert client.get("/job").status_code == 503


def test_fail_closed_answers_only_after_the_record_is_on_disk(tmp_path: Path) -> None:
    """When the response arrives, its event is already in a segment on disk."""
    app, _ = _spooled_app(tmp_path, fail_closed=True)
    client = TestClient(app)
    for item_id in range(3):
        assert client.get(f"/items/{item_id}").status_code == 200
        # No flush, no close: whatever answered had been fsync'd.
        requests = [e for e in _trail(tmp_path) if e.event_name == "audit.http.request"]
        assert len(requests) == item_id + 1


def test_forked_child_writes_its_own_instance(tmp_path: Path) -> None:
    """A worker forked after events were spooled starts its own folder and its own sequence."""
    app, _ = _spooled_app(tmp_path)
    client = TestClient(app)
    client.get("/items/1")
    pid = os.fork()
    if pid == 0:  # the child: one request, then leave without running the parent's teardown
        code = 0
        try:
            TestClient(app).get("/items/2")
            from otel_audit.fastapi import auditor_of

            auditor = auditor_of(app)
            assert auditor is not None
            auditor.close()
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    with client:
        pass  # the parent closes its own trail
    events = _trail(tmp_path)
    instances = {e.resource["service.instance.id"] for e in events}
    assert len(instances) == 2
    for instance in instances:
        own = [e for e in events if e.resource["service.instance.id"] == instance]
        assert [e.attributes["audit.seq"] for e in own] == list(range(1, len(own) + 1))
    assert verify_events(events).clean


def test_closing_record_is_an_audit_event_like_the_others(tmp_path: Path) -> None:
    """audit.transport.closed has its action, outcome and event id, like every event."""
    app, _ = _spooled_app(tmp_path)
    with TestClient(app) as client:
        client.get("/items/1")
    closing = _trail(tmp_path)[-1]
    assert closing.event_name == "audit.transport.closed"
    assert closing.attributes["audit.action"] == "transport.closed"
    assert closing.attributes["audit.outcome"] == "success"
    assert len(str(closing.attributes["audit.event.id"])) == 36
