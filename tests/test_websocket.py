"""WebSocket sessions: connect (accepted or denied) and disconnect with code, duration, counts."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.testclient import TestClient
from opentelemetry._logs import SeverityNumber

from otel_audit import Actor, record, set_actor

from .conftest import Telemetry, Tracing, audited_app


def _chat_app(telemetry: Telemetry, tracing: Tracing = "native") -> FastAPI:
    app = audited_app(telemetry, tracing=tracing)

    @app.websocket("/ws/{room}")
    async def chat(websocket: WebSocket, room: str) -> None:
        if websocket.query_params.get("token") != "letmein":
            await websocket.close(code=1008)
            return
        set_actor(Actor("ws-user", tenant="acme"))
        await websocket.accept()
        try:
            while True:
                text = await websocket.receive_text()
                if text == "crash":
                    raise RuntimeError("handler bug")
                if text == "bye":
                    await websocket.close(code=1000)
                    return
                record("chat.message_sent", resource_type="room", resource_id=room)
                await websocket.send_text(text.upper())
        except WebSocketDisconnect:
            return

    return app


def test_accepted_session_records_connect_and_disconnect(
    telemetry: Telemetry, tracing: Tracing
) -> None:
    """An accepted session yields connect and disconnect events with counts and close code."""
    client = TestClient(_chat_app(telemetry, tracing))
    with client.websocket_connect("/ws/lobby?token=letmein") as websocket:
        for word in ("a", "b"):
            websocket.send_text(word)
            assert websocket.receive_text() == word.upper()
        websocket.send_text("bye")
    connect = telemetry.one_record("audit.websocket.connect")
    disconnect = telemetry.one_record("audit.websocket.disconnect")
    assert connect.attributes["audit.outcome"] == "success"
    assert connect.attributes["http.route"] == "/ws/{room}"
    assert connect.attributes["user.id"] == "ws-user"
    assert disconnect.attributes["audit.outcome"] == "success"
    assert disconnect.attributes["audit.websocket.close.code"] == 1000
    assert disconnect.attributes["audit.websocket.closed_by"] == "server"
    assert disconnect.attributes["audit.websocket.messages.received"] == 3
    assert disconnect.attributes["audit.websocket.messages.sent"] == 2
    assert float(disconnect.attributes["audit.websocket.duration_s"]) >= 0
    assert disconnect.attributes["audit.request.id"] == connect.attributes["audit.request.id"]
    messages = [r for r in telemetry.audit_records() if r.event_name == "audit.chat.message_sent"]
    assert len(messages) == 2
    assert all(m.attributes["user.id"] == "ws-user" for m in messages)


def test_client_disconnect_is_recorded(telemetry: Telemetry) -> None:
    """A client closing the socket yields a disconnect event attributed to the client."""
    client = TestClient(_chat_app(telemetry))
    with client.websocket_connect("/ws/lobby?token=letmein") as websocket:
        websocket.send_text("hi")
        websocket.receive_text()
        websocket.close(code=1001)
    disconnect = telemetry.one_record("audit.websocket.disconnect")
    assert disconnect.attributes["audit.websocket.closed_by"] == "client"
    assert disconnect.attributes["audit.websocket.close.code"] == 1001
    assert disconnect.attributes["audit.outcome"] == "success"


def test_denied_connection_records_a_failed_connect(telemetry: Telemetry) -> None:
    """Closing before accept is a denied connect (WARN, close code) and no disconnect."""
    client = TestClient(_chat_app(telemetry))
    with (
        pytest.raises(WebSocketDisconnect),
        client.websocket_connect("/ws/lobby?token=wrong") as ws,
    ):
        ws.receive_text()
    connect = telemetry.one_record("audit.websocket.connect")
    assert connect.attributes["audit.outcome"] == "failure"
    assert connect.attributes["audit.websocket.close.code"] == 1008
    assert connect.severity_number == SeverityNumber.WARN
    assert "token=wrong" not in str(connect.attributes.get("url.query", ""))
    assert not [
        r for r in telemetry.audit_records() if r.event_name == "audit.websocket.disconnect"
    ]


def test_handler_crash_is_an_error_disconnect(telemetry: Telemetry) -> None:
    """An exception in an accepted session yields an ERROR disconnect naming the exception."""
    client = TestClient(_chat_app(telemetry))
    with pytest.raises(RuntimeError), client.websocket_connect("/ws/lobby?token=letmein") as ws:
        ws.send_text("crash")
        ws.receive_text()
    disconnect = telemetry.one_record("audit.websocket.disconnect")
    assert disconnect.attributes["audit.outcome"] == "error"
    assert disconnect.attributes["error.type"] == "RuntimeError"
    assert disconnect.severity_number == SeverityNumber.ERROR
