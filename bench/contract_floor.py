"""The least work any implementation of the audit contract must do per request.

Issue 2's contract: every request yields one OTel log record through the app's SDK
``LoggerProvider`` *and* a span event with the same attributes on the SERVER span. This
middleware does exactly that and nothing else: no actor resolution, no redaction, no
request-id handling, no exclusions, no failure isolation, no metrics. Its throughput ratio,
measured in the same run as otel_audit's, is the ceiling any design honouring the contract
reaches on this machine; ``audited / floor`` is what otel_audit's own work costs on top.
"""

from __future__ import annotations

import itertools
import time

from opentelemetry import trace
from opentelemetry._logs import Logger, SeverityNumber
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_EVENT_NAME = "audit.http.request"


class FloorMiddleware:
    """The floors' shared shell: ``_emit`` once per HTTP request, at its response start."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Unique per request, like otel_audit's ids, at the lowest possible cost.
        self._ids = itertools.count()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        span = trace.get_current_span()

        async def floor_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._emit(scope, message["status"], span)
            await send(message)

        await self.app(scope, receive, floor_send)

    def _emit(self, scope: Scope, status: int, span: trace.Span) -> None:
        raise NotImplementedError


class ContractFloorMiddleware(FloorMiddleware):
    """One log record plus one same-attribute span event per HTTP request."""

    def __init__(self, app: ASGIApp, logger: Logger | None) -> None:
        """``logger=None`` adds only the span event: the ceiling with a log path that is free."""
        super().__init__(app)
        self.logger = logger

    def _emit(self, scope: Scope, status: int, span: trace.Span) -> None:
        number = next(self._ids)
        route = getattr(scope.get("route"), "path", "")
        client = scope.get("client")
        attributes = {
            "audit.action": "http.request",
            "audit.outcome": "success" if status < 400 else "failure",
            "audit.event.id": f"e-{number}",
            "audit.request.id": f"r-{number}",
            "http.request.method": scope["method"],
            "url.path": scope["path"],
            "http.route": route,
            "client.address": client[0] if client else "",
            "user_agent.original": "wrk",
            "http.response.status_code": status,
        }
        now = time.time_ns()
        if self.logger is not None:
            self.logger.emit(
                timestamp=now,
                severity_number=SeverityNumber.INFO,
                body="request",
                attributes=attributes,
                event_name=_EVENT_NAME,
            )
        span.add_event(_EVENT_NAME, attributes, now)
