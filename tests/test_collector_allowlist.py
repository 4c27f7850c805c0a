"""Every attribute the library emits passes the collector's audit allow-list.

The collector's audit redaction processor deletes any key it does not list (it fails
closed), so an attribute added to the library but not to ``otelcol-audit.yaml`` would
silently vanish from the archive and the backends.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from fastapi import FastAPI, Request, WebSocket
from fastapi.testclient import TestClient

from otel_audit import Actor, AuditConfig, Policy, Rule, record, set_actor

from .conftest import Telemetry, audited_app

CONFIG = Path(__file__).resolve().parent.parent / "collector-config" / "otelcol-audit.yaml"
# The processor holding the audit allow-list in that file.
PROCESSOR = "audit_redaction/audit"
# Captured headers are opt-in and named by the deployment; the shipped allow-list cannot
# know them (a deployment that captures headers adds its names there).
OPT_IN_PREFIXES = ("http.request.header.",)


def _allowed_keys() -> set[str]:
    config = yaml.safe_load(CONFIG.read_text())
    keys: list[str] = config["processors"][PROCESSOR]["allowed_keys"]
    return set(keys)


def _exercised_app(telemetry: Telemetry) -> FastAPI:
    policy = Policy((Rule(level="request_response"),))
    app = audited_app(telemetry, AuditConfig(policy=policy, capture_headers=("x-tenant",)))

    @app.post("/users/{user_id}")
    async def update(user_id: str, request: Request) -> dict[str, str]:
        set_actor(
            Actor(
                user_id,
                tenant="acme",
                roles=("admin",),
                scopes=("users:write",),
                auth_method="jwt",
                session_id="s-1",
            )
        )
        await request.body()
        record(
            "user.updated",
            resource_type="user",
            resource_id=user_id,
            changes={"role": ("viewer", "admin")},
            details={"reason": "promotion"},
        )
        return {"ok": "yes"}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close(code=1000)

    return app


def test_spool_integrity_fields_are_allowed_by_the_collector(tmp_path: Path) -> None:
    """Sequence, chain and the closing record's attributes pass the allow-list too."""
    from otel_audit import instrument_app
    from otel_audit.archive import read_events

    app = FastAPI()
    instrument_app(app, AuditConfig(transport="spool", spool_dir=str(tmp_path)))

    @app.get("/x")
    async def x() -> dict[str, bool]:
        return {"ok": True}

    with TestClient(app) as client:
        client.get("/x")
    events = list(read_events(tmp_path))
    assert events[-1].event_name == "audit.transport.closed"
    emitted = {key for event in events for key in event.attributes}
    missing = {key for key in emitted - _allowed_keys() if not key.startswith(OPT_IN_PREFIXES)}
    assert not missing, f"add to {PROCESSOR} allowed_keys in {CONFIG.name}: {sorted(missing)}"


def test_every_emitted_attribute_is_allowed_by_the_collector(telemetry: Telemetry) -> None:
    """HTTP (with bodies), errors, record() with changes, and WebSocket events all pass."""
    client = TestClient(_exercised_app(telemetry), raise_server_exceptions=False)
    client.post(
        "/users/u-1?page=2",
        json={"name": "x", "password": "p"},
        headers={"x-tenant": "acme", "user-agent": "t"},
    )
    client.get("/boom")
    with client.websocket_connect("/ws") as websocket:
        websocket.send_text("hi")
        websocket.receive_text()
    emitted = {key for r in telemetry.audit_records() for key in (r.attributes or {})}
    assert {
        "audit.request.body",
        "audit.response.body",
        "audit.changes",
        "audit.websocket.close.code",
        "error.type",
    } <= emitted  # really exercised
    missing = {key for key in emitted - _allowed_keys() if not key.startswith(OPT_IN_PREFIXES)}
    assert not missing, f"add to {PROCESSOR} allowed_keys in {CONFIG.name}: {sorted(missing)}"
