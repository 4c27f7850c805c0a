"""Pure ASGI audit middleware: one event per HTTP request, connect/disconnect per WebSocket.

Per-request state lives in closures and a contextvar, never on ``self`` (instances are
shared by concurrent requests). The request event is emitted when ``http.response.start``
passes through, before the server span ends; an unhandled exception emits an ``error``
event with status 500 before it propagates to Starlette's error middleware.
"""

from __future__ import annotations

import contextlib
import re
import time
from typing import Final

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._attributes import (
    Attributes,
    add_actor,
    add_findings,
    add_request,
    new_event,
    route_template,
)
from ._compat import find_server_span
from ._config import parse_network
from ._context import RequestContext, _current_request
from ._emitter import AuditEmitter
from ._errors import AuditEmitError
from ._event import (
    HTTP_REQUEST,
    WEBSOCKET_CONNECT,
    WEBSOCKET_DISCONNECT,
    AuditEvent,
    Outcome,
    uuid7,
)
from ._forwarding import client_address
from ._pii_patterns import marker
from ._redaction import Finding
from ._scrub import Scrubber

# Holds the request id (a str, never the RequestContext: that refers to the scope, and the
# resulting reference cycle would keep every request's objects alive until a GC pass).
SCOPE_KEY: Final = "otel_audit.request_id"
_REQUEST_ID_RE: Final = re.compile(rb"[A-Za-z0-9._:+/=~-]{1,128}")
_KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY"}
)
_NORMAL_CLOSE_CODES: Final = frozenset({1000, 1001, 1005})
_FAIL_CLOSED_BODY: Final = b'{"detail":"audit trail unavailable"}'


def _error_type(exc: BaseException) -> str:
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


class AuditMiddleware:
    """Audits every HTTP request and WebSocket session that is not excluded."""

    def __init__(self, app: ASGIApp, emitter: AuditEmitter) -> None:
        self.app = app
        self.emitter = emitter
        config = emitter.config
        # Precomputed so the per-request check is one set lookup and one startswith call.
        self._excluded_exact = frozenset(config.excluded_urls)
        self._excluded_prefixes = tuple(f"{url}/" for url in config.excluded_urls)
        self._exclude_all = "/" in self._excluded_exact
        self._trusted_proxies = tuple(parse_network(cidr) for cidr in config.trusted_proxies)
        self._captured = {name.lower().encode("latin-1") for name in config.capture_headers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, receive, self._flush_on_shutdown(send))
            return
        if kind not in ("http", "websocket") or SCOPE_KEY in scope or self._excluded_path(scope):
            await self.app(scope, receive, send)
            return
        try:
            request = self._begin(scope)
        except Exception as exc:
            # Auditing must never break the request; this one goes unaudited, and counted.
            self.emitter.report_drop("middleware_error", exc)
            await self.app(scope, receive, send)
            return
        scope[SCOPE_KEY] = request.request_id
        token = _current_request.set(request)
        try:
            if kind == "http":
                await self._http(request, scope, receive, send)
            else:
                await self._websocket(request, scope, receive, send)
        finally:
            _current_request.reset(token)

    def _flush_on_shutdown(self, send: Send) -> Send:
        """Flush queued audit events before the server is told shutdown is complete.

        atexit is not enough: uvicorn re-raises SIGTERM after a graceful shutdown, and the
        process dies before atexit handlers run, losing the last batch.
        """

        async def lifespan_send(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await anyio.to_thread.run_sync(self.emitter.flush)
            await send(message)

        return lifespan_send

    def _excluded_path(self, scope: Scope) -> bool:
        path: str = scope.get("path", "")
        return (
            self._exclude_all
            or path in self._excluded_exact
            or path.startswith(self._excluded_prefixes)
        )

    def _begin(self, scope: Scope) -> RequestContext:
        request_id: str | None = None
        user_agent: bytes | None = None
        forwarded_for: list[bytes] = []
        forwarded: list[bytes] = []
        captured: dict[str, str] = {}
        findings: list[Finding] = []
        scrubber = self.emitter.scrubber
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                if request_id is None and _REQUEST_ID_RE.fullmatch(value):
                    request_id = _clean_request_id(value.decode("ascii"), scrubber)
            elif name == b"user-agent":
                user_agent = value
            elif name == b"x-forwarded-for":
                forwarded_for.append(value)
            elif name == b"forwarded":
                forwarded.append(value)
            if name in self._captured:
                header = name.decode("latin-1")
                path = f"http.request.header.{header}"
                text = value.decode("latin-1")
                if scrubber.is_secret_key(header):
                    findings.append(Finding(path, "secret_key"))
                    text = marker("secret_key")
                captured[path] = scrubber.text(text, path, findings)
        method = scope.get("method", "GET" if scope["type"] == "websocket" else "")
        request = RequestContext(
            emitter=self.emitter,
            scope=scope,
            request_id=request_id or uuid7(),
            method=method if method in _KNOWN_METHODS else "_OTHER",
            path=scrubber.repeated_text(scope.get("path", ""), "url.path", findings),
            client_address=client_address(
                scope.get("client"), forwarded_for, forwarded, self._trusted_proxies
            ),
            user_agent=(
                scrubber.repeated_text(
                    user_agent.decode("latin-1"), "user_agent.original", findings
                )
                if user_agent is not None
                else None
            ),
            server_span=find_server_span(scope),
            captured_headers=captured,
            findings=findings,
        )
        query = scope.get("query_string", b"")
        if query:
            request.query = scrubber.query(query.decode("latin-1"), "url.query", findings)
        return request

    # --- HTTP -------------------------------------------------------------------------

    async def _http(
        self, request: RequestContext, scope: Scope, receive: Receive, send: Send
    ) -> None:
        emitted = False
        blocked = False

        # X-Request-ID is added by RequestIdEcho, around the whole stack, to every response
        # (including this 503 and the error middleware's 500).
        async def audit_send(message: Message) -> None:
            nonlocal emitted, blocked
            if blocked:
                return  # fail-closed already answered 503; swallow the app's response
            if message["type"] == "http.response.start" and not emitted:
                emitted = True
                try:
                    self._emit_http(request, message["status"], None)
                except AuditEmitError:
                    blocked = True
                    await _send_unavailable(send)
                    return
            await send(message)

        try:
            await self.app(scope, receive, audit_send)
        except BaseException as exc:
            if not emitted:
                emitted = True
                # Starlette's error middleware, outside us, turns this into a 500.
                self._emit_http(request, 500, exc, fail_open=True)
            raise
        if not emitted:
            # The app returned without responding (client went away mid-request).
            self._emit_http(request, None, None, fail_open=True)

    def _emit_http(
        self,
        request: RequestContext,
        status: int | None,
        error: BaseException | None,
        *,
        fail_open: bool = False,
    ) -> None:
        try:
            outcome = Outcome.ERROR if status is None else Outcome.from_status(status)
            findings = list(request.findings)
            attributes = new_event(HTTP_REQUEST, outcome)
            add_request(attributes, request)
            if status is not None:
                attributes["http.response.status_code"] = status
            if error is not None:
                attributes["error.type"] = _error_type(error)
            elif status is None:
                attributes["error.type"] = "incomplete_response"
            add_actor(attributes, request.actor(), self.emitter.scrubber)
            add_findings(attributes, findings)
            route = attributes.get("http.route") or "unmatched route"
            body = f"{request.method} {route} -> {status or 'no response'} ({outcome.value})"
            event = AuditEvent(HTTP_REQUEST, outcome, attributes, body)
        except Exception as exc:
            self.emitter.drop(
                "audit event audit.http.request", "build_error", exc, may_raise=not fail_open
            )
            return
        if not fail_open:
            self.emitter.emit(event, request.server_span)
            return
        # The response is already failing or gone: nothing to close; the drop is counted.
        with contextlib.suppress(AuditEmitError):
            self.emitter.emit(event, request.server_span)

    # --- WebSocket --------------------------------------------------------------------

    async def _websocket(
        self, request: RequestContext, scope: Scope, receive: Receive, send: Send
    ) -> None:
        session = _WebSocketSession(self, request)

        async def audit_receive() -> Message:
            message = await receive()
            session.received(message)
            return message

        async def audit_send(message: Message) -> None:
            session.sending(message)
            await send(message)

        try:
            await self.app(scope, audit_receive, audit_send)
        except BaseException as exc:
            session.finished(exc)
            raise
        session.finished(None)

    def emit_websocket(
        self, request: RequestContext, action: str, outcome: Outcome, extra: Attributes, body: str
    ) -> None:
        """Emit a WebSocket connect or disconnect event; never raises."""
        try:
            findings = list(request.findings)
            attributes = new_event(action, outcome)
            add_request(attributes, request)
            attributes.update(extra)
            add_actor(attributes, request.actor(), self.emitter.scrubber)
            add_findings(attributes, findings)
            self.emitter.emit(AuditEvent(action, outcome, attributes, body), request.server_span)
        except AuditEmitError:
            pass  # counted by the emitter; a WebSocket cannot be answered with a 503 here
        except Exception as exc:
            self.emitter.report_drop("build_error", exc)


class RequestIdEcho:
    """Outermost layer: every response of an audited request carries its X-Request-ID.

    The audit middleware adds the header to the responses it sees, but the 500 for an
    unhandled exception is sent by Starlette's error middleware, outside it; this thin
    wrapper around the whole stack adds it there too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def echo_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                request_id = scope.get(SCOPE_KEY)
                if isinstance(request_id, str):
                    message = _with_request_id(message, request_id.encode("ascii"))
            await send(message)

        await self.app(scope, receive, echo_send)


class _WebSocketSession:
    """Tracks one WebSocket connection's lifecycle for its connect/disconnect events."""

    def __init__(self, middleware: AuditMiddleware, request: RequestContext) -> None:
        self._middleware = middleware
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
            extra: Attributes = {"error.type": _error_type(error)} if error is not None else {}
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
            extra["error.type"] = _error_type(error)
        self._middleware.emit_websocket(
            self._request,
            WEBSOCKET_DISCONNECT,
            outcome,
            extra,
            f"WebSocket {route_template(self._request) or self._request.path} closed "
            f"(code {code if code is not None else 'none'}, {outcome.value})",
        )

    def _connect(self, outcome: Outcome, extra: Attributes, how: str) -> None:
        self._connect_emitted = True
        where = route_template(self._request) or self._request.path
        self._middleware.emit_websocket(
            self._request, WEBSOCKET_CONNECT, outcome, extra, f"WebSocket {where} {how}"
        )


def _is_disconnect(error: BaseException) -> bool:
    return type(error).__name__ == "WebSocketDisconnect"


def _clean_request_id(candidate: str, scrubber: Scrubber) -> str | None:
    """The client's request id, unless it carries something redaction would mask.

    The id is echoed to the client and stored verbatim, so a card number or email sent as
    an X-Request-ID is replaced by a generated id rather than masked.
    """
    unused: list[Finding] = []
    return candidate if scrubber.text(candidate, "audit.request.id", unused) == candidate else None


def _with_request_id(message: Message, request_id: bytes) -> Message:
    headers = list(message.get("headers", ()))
    for name, _ in headers:
        if name.lower() == b"x-request-id":
            return message
    headers.append((b"x-request-id", request_id))
    return {**message, "headers": headers}


async def _send_unavailable(send: Send) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(_FAIL_CLOSED_BODY)).encode()),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": _FAIL_CLOSED_BODY})
