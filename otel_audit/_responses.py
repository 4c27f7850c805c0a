"""What otel_audit adds to responses: the X-Request-ID echo, and fail-closed's 503."""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Holds the request id (a str, never the RequestContext: that refers to the scope, and the
# resulting reference cycle would keep every request's objects alive until a GC pass).
SCOPE_KEY: Final = "otel_audit.request_id"
_FAIL_CLOSED_BODY: Final = b'{"detail":"audit trail unavailable"}'


class RequestIdEcho:
    """Outermost layer: every response of an audited request carries its X-Request-ID.

    The audit middleware sits inside Starlette's error middleware, whose 500 for an
    unhandled exception it never sees; this thin wrapper around the whole stack adds the
    header there too, and to every other response, in one place.
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


def _with_request_id(message: Message, request_id: bytes) -> Message:
    headers = list(message.get("headers", ()))
    for name, _ in headers:
        if name.lower() == b"x-request-id":
            return message
    headers.append((b"x-request-id", request_id))
    return {**message, "headers": headers}


async def send_unavailable(send: Send) -> None:
    """Answer 503: fail-closed auditing could not record the request."""
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(_FAIL_CLOSED_BODY)).encode()),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": _FAIL_CLOSED_BODY})
