"""Pure ASGI audit middleware: one event per HTTP request, connect/disconnect per WebSocket.

Per-request state lives in closures and a contextvar, never on ``self`` (instances are
shared by concurrent requests). The request event is emitted when ``http.response.start``
passes through, before the server span ends; when the audit policy records the response
body, it is emitted once the last body chunk has gone out (still inside the server span).
An unhandled exception emits an ``error`` event with status 500 before it propagates to
Starlette's error middleware.
"""

from __future__ import annotations

from typing import Final

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import _compat
from ._auditor import Auditor
from ._body import BodyCapture
from ._build import Attributes, build_request_event
from ._context import RequestContext, _current_request
from ._errors import AuditEmitError
from ._event import HTTP_REQUEST, AuditEvent, Outcome
from ._request import RequestReader
from ._responses import SCOPE_KEY, send_unavailable
from ._websocket import audit_websocket, error_type

_NO_STATUS: Final = "no response"


class AuditMiddleware:
    """Audits every HTTP request and WebSocket session that is not excluded."""

    def __init__(self, app: ASGIApp, auditor: Auditor) -> None:
        self.app = app
        self.auditor = auditor
        self._reader = RequestReader(auditor)
        self._max_body = auditor.config.max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, receive, self._flush_on_shutdown(send))
            return
        if kind not in ("http", "websocket") or SCOPE_KEY in scope or self._reader.excluded(scope):
            await self.app(scope, receive, send)
            return
        try:
            request = self._reader.read(scope)
        except Exception as exc:
            # Auditing must never break the request; this one goes unaudited, and counted.
            self.auditor.telemetry.drop("middleware_error", exc)
            await self.app(scope, receive, send)
            return
        scope[SCOPE_KEY] = request.request_id
        token = _current_request.set(request)
        try:
            if kind == "http":
                await self._http(request, scope, receive, send)
            else:
                await audit_websocket(self.app, request, scope, receive, send)
        finally:
            _current_request.reset(token)

    def _flush_on_shutdown(self, send: Send) -> Send:
        """Close the trail (flush, closing record) before the server is told shutdown is done.

        atexit is not enough: uvicorn re-raises SIGTERM after a graceful shutdown, and the
        process dies before atexit handlers run, losing the last batch.
        """

        async def lifespan_send(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await anyio.to_thread.run_sync(self.auditor.close)
            await send(message)

        return lifespan_send

    async def _http(
        self, request: RequestContext, scope: Scope, receive: Receive, send: Send
    ) -> None:
        auditor = self.auditor
        policy = auditor.policy
        started = False
        blocked = False
        # The event waits here while the policy wants the response body it is still reading.
        waiting: AuditEvent | None = None
        if policy.needs_bodies:
            receive = self._capturing(request, receive)

        # X-Request-ID is added by RequestIdEcho, around the whole stack, to every response
        # (including this 503 and the error middleware's 500).
        async def audit_send(message: Message) -> None:
            nonlocal started, blocked, waiting
            if blocked:
                return  # fail-closed already answered 503; swallow the app's response
            kind = message["type"]
            if kind == "http.response.start" and not started:
                started = True
                try:
                    event = self._event(request, message["status"], None, may_raise=True)
                    if event is not None and self._wants_response_body(event):
                        event.response_body = BodyCapture(_content_type(message), self._max_body)
                        waiting = event
                    elif event is not None:
                        # Under fail-closed, the response waits for the record to be durable.
                        await auditor.settle_async(auditor.submit(event))
                except AuditEmitError:
                    blocked = True
                    await send_unavailable(send)
                    return
            elif kind == "http.response.body" and waiting is not None:
                capture = waiting.response_body
                if capture is not None:
                    capture.add(message.get("body", b""))
                if not message.get("more_body", False):
                    event, waiting = waiting, None
                    # Before the last chunk goes out: the server span ends with it. The start
                    # of the response is already out, so fail-closed can only count a loss.
                    auditor.submit(event, may_raise=False)
            await send(message)

        try:
            await self.app(scope, receive, audit_send)
        except BaseException as exc:
            if waiting is not None:
                auditor.submit(waiting, may_raise=False)
            elif not started:
                started = True
                # Starlette's error middleware, outside us, turns this into a 500.
                self._submit_unanswerable(self._event(request, 500, exc))
            raise
        if waiting is not None:
            auditor.submit(waiting, may_raise=False)  # the app stopped mid-body
        elif not started:
            # The app returned without responding (client went away mid-request).
            self._submit_unanswerable(self._event(request, None, None))

    def _capturing(self, request: RequestContext, receive: Receive) -> Receive:
        """``receive`` that also keeps the request body, if the policy may record it.

        Decided at the first body message: by then routing has happened, so the route
        template is known. The app receives every message unchanged.
        """
        policy = self.auditor.policy
        decided = False
        capture: BodyCapture | None = None

        async def capturing_receive() -> Message:
            nonlocal decided, capture
            message = await receive()
            if message["type"] == "http.request":
                if not decided:
                    decided = True
                    known = {"audit.action": HTTP_REQUEST, "http.request.method": request.method}
                    route = _compat.route_template(request.scope)
                    if route is not None:
                        known["http.route"] = route
                    if policy.may_capture_request_body(known):
                        capture = BodyCapture(request.content_type, self._max_body)
                        request.request_body = capture
                if capture is not None:
                    capture.add(message.get("body", b""))
            return message

        return capturing_receive

    def _wants_response_body(self, event: AuditEvent) -> bool:
        policy = self.auditor.policy
        return policy.needs_response_bodies and (
            policy.level_for(event.attributes) == "request_response"
        )

    def _event(
        self,
        request: RequestContext,
        status: int | None,
        error: BaseException | None,
        *,
        may_raise: bool = False,
    ) -> AuditEvent | None:
        """The request's event, or None (counted; raised under fail-closed) if building failed."""
        try:
            outcome = Outcome.ERROR if status is None else Outcome.from_status(status)
            extra: Attributes = {}
            if status is not None:
                extra["http.response.status_code"] = status
            if error is not None:
                extra["error.type"] = error_type(error)
            elif status is None:
                extra["error.type"] = "incomplete_response"
            event = build_request_event(
                HTTP_REQUEST,
                outcome,
                request,
                extra=extra,
                describe=lambda route: (
                    f"{request.method} {route} -> {status or _NO_STATUS} ({outcome.value})"
                ),
            )
        except Exception as exc:
            self.auditor.lost(
                "audit event audit.http.request", "build_error", exc, may_raise=may_raise
            )
            return None
        event.request_body = request.request_body
        return event

    def _submit_unanswerable(self, event: AuditEvent | None) -> None:
        """Submit an event whose response is already failing or gone: count, never raise."""
        if event is not None:
            self.auditor.submit(event, may_raise=False)


def _content_type(message: Message) -> str | None:
    for name, value in message.get("headers", ()):
        if name.lower() == b"content-type":
            return bytes(value).decode("latin-1")
    return None
