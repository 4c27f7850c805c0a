"""The app the end-to-end tests drive: zero-code, run as ``opentelemetry-instrument uvicorn``.

It never calls ``instrument_app``: the ``otel_audit`` instrumentor audits it from the
``OTEL_AUDIT_*`` environment. Actors come from the ``X-User`` / ``X-Tenant`` headers (a
stand-in for real authentication). Business endpoints return the event ids ``record()``
gave them, so a test knows which events to look for without reading the archive first.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import (
    FastAPI,
    Header,
    HTTPException,
    Query,
    Request,
    WebSocket,
    WebSocketDisconnect,
)
from opentelemetry._logs import get_logger

from otel_audit import Action, Actor, record, set_actor
from otel_audit._auditor import default_auditor

app = FastAPI()


def _act_as(user: str | None, tenant: str | None) -> None:
    if user:
        set_actor(Actor(user, tenant=tenant, roles=("member",), auth_method="header"))


@app.get("/health")
async def health() -> dict[str, str]:
    """Readiness probe (excluded from auditing by default)."""
    return {"status": "ok"}


@app.get("/metrics/audit")
async def audit_counts(
    reason: Annotated[list[str], Query()],
) -> dict[str, dict[str, int]]:
    """The audit trail's own loss and error counters for ``reason`` (never audited: /metrics).

    The e2e app exports no metrics (OTEL_METRICS_EXPORTER=none), so the fault tests read the
    counters behind ``otel_audit.events.dropped`` / ``otel_audit.errors`` here.
    """
    telemetry = default_auditor().telemetry
    return {
        "dropped": {name: telemetry.dropped.get(name) for name in reason},
        "errors": {name: telemetry.errors.get(name) for name in reason},
    }


@app.get("/items/{item_id}")
async def read_item(
    item_id: int, x_user: str | None = Header(None), x_tenant: str | None = Header(None)
) -> dict[str, Any]:
    _act_as(x_user, x_tenant)
    return {"item_id": item_id}


@app.put("/users/{user_id}/role")
async def change_role(
    user_id: str,
    role: str,
    x_user: str | None = Header(None),
    x_tenant: str | None = Header(None),
) -> dict[str, Any]:
    _act_as(x_user, x_tenant)
    event_id = record(
        Action.USER_ROLE_CHANGED,
        resource_type="user",
        resource_id=user_id,
        changes={"role": ("viewer", role)},
        details={"reason": "e2e session"},
    )
    return {"event_ids": [event_id]}


@app.delete("/documents/{document_id}")
async def delete_document(
    document_id: str, x_user: str | None = Header(None), x_tenant: str | None = Header(None)
) -> dict[str, Any]:
    _act_as(x_user, x_tenant)
    if x_user != "admin":
        event_id = record(
            Action.ACCESS_DENIED,
            resource_type="document",
            resource_id=document_id,
            outcome="failure",
            details={"required_role": "admin"},
        )
        raise HTTPException(403, detail={"event_ids": [event_id]})
    event_id = record("document.deleted", resource_type="document", resource_id=document_id)
    return {"event_ids": [event_id]}


@app.post("/reports/{report_id}/render")
async def render_report(
    report_id: str, x_user: str | None = Header(None), x_tenant: str | None = Header(None)
) -> dict[str, Any]:
    _act_as(x_user, x_tenant)
    raise RuntimeError(f"renderer crashed on report {report_id}")


@app.post("/notes")
async def add_note(
    text: str, x_user: str | None = Header(None), x_tenant: str | None = Header(None)
) -> dict[str, Any]:
    """Logs a NON-audit record through the OTel logs API (must never reach the archive)."""
    _act_as(x_user, x_tenant)
    get_logger("app").emit(event_name="app.note", body=text, attributes={"note.kind": "e2e"})
    return {"ok": True}


@app.post("/pii/{value}")
async def submit_pii(
    value: str,
    request: Request,
    x_user: str | None = Header(None),
    x_tenant: str | None = Header(None),
) -> dict[str, Any]:
    """Copies the JSON body into an audit event: details, changes, resource id (and body)."""
    _act_as(x_user, x_tenant)
    body: dict[str, Any] = await request.json()
    event_id = record(
        "pii.submitted",
        resource_type="note",
        resource_id=body["resource_id"],
        details=body["details"],
        changes={name: (old, new) for name, (old, new) in body["changes"].items()},
    )
    return {"event_ids": [event_id], "path_value_length": len(value)}


@app.websocket("/ws/chat")
async def chat(websocket: WebSocket) -> None:
    """Echoes messages until the client goes away."""
    _act_as(websocket.headers.get("x-user"), websocket.headers.get("x-tenant"))
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        return
