"""A WebSocket session's audit events: ``audit.websocket.connect`` and ``.disconnect``.

The session is a small state machine fed by the messages passing through the middleware:
accepted or denied (connect), then closed by whom, with which code, after how long and how
many messages (disconnect). Events never raise into the connection: a WebSocket cannot be
answered with a 503 once the handshake is under way.
"""

from __future__ import annotations

import time
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._build import Attributes, build_request_event
from ._context import RequestContext
from ._event import WEBSOCKET_CONNECT, WEBSOCKET_DISCONNECT, Outcome

_NORMAL_CLOSE_CODES: Final = frozenset({1000, 1001, 1005})


def error_type(exc: BaseException) -> str:
    """The exception's class as ``error.type`` (qualified unless it is a builtin)."""
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


async def audit_websocket(
    app: ASGIApp, request: RequestContext, scope: Scope, receive: Receive, send: Send
) -> None:
    """Run ``app`` for one WebSocket connection, auditing its session."""
    session = _WebSocketSession(request)

    async def audit_receive() -> Message:
        message = await receive()
        session.received(message)
        return message

    async def audit_send(message: Message) -> None:
        session.sending(message)
        await send(message)

    try:
        await app(scope, audit_receive, audit_send)
    except BaseException as exc:
        session.finished(exc)
        raise
    session.finished(None)


class _WebSocketSession:
    """Tracks one WebSocket connection's lifecycle for its connect/disconnect events."""

    def __init__(self, request: RequestContext) -> None:
        self._request = request
        self._started = time.perf_counter()
        self._accepted = False
        self._connect_emitted = False
        self._close_code: int | None = None
        self._closed_by: str | None = None
        self._received = 0
        self._sent = 0

    def received(self, message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.receive":
            self._received += 1
        elif kind == "websocket.disconnect" and self._close_code is None:
            self._close_code = int(message.get("code", 1005))
            self._closed_by = "client"

    def sending(self, message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.send":
            self._sent += 1
        elif kind == "websocket.accept" and not self._connect_emitted:
            self._accepted = True
            self._connect(Outcome.SUCCESS, {}, "accepted")
        elif kind == "websocket.close":
            code = int(message.get("code", 1000))
            if not self._accepted and not self._connect_emitted:
                self._connect(Outcome.FAILURE, {"audit.websocket.close.code": code}, "denied")
            elif self._close_code is None:
                self._close_code = code
                self._closed_by = "server"
        elif kind == "websocket.http.response.start" and not self._connect_emitted:
            status = int(message["status"])
            extra: Attributes = {"http.response.status_code": status}
            self._connect(Outcome.from_status(status), extra, f"answered HTTP {status}")

    def finished(self, error: BaseException | None) -> None:
        if not self._connect_emitted:
            extra: Attributes = {"error.type": error_type(error)} if error is not None else {}
            self._connect(Outcome.ERROR if error else Outcome.FAILURE, extra, "not accepted")
            return
        if not self._accepted:
            return
        code = self._close_code
        if error is not None and not _is_disconnect(error):
            outcome = Outcome.ERROR
        elif code is None or code in _NORMAL_CLOSE_CODES:
            outcome = Outcome.SUCCESS
        else:
            outcome = Outcome.ERROR if code == 1011 else Outcome.FAILURE
        if code is None and error is not None:
            code = getattr(error, "code", None)
        extra = {
            "audit.websocket.duration_s": time.perf_counter() - self._started,
            "audit.websocket.messages.received": self._received,
            "audit.websocket.messages.sent": self._sent,
        }
        if isinstance(code, int):
            extra["audit.websocket.close.code"] = code
        if self._closed_by is not None:
            extra["audit.websocket.closed_by"] = self._closed_by
        if error is not None and outcome is Outcome.ERROR:
            extra["error.type"] = error_type(error)
        self._emit(
            WEBSOCKET_DISCONNECT,
            outcome,
            extra,
            f"closed (code {code if code is not None else 'none'}, {outcome.value})",
        )

    def _connect(self, outcome: Outcome, extra: Attributes, how: str) -> None:
        self._connect_emitted = True
        self._emit(WEBSOCKET_CONNECT, outcome, extra, how)

    def _emit(self, action: str, outcome: Outcome, extra: Attributes, how: str) -> None:
        request = self._request
        auditor = request.auditor
        try:
            event = build_request_event(
                action,
                outcome,
                request,
                extra=extra,
                describe=lambda route: f"WebSocket {route} {how}",
            )
        except Exception as exc:
            auditor.lost(f"audit event audit.{action}", "build_error", exc, may_raise=False)
            return
        # Counted if lost; a WebSocket cannot be answered with a 503 once under way.
        auditor.submit(event, may_raise=False)


def _is_disconnect(error: BaseException) -> bool:
    return type(error).__name__ == "WebSocketDisconnect"
