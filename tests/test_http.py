"""One ``audit.http.request`` event per audited request, with the schema's attributes."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from opentelemetry._logs import SeverityNumber

from otel_audit import AuditConfig

from .conftest import TESTCLIENT_PEER, Telemetry, Tracing, audited_app


def _items_app(
    telemetry: Telemetry, config: AuditConfig | None = None, tracing: Tracing = "native"
) -> FastAPI:
    app = audited_app(telemetry, config, tracing)

    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> dict[str, int]:
        if item_id == 404:
            raise HTTPException(status_code=404, detail="no such item")
        if item_id == 500:
            raise RuntimeError("database on fire")
        return {"item_id": item_id}

    @app.post("/items")
    def create_item(item: dict[str, str]) -> dict[str, str]:
        return item

    @app.get("/health")
    async def health() -> str:
        return "ok"

    return app


def test_request_event_carries_the_schema_attributes(
    telemetry: Telemetry, tracing: Tracing
) -> None:
    """A successful request yields one INFO event with route template, status and ids."""
    client = TestClient(_items_app(telemetry, tracing=tracing))
    response = client.get("/items/42?page=2", headers={"user-agent": "pytest-agent/1.0"})
    assert response.status_code == 200
    record = telemetry.one_record("audit.http.request")
    attributes = dict(record.attributes)
    assert attributes["audit.action"] == "http.request"
    assert attributes["audit.outcome"] == "success"
    assert attributes["http.route"] == "/items/{item_id}"
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.response.status_code"] == 200
    assert attributes["url.path"] == "/items/42"
    assert attributes["url.query"] == "page=2"
    assert attributes.get("client.address") == TESTCLIENT_PEER
    assert attributes["user_agent.original"] == "pytest-agent/1.0"
    assert len(str(attributes["audit.event.id"])) == 36
    assert attributes["audit.request.id"] == response.headers["x-request-id"]
    assert record.severity_number == SeverityNumber.INFO
    assert record.body == "GET /items/{item_id} -> 200 (success)"
    assert record.timestamp is not None and record.trace_id


@pytest.mark.parametrize(
    ("path", "status", "outcome", "severity"),
    [
        ("/items/404", 404, "failure", SeverityNumber.WARN),
        ("/items/not-a-number", 422, "failure", SeverityNumber.WARN),
        ("/nowhere", 404, "failure", SeverityNumber.WARN),
    ],
)
def test_client_errors_are_failures(
    telemetry: Telemetry, path: str, status: int, outcome: str, severity: SeverityNumber
) -> None:
    """4xx responses are recorded as WARN failures."""
    client = TestClient(_items_app(telemetry))
    assert client.get(path).status_code == status
    record = telemetry.one_record("audit.http.request")
    assert record.attributes["audit.outcome"] == outcome
    assert record.attributes["http.response.status_code"] == status
    assert record.severity_number == severity


def test_unmatched_route_has_no_route_attribute(telemetry: Telemetry) -> None:
    """A 404 for an unknown path carries the path but no route template."""
    TestClient(_items_app(telemetry)).get("/nowhere")
    attributes = telemetry.one_record("audit.http.request").attributes
    assert "http.route" not in attributes
    assert attributes["url.path"] == "/nowhere"


def test_unhandled_exception_still_produces_an_error_event(
    telemetry: Telemetry, tracing: Tracing
) -> None:
    """An exception escaping the endpoint is audited as ERROR with status 500."""
    client = TestClient(_items_app(telemetry, tracing=tracing), raise_server_exceptions=False)
    response = client.get("/items/500", headers={"x-request-id": "crash-1"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "crash-1"
    record = telemetry.one_record("audit.http.request")
    assert record.attributes["audit.outcome"] == "error"
    assert record.attributes["http.response.status_code"] == 500
    assert record.attributes["error.type"] == "RuntimeError"
    assert record.severity_number == SeverityNumber.ERROR


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("req-123_abc.DEF:9", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("has space", False),
        ("<script>", False),
        ("", False),
    ],
)
def test_request_id_is_accepted_only_when_safe(telemetry: Telemetry, sent: str, kept: bool) -> None:
    """A valid X-Request-ID is kept and echoed; an unsafe one is replaced by a new id."""
    client = TestClient(_items_app(telemetry))
    response = client.get("/items/1", headers={"x-request-id": sent})
    recorded = telemetry.one_record("audit.http.request").attributes["audit.request.id"]
    assert response.headers["x-request-id"] == recorded
    assert (recorded == sent) is kept
    if not kept:
        assert len(recorded) == 36


def test_request_id_is_generated_and_echoed(telemetry: Telemetry) -> None:
    """Without X-Request-ID each request gets a distinct generated id, echoed back."""
    client = TestClient(_items_app(telemetry))
    ids = {client.get("/items/1").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3
    recorded = {r.attributes["audit.request.id"] for r in telemetry.audit_records()}
    assert recorded == ids


@pytest.mark.parametrize("path", ["/health", "/docs", "/openapi.json", "/health/deep"])
def test_default_exclusions_are_not_audited(telemetry: Telemetry, path: str) -> None:
    """Health, docs and schema endpoints produce no audit events by default."""
    TestClient(_items_app(telemetry)).get(path)
    assert telemetry.audit_records() == []


def test_exclusions_are_configurable(telemetry: Telemetry) -> None:
    """An explicit excluded_urls replaces the defaults, matching whole path segments."""
    client = TestClient(_items_app(telemetry, AuditConfig(excluded_urls=("/items",))))
    client.get("/items/1")
    client.get("/health")
    client.get("/itemsx")
    paths = sorted(str(r.attributes["url.path"]) for r in telemetry.audit_records())
    assert paths == ["/health", "/itemsx"]


def test_secrets_in_path_and_query_are_redacted(telemetry: Telemetry) -> None:
    """Emails in the path and secret query parameters never reach the record."""
    client = TestClient(_items_app(telemetry))
    client.get("/users/jane.doe@example.com?token=abc123secret&page=1")
    attributes = telemetry.one_record("audit.http.request").attributes
    flattened = json.dumps(dict(attributes), default=str)
    assert "jane.doe@example.com" not in flattened
    assert "abc123secret" not in flattened
    assert "page=1" in str(attributes["url.query"])
    reasons = set(attributes["audit.redactions"])
    assert "url.path:email" in reasons
    assert "url.query.token:secret_key" in reasons


def test_redaction_can_be_turned_off(telemetry: Telemetry) -> None:
    """With redaction off, values pass unmasked (the collector is then the PII layer)."""
    client = TestClient(_items_app(telemetry, AuditConfig(redaction=False)))
    client.get("/users/jane.doe@example.com")
    attributes = telemetry.one_record("audit.http.request").attributes
    assert attributes["url.path"] == "/users/jane.doe@example.com"
    assert "audit.redactions" not in attributes


def test_captured_headers_are_recorded_redacted(telemetry: Telemetry) -> None:
    """Configured headers are captured; secret-named or PII-bearing values are masked."""
    config = AuditConfig(capture_headers=("X-Tenant-Hint", "X-Api-Key", "X-Contact"))
    client = TestClient(_items_app(telemetry, config))
    client.get(
        "/items/1",
        headers={"x-tenant-hint": "acme", "x-api-key": "k-123456", "x-contact": "a@b.example"},
    )
    attributes = telemetry.one_record("audit.http.request").attributes
    assert attributes["http.request.header.x-tenant-hint"] == "acme"
    assert "k-123456" not in str(attributes["http.request.header.x-api-key"])
    assert "a@b.example" not in str(attributes["http.request.header.x-contact"])


def test_long_values_are_truncated_with_a_marker(telemetry: Telemetry) -> None:
    """Attribute values are capped at max_attribute_length with a truncation marker."""
    client = TestClient(_items_app(telemetry, AuditConfig(max_attribute_length=100)))
    client.get("/items/1", headers={"user-agent": "x" * 5000})
    agent = str(telemetry.one_record("audit.http.request").attributes["user_agent.original"])
    assert agent.startswith("x" * 100)
    assert "TRUNCATED" in agent
    assert len(agent) < 200


def test_unknown_method_is_normalised(telemetry: Telemetry) -> None:
    """Methods outside the known set are recorded as _OTHER, never verbatim."""
    client = TestClient(_items_app(telemetry))
    client.request("FOOBAR", "/items/1")
    assert telemetry.one_record("audit.http.request").attributes["http.request.method"] == "_OTHER"


async def test_forwarded_for_is_believed_only_from_trusted_proxies(telemetry: Telemetry) -> None:
    """The middleware applies trusted_proxies: spoofed XFF from an untrusted peer is ignored."""
    app = _items_app(telemetry, AuditConfig(trusted_proxies=("10.0.0.0/8",)))
    headers = {"x-forwarded-for": "198.51.100.9"}
    for peer in ("10.0.0.5", "203.0.113.7"):
        transport = httpx.ASGITransport(app=app, client=(peer, 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.get("/items/1", headers=headers)).status_code == 200
    addresses = [r.attributes["client.address"] for r in telemetry.audit_records()]
    assert addresses == ["198.51.100.9", "203.0.113.7"]


def test_request_id_carrying_pii_is_replaced(telemetry: Telemetry) -> None:
    """An X-Request-ID that redaction would alter (a card number) is replaced, not echoed."""
    client = TestClient(_items_app(telemetry))
    response = client.get("/items/1", headers={"x-request-id": "4111-1111-1111-1111"})
    recorded = str(telemetry.one_record("audit.http.request").attributes["audit.request.id"])
    assert response.headers["x-request-id"] == recorded
    assert "4111" not in recorded
